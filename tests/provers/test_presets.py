"""Presets bundle model, template, strategy and sampling; one of them is the documented default."""

from __future__ import annotations

import pytest

from malot.config import LLMSettings, Settings
from malot.errors import ConfigError
from malot.provers import DEFAULT_PRESET, PRESETS, get_preset, load_template, preset_for_model, resolve_setup


def test_default_preset_is_ma_lot_on_an_ungated_model() -> None:
    preset = get_preset(DEFAULT_PRESET)
    assert preset.model == LLMSettings().model == "deepseek-ai/DeepSeek-Prover-V1.5-RL"  # no hub login needed
    setup = resolve_setup(Settings())
    assert (setup.strategy, setup.template.name, setup.samples, setup.rounds) == (
        "ma-lot",
        "deepseek-prover-v1.5",
        4,
        2,
    )
    assert setup.template.supports_correction and setup.preset is preset
    assert (setup.sampling.temperature, setup.sampling.top_p) == (1.0, 0.95)


def test_lot_solver_is_one_flag_away() -> None:
    setup = resolve_setup(Settings.model_validate({"prover": {"preset": "lot-solver"}}))
    assert (setup.model, setup.strategy, setup.template.name) == ("RickyDeSkywalker/LoT-Solver", "ma-lot", "lot-solver")
    assert (setup.sampling.temperature, setup.sampling.top_p) == (0.8, 0.8)
    # naming the DeepSeek model yourself gets its own (whole-proof baseline) preset, as before
    named = resolve_setup(Settings.model_validate({"llm": {"model": "deepseek-ai/DeepSeek-Prover-V1.5-RL"}}))
    assert (
        named.strategy == "whole-proof" and named.preset is not None and named.preset.name == "deepseek-prover-v1.5-rl"
    )


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_has_a_loadable_template(name: str) -> None:
    preset = PRESETS[name]
    template = load_template(preset.template)
    assert preset.strategy in ("ma-lot", "whole-proof")
    found = preset_for_model(preset.model)
    assert found is not None and found.model == preset.model
    if preset.strategy == "ma-lot":
        assert template.supports_correction


def test_required_families_are_covered() -> None:
    models = {p.model for p in PRESETS.values()}
    assert {
        "RickyDeSkywalker/LoT-Solver",
        "Goedel-LM/Goedel-Prover-V2-8B",
        "deepseek-ai/DeepSeek-Prover-V1.5-RL",
        "deepseek-ai/DeepSeek-Prover-V2-7B",
        "AI-MO/Kimina-Prover-Distill-8B",
    } <= models


def test_model_strings_find_their_preset() -> None:
    assert preset_for_model("/models/Goedel-Prover-V2-8B").name == "goedel-prover-v2-8b"  # type: ignore[union-attr]
    assert preset_for_model("http://127.0.0.1:8000/v1#Kimina-Prover-Distill-8B").template == "kimina-prover"  # type: ignore[union-attr]
    assert preset_for_model("script:answers.jsonl") is None


def test_preset_sampling_unless_set_explicitly() -> None:
    settings = Settings.model_validate({"prover": {"preset": "goedel-prover-v2-8b", "top_p": 0.5}})
    setup = resolve_setup(settings)
    assert setup.model == "Goedel-LM/Goedel-Prover-V2-8B" and setup.strategy == "whole-proof"
    assert setup.template.name == "goedel-prover-v2"
    assert setup.sampling.temperature == 1.0 and setup.sampling.top_p == 0.5
    explicit = Settings.model_validate({"llm": {"model": "/m/x"}, "prover": {"preset": "goedel-prover-v2-8b"}})
    assert resolve_setup(explicit).model == "/m/x"  # an explicit model wins over the preset's


def test_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="did you mean 'lot-solver'"):
        get_preset("lot-solve")


def test_doctor_reports_the_setup() -> None:
    from malot.provers.doctor import checks

    ok = {c.name: c for c in checks(Settings())}
    assert ok["strategy"].status == "ok" and "ma-lot: 4 samples, 2 correction rounds" in ok["strategy"].detail
    assert ok["model"].detail == "deepseek-ai/DeepSeek-Prover-V1.5-RL (preset ma-lot-deepseek-v1.5-rl)"
    bad = checks(Settings.model_validate({"prover": {"template": "codegen2-infill"}}))
    assert [c.status for c in bad] == ["error"] and "no corrector prompt" in bad[0].detail
    unknown = {c.name: c for c in checks(Settings.model_validate({"llm": {"model": "/models/mine"}}))}
    assert unknown["model"].status == "warn"
