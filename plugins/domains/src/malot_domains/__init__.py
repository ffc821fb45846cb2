"""malot's ``domains`` plugin: domain-specific transfer methods as agent tools.

Tools: ``ttm_forecast`` (Tiny Time Mixers, zero/few-shot forecasting), ``eeg_transfer`` (pre-train on source
subjects, fine-tune on a few target labels), ``gcrl_adapt`` (generative causal representation learning for motion
forecasting; adapts only the variant prior), ``domain_translate`` (identifiable unsupervised domain translation by
auxiliary-variable distribution matching) and ``diffusion_features`` (denoising diffusion autoencoders as feature
learners). Heavy libraries are imported inside the functions that need them.
"""
