"""malot's ``data`` tool plugin: choose, prune, deduplicate and distil training data.

Tools: ``prune_source`` (DP4TL), ``select_instructions`` and ``semdedup`` (Adapt-∞, SemDeDup), ``distill_unlabeled``
(KRR-ST), ``allocate_samples`` (active multi-task representation learning via Lasso), ``datm_distill`` (DATM),
``select_subset`` (neural subset selection with background information), ``idm_select`` (IDM) and
``dwa_synthesize`` (diversity-driven synthesis with directed weight adjustment). The package registers them through
the ``malot.tools`` entry point ``data``; importing ``malot_data`` itself is light (no torch, no scikit-learn).
"""
