"""``malot doctor`` checks for the provers: the strategy, model, prompt template and sampling in effect."""

from __future__ import annotations

from malot.config import Settings
from malot.doctor import Check
from malot.errors import MalotError

__all__ = ["checks"]

SECTION = "provers"


def checks(settings: Settings) -> list[Check]:
    """Resolve the prover setup the settings describe and report it, or what is wrong with it."""
    from malot.provers.api import resolve_setup
    from malot.provers.strategies import make_strategy

    try:
        setup = resolve_setup(settings)
        make_strategy(setup.strategy, rounds=setup.rounds).check_template(setup.template)
    except MalotError as exc:
        return [Check(SECTION, "setup", "error", exc.message, exc.hint or "")]
    out = [
        Check(
            SECTION,
            "strategy",
            "ok",
            f"{setup.strategy}: {setup.samples} samples, {setup.rounds} correction rounds, "
            f"temperature {setup.sampling.temperature}, top-p {setup.sampling.top_p}, "
            f"max {setup.sampling.max_tokens} tokens",
        ),
        Check(SECTION, "template", "ok", f"{setup.template.name} ({setup.template.family}, {setup.template.kind})"),
    ]
    if setup.preset is not None:
        out.append(Check(SECTION, "model", "ok", f"{setup.model} (preset {setup.preset.name})"))
    elif setup.model.startswith("script:"):
        out.append(Check(SECTION, "model", "ok", f"{setup.model} (scripted model)"))
    else:
        out.append(
            Check(
                SECTION,
                "model",
                "warn",
                f"{setup.model} matches no preset; using template {setup.template.name}",
                "set prover.template or prover.preset if the model expects another prompt format",
            )
        )
    return out
