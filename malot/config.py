"""One typed settings tree for malot, loadable from TOML and overridable by ``MALOT_*`` variables and flags.

Precedence, lowest to highest: built-in defaults, the TOML file (``--config FILE``, ``MALOT_CONFIG`` or
``./malot.toml``), environment variables, then explicit overrides (CLI flags). Environment variables name a key
with double underscores between levels, e.g. ``MALOT_LEAN__POOL_SIZE=4`` or ``MALOT_LLM__MODEL=http://h:8000/v1``;
a few short forms exist for the most used keys (``MALOT_MODEL``, ``MALOT_LEAN``, ``MALOT_PROJECT``,
``MALOT_KIMINA``). Every validation error names the key, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from malot.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "BudgetSettings",
    "DecomposeSettings",
    "ExecutorSettings",
    "LLMSettings",
    "LeanSettings",
    "ModelPrice",
    "OutputSettings",
    "ProverSettings",
    "RetrievalSettings",
    "SearchSettings",
    "Settings",
    "ToolsSettings",
    "VllmEngineSettings",
    "load_settings",
]

ENV_PREFIX = "MALOT_"
DEFAULT_CONFIG_FILE = "malot.toml"

#: Short environment variables for the keys people set most often.
ENV_SHORTCUTS: dict[str, str] = {
    "MALOT_MODEL": "llm.model",
    "MALOT_BACKEND": "llm.backend",
    "MALOT_LEAN": "lean.lean_path",
    "MALOT_PROJECT": "lean.project",
    "MALOT_KIMINA": "lean.kimina_url",
    "MALOT_PLUGINS": "tools.plugins",
}


class _Section(BaseModel):
    """Base of every settings section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class VllmEngineSettings(_Section):
    """Options passed through to the in-process vLLM engine."""

    tensor_parallel_size: int = Field(1, ge=1)
    dtype: str = "auto"
    max_model_len: int | None = Field(None, ge=16)
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    enable_prefix_caching: bool = True
    enforce_eager: bool = False
    seed: int = 0
    engine_args: dict[str, Any] = Field(
        default_factory=dict, description="any other vLLM AsyncEngineArgs field, passed through unchanged"
    )


class LLMSettings(_Section):
    """Which model answers prompts and how it is reached.

    ``model`` is a local folder or hub id (run in-process by ``backend``), an ``http(s)://host:port/v1#name`` URL of
    an OpenAI-compatible server, or ``script:FILE`` for the scripted model.
    """

    #: The default preset's model (malot.provers.presets.DEFAULT_PRESET: MA-LoT on DeepSeek-Prover-V1.5-RL, not
    #: gated on the hub; MA-LoT's LoT-Solver is gated: --preset lot-solver after huggingface-cli login).
    model: str = "deepseek-ai/DeepSeek-Prover-V1.5-RL"
    backend: Literal["auto", "vllm", "hf", "openai", "script"] = "auto"
    api_key_env: str = "OPENAI_API_KEY"
    request_timeout_s: float = Field(600.0, gt=0)
    max_retries: int = Field(5, ge=0)
    max_concurrency: int = Field(64, ge=1)
    strict_openai: bool = Field(
        False, description="HTTP servers that reject vLLM/SGLang-only fields (e.g. add_special_tokens)"
    )
    device: str = "auto"
    dtype: str = "auto"
    vllm: VllmEngineSettings = Field(default_factory=VllmEngineSettings)


