"""Math shared by the peft tools: the unified delta module, a tiny transformer, layered backbones, training."""
