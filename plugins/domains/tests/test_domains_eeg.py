"""EEG transfer: the Shallow ConvNet, MNE band-pass, the calibration split and transfer against scratch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mne")

from malot_domains.core.synthetic import eeg_trials  # noqa: E402
from malot_domains.eeg import bandpass, few_label_split, shallow_net  # noqa: E402

from malot.errors import ToolError  # noqa: E402
from malot.tools import get_registry  # noqa: E402


def test_shallow_net_features_are_log_pooled_power_of_the_spatio_temporal_filters() -> None:
    torch.manual_seed(0)
    net = shallow_net(channels=4, samples=100, classes=3).eval()
    x = torch.randn(2, 4, 100)
    assert net(x).shape == (2, 3)
    with torch.no_grad():
        h = net.norm(net.spatial(net.temporal(x.unsqueeze(1))))  # type: ignore[operator]
        manual = torch.log(torch.nn.functional.avg_pool2d(h * h, (1, 25), (1, 10))).flatten(1)
        assert torch.allclose(net.features(x), manual, atol=1e-5)  # type: ignore[operator]


def test_bandpass_keeps_the_mu_band_and_removes_what_lies_outside() -> None:
    t = np.arange(400) / 100.0
    trial = np.stack([np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 45 * t)])[None]  # 10 Hz and 45 Hz channels
    out = bandpass(trial, 100.0, 4.0, 30.0)
    inner = slice(100, 300)  # away from the filter's edge effects
    assert out[0, 1, inner].std() < 0.05 * out[0, 0, inner].std()


def test_few_label_split_takes_exactly_k_per_class_and_keeps_the_rest_for_testing() -> None:
    y = np.array([0] * 10 + [1] * 7 + [2] * 5)
    train, test = few_label_split(y, 3, seed=0)
    assert np.bincount(y[train]).tolist() == [3, 3, 3]
    assert not set(train) & set(test) and len(train) + len(test) == len(y)
    with pytest.raises(ToolError, match="class 2"):
        few_label_split(y, 5, seed=0)


@pytest.mark.slow
def test_transfer_beats_scratch_on_synthetic_eeg_through_the_registry(tmp_path: Path) -> None:
    x, y, subject = eeg_trials(0, subjects=4, trials_per_class=24)
    np.savez(tmp_path / "eeg.npz", X=x, y=y, subject=subject)
    out = get_registry().run_sync(
        "eeg_transfer",
        {
            "data": str(tmp_path / "eeg.npz"),
            "target_subject": 3,
            "labels_per_class": 4,
            "pretrain_steps": 120,
            "finetune_steps": 40,
        },
        isolation="inline",
    )
    assert out.target_train_trials == 8 and out.target_test_trials == 40  # type: ignore[attr-defined]
    assert out.transfer_accuracy >= out.scratch_accuracy  # type: ignore[attr-defined]
    assert out.transfer_accuracy > out.chance  # type: ignore[attr-defined]


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    registry = get_registry()
    x, y, subject = eeg_trials(1, subjects=2, trials_per_class=4, seconds=1.0)

    def run(path: Path, **extra: object) -> None:
        registry.run_sync("eeg_transfer", {"data": str(path), "target_subject": 1, **extra}, isolation="inline")

    np.savez(tmp_path / "a.npz", X=x, y=y, subject=subject)
    with pytest.raises(ToolError, match="no trials of target subject"):
        registry.run_sync("eeg_transfer", {"data": str(tmp_path / "a.npz"), "target_subject": 7}, isolation="inline")
    with pytest.raises(ToolError, match="need more than"):
        run(tmp_path / "a.npz", labels_per_class=4)
    with pytest.raises(ToolError, match="Nyquist"):
        run(tmp_path / "a.npz", h_freq=60.0, labels_per_class=1)
    np.savez(tmp_path / "b.npz", X=x, y=y[:-1], subject=subject)
    with pytest.raises(ToolError, match="entries"):
        run(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", X=x[:, 0], y=y, subject=subject)
    with pytest.raises(ToolError, match="trials, channels, samples"):
        run(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", X=x, y=y, subject=np.full_like(subject, 1))
    with pytest.raises(ToolError, match="source subjects"):
        run(tmp_path / "d.npz")