class LeanSettings(_Section):
    """How malot reaches Lean 4 and which proofs it accepts."""

    backend: Literal["auto", "repl", "file", "kimina"] = "auto"
    lean_path: Path | None = None
    project: Path | None = None
    kimina_url: str | None = None
    pool_size: int | None = Field(None, ge=1, description="REPL processes; default: cores - 1")
    timeout_s: float = Field(300.0, gt=0)
    memory_limit_mb: int | None = Field(None, ge=64)
    max_commands_per_process: int = Field(200, ge=1)
    queue_size: int = Field(10_000, ge=1)
    prewarm: list[str] = Field(default_factory=list)
    pickle_dir: Path | None = None
    sandbox: Literal["auto", "off", "bwrap", "unshare"] = "auto"
    require_sandbox: bool = Field(False, description="refuse to run Lean when no sandbox test-runs (auto only)")
    final_check: Literal["auto", "require", "off"] = Field(
        "auto",
        description=(
            "the environment-level final check: auto (wherever a local Lean exists), require (reject when it "
            "cannot run, e.g. a remote Kimina server only), off (fast-loop verdicts only; not for untrusted proofs)"
        ),
    )
    allowed_axioms: list[str] = Field(default_factory=lambda: ["propext", "Classical.choice", "Quot.sound"])
    allow_native_decide: bool = False
    lean4checker: bool = False
    toolchain_check: bool = Field(
        True, description="refuse a project or lean whose version differs from the dataset's pinned toolchain"
    )


class RetrievalSettings(_Section):
    """How prover agents pick their few-shot demonstrations.

    ``corpus``: demonstrations JSONL (default: the shipped MiniF2F-valid solutions); ``model``: encoder folder for
    ``dense``/``hybrid`` (default: offline MiniLM) or a trained UDR model folder for ``udr``; ``index_dir``: a saved
    retriever to load (or where to save the one built); ``target_split``: the split of the problems being solved, so
    the leakage guard can refuse a corpus holding that split's solutions (``test``); ``query_upgrade``: a folder
    holding an upgraded query encoder for the saved index in ``index_dir`` (written by an upgrade tool, e.g. a BT²
    one; see :func:`malot.retrieval.loader.load_query_upgrade`): new queries search the old vectors, nothing is
    re-encoded.
    """

    retriever: Literal["none", "random", "bm25", "dense", "hybrid", "udr"] = "random"
    corpus: Path | None = None
    k: int = Field(3, ge=0, le=64)
    model: str | None = None
    index_dir: Path | None = None
    seed: int = 0
    target_split: str | None = None
    rrf_k: int = Field(60, ge=1)
    device: str = "cpu"
    query_upgrade: Path | None = None


class BudgetSettings(_Section):
    """Limits on the work spent per problem; ``None`` means unlimited."""

    samples: int | None = Field(None, ge=1)
    tokens: int | None = Field(None, ge=1)
    lean_cpu_seconds: float | None = Field(None, gt=0)
    wall_seconds: float | None = Field(None, gt=0)


class ProverSettings(_Section):
    """The proving strategy and its sampling parameters (defaults follow the MA-LoT code)."""

    strategy: str = "ma-lot"
    preset: str | None = None
    template: str | None = None
    samples: int = Field(4, ge=1, le=1024)  # as the CLI and the HTTP API
    rounds: int = Field(2, ge=0)
    temperature: float = Field(0.8, ge=0.0)
    top_p: float = Field(0.8, gt=0.0, le=1.0)
    max_tokens: int = Field(8192, ge=1)
    thought_share: float = Field(0.75, gt=0.0, lt=1.0)
    seed: int | None = None

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        from malot.provers.registry import strategy_names

        if value not in strategy_names():
            raise ValueError(f"unknown strategy {value!r}; strategies: {', '.join(strategy_names())}")
        return value


class DecomposeSettings(_Section):
    """The ``decompose`` strategy and ``--repair``: plan -> skeleton with ``sorry`` steps -> lemmas.

    ``automation`` is tried on every lemma first (tactics, or terms for term-mode statements); ``sub_strategy``
    proves the rest with ``lemma_samples`` samples (``lemma_rounds`` corrections each for ``ma-lot``); lemmas that
    fail are decomposed again while the depth is below ``max_depth``; ``negation`` (with a ``{goal}`` slot) states
    that a step is false, for refutation; ``repair`` cuts failed whole-proof / MA-LoT proofs at their failing steps.
    """

    plan: bool = True
    max_depth: int = Field(1, ge=0)
    automation: list[str] = Field(
        default_factory=lambda: ["simp", "omega", "linarith", "nlinarith", "norm_num", "positivity", "aesop"]
    )
    sub_strategy: Literal["whole-proof", "ma-lot"] = "whole-proof"
    lemma_samples: int = Field(2, ge=0)
    lemma_rounds: int = Field(1, ge=0)
    parallel: int = Field(8, ge=1)
    refute: bool = True
    refute_samples: int = Field(1, ge=0)
    negation: str = "¬ ({goal})"
    repair: bool = False

    @field_validator("negation")
    @classmethod
    def _has_goal_slot(cls, value: str) -> str:
        if "{goal}" not in value:
            raise ValueError("negation must contain the {goal} slot, e.g. '¬ ({goal})'")
        return value


