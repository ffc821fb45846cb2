"""``malot doctor`` checks for retrieval: libraries, the offline encoder, the corpus, leakage and the saved index."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from malot.config import Settings
from malot.doctor import Check
from malot.errors import MalotError

__all__ = ["checks"]

SECTION = "retrieval"


def checks(settings: Settings) -> list[Check]:
    """Report what the configured retriever needs and whether it is there."""
    cfg = settings.retrieval
    out: list[Check] = []
    needs = {
        "random": [],
        "none": [],
        "bm25": ["bm25s"],
        "dense": ["sentence_transformers"],
        "hybrid": ["bm25s", "sentence_transformers"],
        "udr": ["sentence_transformers", "torch"],
    }[cfg.retriever]
    for module in needs:
        if importlib.util.find_spec(module) is None:
            out.append(
                Check(
                    SECTION,
                    module,
                    "missing",
                    f"needed by the {cfg.retriever} retriever",
                    "pip install 'malot[retrieval]'",
                )
            )
    if importlib.util.find_spec("faiss") is None:
        out.append(Check(SECTION, "vector index", "warn", "faiss not installed: exact search falls back to NumPy"))
    else:
        out.append(Check(SECTION, "vector index", "ok", "FAISS (exact inner product)"))
    out.append(_encoder_check(cfg.model, cfg.retriever))
    out.extend(_corpus_checks(cfg.corpus, cfg.target_split))
    if cfg.index_dir is not None:
        out.append(_index_check(Path(cfg.index_dir)))
    return out


def _encoder_check(model: str | None, kind: str) -> Check:
    if kind == "udr":
        from malot.retrieval.udr.model import DualEncoder

        if model and DualEncoder.is_saved_model(model):
            return Check(SECTION, "UDR model", "ok", str(model))
        return Check(
            SECTION,
            "UDR model",
            "missing" if not model else "error",
            f"no trained UDR model at {model!r}",
            "train one: malot retrieval train --out DIR, then set retrieval.model = DIR",
        )
    if model:
        ok = Path(model).exists()
        return Check(
            SECTION, "encoder", "ok" if ok else "error", model, "" if ok else "set retrieval.model to a local folder"
        )
    try:
        from malot.retrieval.encoders import default_encoder_path

        return Check(SECTION, "encoder", "ok", f"offline MiniLM at {default_encoder_path()}")
    except MalotError as exc:
        if kind in ("dense", "hybrid"):
            return Check(SECTION, "encoder", "missing", exc.message, exc.hint or "")
        return Check(SECTION, "encoder", "warn", exc.message, exc.hint or "")


def _corpus_checks(corpus: Path | None, target_split: str | None) -> list[Check]:
    from malot.retrieval.corpus import load_corpus
    from malot.retrieval.leakage import LeakageGuard

    try:
        loaded = load_corpus(corpus)
    except MalotError as exc:
        return [Check(SECTION, "corpus", "error", exc.message, exc.hint or "")]
    out = [
        Check(
            SECTION,
            "corpus",
            "ok",
            f"{len(loaded)} demonstrations ({', '.join(sorted(loaded.splits))}) from {loaded.source}",
        )
    ]
    try:
        LeakageGuard(loaded, target_split=target_split)
    except MalotError as exc:
        out.append(Check(SECTION, "leakage guard", "error", exc.message, exc.hint or ""))
    else:
        held = "test-split solutions present" if "test" in loaded.splits else "no test-split solutions"
        out.append(Check(SECTION, "leakage guard", "ok", f"{held}; target split {target_split or 'unset'}"))
    return out


def _index_check(folder: Path) -> Check:
    from malot.retrieval.base import read_manifest

    if not (folder / "retriever.json").is_file():
        return Check(
            SECTION, "saved index", "warn", f"{folder} holds no index yet", "build it: malot retrieval index --out DIR"
        )
    try:
        manifest = read_manifest(folder)
    except MalotError as exc:
        return Check(SECTION, "saved index", "error", exc.message, exc.hint or "")
    return Check(
        SECTION, "saved index", "ok", f"{manifest['kind']} over {manifest.get('size')} demonstrations at {folder}"
    )
