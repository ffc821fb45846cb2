"""EEG transfer learning: pre-train a decoder on source subjects, fine-tune it on a few labels of a new subject.

Cross-subject EEG decoding suffers from large between-subject shift (head shape, electrode placement, individual
rhythms), and calibration data for a new subject is expensive. The transfer recipe the EEG transfer-learning
literature converges on: pre-train a compact convolutional decoder on many source subjects, then fine-tune all of
it on a handful of labelled trials of the target subject, against a model trained from scratch on those same trials
and against the source model applied as is (zero-shot).

The decoder is the Shallow ConvNet of Schirrmeister et al. (2017), written here in plain torch: a temporal
convolution (band-pass filter bank), a spatial convolution across channels (spatial filters), squaring, average
pooling and a logarithm (log band power, the FBCSP pipeline as a network), then a linear classifier. braindecode
ships this network, but it pulls torchaudio, which does not work with malot's torch build, so we write the small
network ourselves. MNE (``mne.filter.filter_data``) does the band-pass preprocessing. Ours: the network code, the
pre-train / fine-tune / scratch protocol and the evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_domains.core import adam_fit, load_array, require_finite, require_labels, require_ndim, seed_all

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

__all__ = [
    "EegTransferInput",
    "EegTransferOutput",
    "accuracy",
    "bandpass",
    "eeg_transfer",
    "few_label_split",
    "shallow_net",
    "train_classifier",
]


def shallow_net(channels: int, samples: int, classes: int, filters: int = 16, kernel: int = 13) -> nn.Module:
    """The Shallow ConvNet (temporal conv → spatial conv → square → mean pool → log → linear), plain torch."""
    import torch
    from torch import nn

    if samples < kernel + 10:
        raise ToolError(f"trials of {samples} samples are too short for the network", hint="give longer trials")

    class ShallowNet(nn.Module):
        """Log band-power of learned spatio-temporal filters, classified linearly."""

        def __init__(self) -> None:
            super().__init__()
            self.temporal = nn.Conv2d(1, filters, (1, kernel))
            self.spatial = nn.Conv2d(filters, filters, (channels, 1), bias=False)
            self.norm = nn.BatchNorm2d(filters)
            self.pool = nn.AvgPool2d((1, 25), stride=(1, 10))
            self.dropout = nn.Dropout(0.25)
            width = (samples - kernel + 1 - 25) // 10 + 1
            self.classifier = nn.Linear(filters * width, classes)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            """Log pooled power of each spatio-temporal filter, flattened."""
            h = self.norm(self.spatial(self.temporal(x.unsqueeze(1))))
            return torch.log(torch.clamp(self.pool(h * h), min=1e-6)).flatten(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.classifier(self.dropout(self.features(x)))
            return out

    return ShallowNet()


def bandpass(x: np.ndarray, sfreq: float, l_freq: float | None, h_freq: float | None) -> np.ndarray:
    """Band-pass ``(n, channels, samples)`` trials with MNE's FIR filter, then divide each trial by its own standard
    deviation (no statistics shared between trials, so subjects with different amplitudes land on one scale)."""
    import mne
    import numpy as np

    filtered = x.astype(np.float64)
    if l_freq is not None or h_freq is not None:
        if h_freq is not None and h_freq >= sfreq / 2:
            raise ToolError(f"h_freq {h_freq} Hz is not below the Nyquist frequency {sfreq / 2} Hz")
        filtered = mne.filter.filter_data(filtered, sfreq, l_freq, h_freq, verbose="ERROR")
    scale = filtered.std(axis=(1, 2), keepdims=True) + 1e-8
    out: np.ndarray = (filtered / scale).astype(np.float32)
    return out


def train_classifier(
    model: nn.Module, x: np.ndarray, y: np.ndarray, *, steps: int, lr: float, seed: int, batch: int = 32
) -> list[float]:
    """Mini-batch Adam on cross-entropy; returns the per-step losses (the model is left in eval mode)."""
    import torch

    generator = seed_all(seed)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)

    def loss(step: int) -> torch.Tensor:
        pick = torch.randint(0, xt.shape[0], (min(batch, xt.shape[0]),), generator=generator)
        return torch.nn.functional.cross_entropy(model(xt[pick]), yt[pick])

    model.train()
    try:
        return adam_fit(model.parameters(), loss, steps=steps, lr=lr, weight_decay=1e-4)
    finally:
        model.eval()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Share of trials whose arg-max class is the label."""
    import torch

    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(x)).argmax(-1).numpy()
    return float((pred == y).mean())