class SearchSettings(_Section):
    """Tactic-level search (``--strategy best-first`` and ``--strategy rmaxts``) on an interactive proof session.

    Best-first: the policy proposes ``tactics_per_state`` tactics per state (``policy_prompt`` with ``{{goals}}``,
    ``{{statement}}``, ``{{demos}}``; ``policy_max_tokens`` each); ``width`` states are expanded at once; states are
    ranked by cumulative log-probability plus ``critic_weight`` x the score of ``critic_model`` (a second model,
    optional). RMaxTS: ``max_expansions`` rollouts of ``resume_prompt`` (``{{header}}``, ``{{proof_so_far}}``,
    ``{{goals}}``) of up to ``resume_max_tokens`` tokens, UCB ``exploration`` constant. Both: ``max_depth`` tactics,
    ``max_time_s`` per search, ``tactic_timeout_s`` per tactic (default: ``lean.timeout_s``).
    """

    tactics_per_state: int = Field(8, ge=1, le=256)
    max_expansions: int = Field(256, ge=1)
    max_depth: int = Field(64, ge=1)
    max_time_s: float | None = Field(None, gt=0)
    width: int = Field(4, ge=1)
    tactic_timeout_s: float | None = Field(None, gt=0)
    policy_prompt: str | None = None
    policy_max_tokens: int = Field(128, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    critic_model: str | None = None
    critic_weight: float = Field(0.0, ge=0.0)
    resume_prompt: str | None = None
    resume_max_tokens: int = Field(1024, ge=1)
    exploration: float = Field(1.0, ge=0.0)


class ModelPrice(_Section):
    """Prices of one model in money per million tokens (prompt and completion)."""

    prompt: float = Field(0.0, ge=0)
    completion: float = Field(0.0, ge=0)


class ExecutorSettings(_Section):
    """Concurrency limits of the one executor that runs every workflow."""

    llm_slots: int = Field(32, ge=1)
    lean_slots: int | None = Field(None, ge=1, description="default: the Lean pool size")
    attempt_timeout_s: float | None = Field(None, gt=0)


class OutputSettings(_Section):
    """Where runs, traces and reports go."""

    dir: Path = Path("malot-runs")
    trace: bool = True


class McpServerSettings(_Section):
    """One external MCP server whose tools agents may call: a ``command`` (stdio) or a streamable-HTTP ``url``.

    ``startup_timeout_s`` bounds connecting and listing its tools, ``call_timeout_s`` each call; a server that
    fails either is left out of the run with a clear message and the agent goes on without it.
    """

    command: list[str] | None = None
    url: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    startup_timeout_s: float = Field(30.0, gt=0)
    call_timeout_s: float = Field(120.0, gt=0)

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSettings:
        """Exactly one of ``command`` and ``url``."""
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP server needs either 'command' (a list: program and arguments) or 'url'")
        if self.command is not None and not self.command:
            raise ValueError("'command' must name a program")
        return self


class ToolsSettings(_Section):
    """Tool plugins: ``plugins`` is an allow-list of entry-point names (``None``: load all); ``mcp`` names external
    MCP servers (``[tools.mcp.NAME]`` with ``command`` or ``url``) whose tools become tool sources for agents."""

    plugins: list[str] | None = None
    mcp: dict[str, McpServerSettings] = Field(default_factory=dict)

    @field_validator("plugins", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        """``MALOT_PLUGINS=weights`` or ``"a,b"`` (one string) means a list of names; ``""`` means none."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class Settings(_Section):
    """The whole malot configuration tree."""

    llm: LLMSettings = Field(default_factory=LLMSettings)
    lean: LeanSettings = Field(default_factory=LeanSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    prover: ProverSettings = Field(default_factory=ProverSettings)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    output: OutputSettings = Field(default_factory=OutputSettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    decompose: DecomposeSettings = Field(default_factory=DecomposeSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    pricing: dict[str, ModelPrice] = Field(default_factory=dict)

    def to_toml(self) -> str:
        """Render the settings as TOML text (``None`` values are omitted, as TOML has no null)."""
        return _dump_toml(self.model_dump(mode="json", exclude_none=True))


def load_settings(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the effective settings: defaults < TOML file < ``MALOT_*`` variables < ``overrides``.

    ``overrides`` maps dotted keys (``"lean.pool_size"``) to values, as CLI flags produce them; ``None`` values are
    ignored so unset flags leave lower layers alone.
    """
    environ = os.environ if env is None else env
    data: dict[str, Any] = {}
    source = "defaults"
    config_path = _find_config(path, environ)
    if config_path is not None:
        data = _read_toml(config_path)
        source = str(config_path)
    origins: dict[str, str] = {}  # dotted key -> where its value came from, when not from `source`
    for key, value in _env_overrides(environ).items():
        _set_dotted(data, key, value)
        origins[key] = _env_name(key, environ)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, key, value)
            origins[key] = "the command line"
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, source, origins)) from None


