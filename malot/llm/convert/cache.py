"""Serve CodeGen checkpoints on vLLM: convert once to GPT-J into a cache folder, reuse the conversion afterwards.

vLLM has no CodeGen architecture (and its transformers fallback rejects CodeGen), but serves GPT-J natively.
:func:`prepare_vllm_model` is called by the vLLM backends before they start an engine or a server: a model that is
not CodeGen (CodeGen2.5 and other Llama-architecture models included) is returned unchanged; a CodeGen / CodeGen2
folder (or hub id, fetched with ``huggingface_hub``) is converted by
:func:`~malot.llm.convert.codegen.convert_codegen_to_gptj` into ``<cache>/<name>-<key>`` and that folder is
returned. The key hashes the source's resolved path with the size and modification time of its config, weight and
tokenizer files, so an edited or re-downloaded source is converted again. Each step is announced on stderr.

The cache lives in ``$MALOT_CODEGEN_CACHE`` if set, else ``$XDG_CACHE_HOME/malot/codegen-gptj`` (default
``~/.cache/malot/codegen-gptj``); ``malot doctor`` shows it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from malot.errors import ConfigError

__all__ = ["cache_key", "codegen_cache_root", "is_codegen_folder", "prepare_vllm_model"]

_KEYED_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".py", ".jinja")


def codegen_cache_root() -> Path:
    """Where converted CodeGen checkpoints are kept."""
    explicit = os.environ.get("MALOT_CODEGEN_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "malot" / "codegen-gptj"


def is_codegen_folder(folder: Path) -> bool:
    """Whether ``folder/config.json`` describes a CodeGen / CodeGen2 model."""
    path = folder / "config.json"
    if not path.is_file():
        return False
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return config.get("model_type") == "codegen" or "CodeGenForCausalLM" in (config.get("architectures") or [])


def cache_key(folder: Path) -> str:
    """A short hash of the resolved path and the size and mtime of each file that shapes the conversion."""
    root = folder.resolve()
    entries: list[list[object]] = [[str(root)]]
    for path in sorted(root.iterdir()):
        if path.is_file() and path.suffix in _KEYED_SUFFIXES:
            stat = path.stat()
            entries.append([path.name, stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(entries).encode("utf-8")).hexdigest()[:16]


def _local_folder(model: str) -> Path | None:
    """``model`` as a local folder: itself, or a hub snapshot when its config says CodeGen (else ``None``)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if model.count("/") != 1 or model.startswith((".", "/", "~")):
        return None
    try:
        from huggingface_hub import hf_hub_download, snapshot_download

        config = Path(hf_hub_download(model, "config.json"))
        if not is_codegen_folder(config.parent):
            return None
        return Path(snapshot_download(model))
    except Exception:  # offline, unknown repo, no huggingface_hub: let vLLM report on the model itself
        return None


def prepare_vllm_model(model: str, *, cache_root: Path | None = None, log: Callable[[str], None] | None = None) -> str:
    """The model path vLLM should load: ``model`` itself, or the cached GPT-J conversion of a CodeGen checkpoint."""
    folder = _local_folder(model)
    if folder is None or not is_codegen_folder(folder):
        return model
    say = log or (lambda message: print(message, file=sys.stderr))
    root = cache_root or codegen_cache_root()
    target = root / f"{folder.resolve().name}-{cache_key(folder)}"
    from malot.llm.convert.codegen import MANIFEST_NAME, convert_codegen_to_gptj

    if (target / MANIFEST_NAME).is_file():
        say(f"CodeGen checkpoint {folder}: using its GPT-J conversion for vLLM at {target}")
        return str(target)
    say(f"CodeGen checkpoint {folder}: vLLM has no CodeGen architecture; converting it once to GPT-J into {target}")
    try:
        convert_codegen_to_gptj(folder, target, log=say)
    except (ConfigError, OSError) as exc:
        if (target / MANIFEST_NAME).is_file():  # another process finished the same conversion first
            return str(target)
        if isinstance(exc, ConfigError):
            raise ConfigError(
                f"cannot serve CodeGen checkpoint {folder} on vLLM: {exc.message}",
                hint=exc.hint
                or "convert it yourself with `malot llm convert-codegen SRC DST` and point llm.model at DST",
            ) from None
        raise
    return str(target)