def few_label_split(y: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``per_class`` random trials of each class (the calibration set) and of all other trials (test)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    train = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if members.shape[0] <= per_class:
            raise ToolError(
                f"class {int(label)} of the target has {members.shape[0]} trials; need more than {per_class}",
                hint="lower labels_per_class so some trials remain for testing",
            )
        train.extend(rng.choice(members, per_class, replace=False).tolist())
    chosen = np.array(sorted(train))
    rest = np.setdiff1d(np.arange(y.shape[0]), chosen)
    return chosen, rest


_PAPER = (
    "Transfer learning for EEG decoding: pre-train on source subjects, fine-tune on few target labels; network: "
    "Deep learning with convolutional neural networks for EEG decoding (Schirrmeister et al., 2017)"
)


class EegTransferInput(BaseModel):
    """Arguments of the ``eeg_transfer`` tool."""

    data: str = Field(description=".npz with X (trials, channels, samples), y (trials,) and subject (trials,)")
    target_subject: int = Field(description="the subject to adapt to; every other subject is a source")
    labels_per_class: int = Field(default=5, gt=0, description="labelled target trials per class for fine-tuning")
    sfreq: float = Field(default=100.0, gt=0, description="sampling rate in Hz")
    l_freq: float | None = Field(default=4.0, ge=0, description="band-pass low edge (Hz); null: no high-pass")
    h_freq: float | None = Field(default=30.0, gt=0, description="band-pass high edge (Hz); null: no low-pass")
    pretrain_steps: int = Field(default=300, ge=0)
    finetune_steps: int = Field(default=100, ge=0)
    lr: float = Field(default=3e-3, gt=0)
    finetune_lr: float = Field(default=1e-3, gt=0)
    seed: int = 0


class EegTransferOutput(BaseModel):
    """Target-subject test accuracies of the three protocols, and the set sizes."""

    transfer_accuracy: float
    scratch_accuracy: float
    source_only_accuracy: float
    chance: float
    source_trials: int
    target_train_trials: int
    target_test_trials: int


@tool(
    name="eeg_transfer",
    family="domains",
    paper=_PAPER,
    tags=("eeg", "few-shot", "cross-subject", "transfer", "fine-tuning", "needs:labels"),
    heavy=True,
)
def eeg_transfer(args: EegTransferInput) -> EegTransferOutput:
    """Cross-subject EEG transfer: pre-train a Shallow ConvNet on source subjects, fine-tune on a few target trials.

    Reports the target's held-out accuracy after transfer, for a network trained from scratch on the same few
    trials, and for the source network applied without fine-tuning.
    """
    import copy

    import numpy as np

    x = load_array(args.data, "X")
    y_raw = load_array(args.data, "y")
    subject_raw = load_array(args.data, "subject")
    require_ndim("X", x, (3,), "(trials, channels, samples)")
    require_finite("X", x)
    y = require_labels("y", y_raw, x.shape[0])
    subject = require_labels("subject", subject_raw, x.shape[0])
    target = subject == args.target_subject
    if not target.any():
        raise ToolError(
            f"no trials of target subject {args.target_subject}", hint=f"subjects present: {sorted(set(subject))}"
        )
    if target.all():
        raise ToolError("every trial belongs to the target subject", hint="include source subjects to pre-train on")
    classes = int(y.max()) + 1
    xf = bandpass(x, args.sfreq, args.l_freq, args.h_freq)
    xs, ys = xf[~target], y[~target]
    xt, yt = xf[target], y[target]
    train_idx, test_idx = few_label_split(yt, args.labels_per_class, args.seed)
    seed_all(args.seed)
    source_model = shallow_net(x.shape[1], x.shape[2], classes)
    train_classifier(source_model, xs, ys, steps=args.pretrain_steps, lr=args.lr, seed=args.seed)
    source_only = accuracy(source_model, xt[test_idx], yt[test_idx])
    tuned = copy.deepcopy(source_model)
    train_classifier(
        tuned, xt[train_idx], yt[train_idx], steps=args.finetune_steps, lr=args.finetune_lr, seed=args.seed
    )
    seed_all(args.seed + 1)
    scratch = shallow_net(x.shape[1], x.shape[2], classes)
    train_classifier(scratch, xt[train_idx], yt[train_idx], steps=args.finetune_steps, lr=args.lr, seed=args.seed)
    return EegTransferOutput(
        transfer_accuracy=accuracy(tuned, xt[test_idx], yt[test_idx]),
        scratch_accuracy=accuracy(scratch, xt[test_idx], yt[test_idx]),
        source_only_accuracy=source_only,
        chance=float(np.bincount(yt[test_idx]).max() / test_idx.shape[0]),
        source_trials=int(xs.shape[0]),
        target_train_trials=int(train_idx.shape[0]),
        target_test_trials=int(test_idx.shape[0]),
    )
