"""Math and model plumbing shared by the ``sparse`` tools (N:M masks, tiny MLPs, training loops, calibration)."""
