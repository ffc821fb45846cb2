"""malot-distill: knowledge distillation and transfer methods as malot tools.

Tools (registered through the ``malot.tools`` entry point ``distill``): ``knowledge_transfer`` (Fantastic Gains),
``distill_from_pool`` (DistillNearest / DistillWeighted), ``meta_dmoe_adapt`` (Meta-DMoE), ``robustify``
(efficient robustification), ``class_relation_kd`` (Cr-KD), ``sla_train`` (SLA) and ``look_loss`` (LOOK).
Shared math lives in :mod:`malot_distill.core`.
"""