def _find_config(path: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    if path is None and environ.get("MALOT_CONFIG"):
        path = environ["MALOT_CONFIG"]
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist", hint="pass an existing TOML file to --config")
        return p
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}", hint="fix the syntax at that line") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text", hint="save it as UTF-8 TOML") from None


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "MALOT_CONFIG":
            continue
        if name in ENV_SHORTCUTS:
            key = ENV_SHORTCUTS[name]
        elif "__" in name:
            key = ".".join(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        else:
            continue  # e.g. MALOT_TEST_* variables of other tools; only nested keys and shortcuts are config
        out[key] = _parse_env_value(raw)
    return out


def _env_name(key: str, environ: Mapping[str, str]) -> str:
    """The ``MALOT_*`` variable that set dotted ``key`` (a shortcut such as ``MALOT_MODEL`` or the nested form)."""
    for name, target in ENV_SHORTCUTS.items():
        if target == key and name in environ:
            return name
    return ENV_PREFIX + "__".join(part.upper() for part in key.split("."))


def _parse_env_value(raw: str) -> Any:
    """Environment values are JSON when they parse as JSON (numbers, booleans, lists), else plain strings."""
    text = raw.strip()
    if text and (text[0] in "[{" or text in ("true", "false", "null") or _looks_numeric(text)):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return raw
    if "," in raw and not raw.startswith(("http://", "https://")):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key {dotted!r}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _describe_validation_error(exc: ValidationError, source: str, origins: Mapping[str, str] | None = None) -> str:
    lines = []
    sources: list[str] = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        origin = next((o for k, o in (origins or {}).items() if key == k or key.startswith(k + ".")), source)
        if origin not in sources:
            sources.append(origin)
        if err["type"] == "extra_forbidden":
            parent_loc = err["loc"][:-1]
            known = _known_keys(parent_loc)
            close = difflib.get_close_matches(str(err["loc"][-1]), known, n=3)
            suggestion = f"; did you mean {', '.join(close)}?" if close else f"; known keys: {', '.join(known)}"
            lines.append(f"unknown config key {key!r}{suggestion}")
        else:
            lines.append(f"config key {key!r} = {err.get('input')!r}: {err['msg']}")
    return f"invalid configuration from {' and '.join(sources) or source}: " + "; ".join(lines)


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return []
    return sorted(model.model_fields)


def _dump_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    scalars: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            name = f"{prefix}.{key}" if prefix else key
            tables.append(f"\n[{name}]\n" + _dump_toml(value, name))
        else:
            scalars.append(f"{key} = {_toml_value(value)}")
    return "\n".join(scalars) + ("\n" if scalars else "") + "".join(tables)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
