"""Fail fast, with one clear message, when an in-process model named by a hub id cannot be loaded.

Without this, a model that is not downloaded while the machine is offline shows about a minute of the hub client's
"Retrying" lines before the real error, and a gated model (LoT-Solver) without a login fails deep inside the
download. :func:`check_hub_model` runs before an in-process backend (vLLM, transformers) is built: a local folder or
a model already in the hub cache passes at once; otherwise ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` is an
error right away, and one short hub query (``timeout_s``) tells "cannot reach the hub", "no such model" and "gated,
and no login" apart.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from malot.errors import BackendUnavailableError, ConfigError

__all__ = ["check_hub_model", "hub_offline"]

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WAYS_OUT = "pass a local model folder as --model, or a server URL (--model http://HOST:PORT/v1#NAME)"


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is set to a true value."""
    return any(
        os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def check_hub_model(model: str, *, timeout_s: float = 5.0, cache_dir: str | Path | None = None) -> None:
    """Raise :class:`BackendUnavailableError` (or :class:`ConfigError` for a model the hub does not have) when
    ``model`` is a hub id that cannot be loaded here; return quietly when it can, or when it is not a hub id."""
    if Path(model).expanduser().exists() or not _REPO_ID.match(model):
        return  # a local folder, or something the backend itself explains
    try:
        import huggingface_hub
    except ImportError:
        return
    cached = huggingface_hub.try_to_load_from_cache(model, "config.json", cache_dir=cache_dir)
    if isinstance(cached, str):
        return  # downloaded before: the backend loads it from the cache
    if hub_offline():
        raise BackendUnavailableError(
            f"model {model} is not downloaded, and the hub is offline (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set)",
            hint=f"download it where the hub is reachable (huggingface-cli download {model}), or {_WAYS_OUT}",
        )
    info = _model_info(huggingface_hub, model, timeout_s)
    if getattr(info, "gated", False) and not huggingface_hub.get_token():
        raise BackendUnavailableError(
            f"model {model} is gated on the hub and no hub login is set up",
            hint=(
                f"accept its conditions on https://huggingface.co/{model} and run 'huggingface-cli login' "
                "(or set HF_TOKEN); the default prover (no --preset/--model) is not gated"
            ),
        )


def _model_info(huggingface_hub: Any, model: str, timeout_s: float) -> Any:
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        return huggingface_hub.HfApi().model_info(model, timeout=timeout_s)
    except RepositoryNotFoundError:
        raise ConfigError(
            f"the hub has no model {model!r} (or it is private and no login is set up)",
            hint=f"check the name on https://huggingface.co, log in for a private model, or {_WAYS_OUT}",
        ) from None
    except Exception as exc:  # connection refused, DNS, timeout, proxy: the hub cannot be reached
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise BackendUnavailableError(
            f"cannot reach the Hugging Face hub to download model {model} ({reason})",
            hint=f"check the network; offline, download it elsewhere and set HF_HUB_OFFLINE=1, or {_WAYS_OUT}",
        ) from None
