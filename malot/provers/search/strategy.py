"""The ``best-first`` and ``rmaxts`` strategies: a tactic search as one agent step, then the acceptance rule.

Workflow of one attempt (one sample): ``search -> verifier -> END``. The search agent runs a whole search
(:class:`~malot.provers.search.best_first.BestFirstSearch` or
:class:`~malot.provers.search.rmaxts.TruncateResumeSearch`) inside its step, so the executor still owns the
attempt: cancelling it (a sibling's success, a timeout) cancels every branch, the shared budget
(``ctx.meter``) is checked before each round and charged with the policy's tokens as they are spent, and the step's
trace event carries the search tree (``notes[].search_tree``) and the counts (``notes[].search``); live progress
(expansions, open states, best score) goes out as ``note`` events (:meth:`malot.agents.RunContext.publish`).

The searches of one problem (its samples) share one proof session and one tactic cache. Every proof found in
tactic mode is re-checked whole by the acceptance rule (:func:`malot.lean.session.confirm_proof`) before the search
stops; the verifier agent then reports that verdict (from the same verdict cache, so Lean is not asked twice).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from malot.agents import END, Edge, RunContext, Task, Usage, Workflow
from malot.agents.agent import Agent
from malot.errors import ConfigError
from malot.lean.session import ProofSession, ProofState, confirm_proof
from malot.provers.agents import ProofCandidate, ProverDeps, VerdictCache, VerifierAgent
from malot.provers.search.cache import TacticCache
from malot.provers.search.common import SearchLimits, SearchOutcome
from malot.provers.search.tree import assemble_proof
from malot.provers.strategies import Strategy

if TYPE_CHECKING:
    from malot.config import SearchSettings, Settings

__all__ = [
    "BestFirst",
    "BestFirstAgent",
    "RMaxTS",
    "RMaxTSAgent",
    "SearchCandidate",
    "open_proof_session",
    "sorry_statement",
]


class SearchCandidate(ProofCandidate):
    """The proof a search assembled (``code``; empty when none was found) and the search's counts."""

    search: dict[str, Any] = Field(default_factory=dict)


def sorry_statement(statement: str) -> str:
    """The statement with ``by sorry`` as its proof (one line): what a proof session starts from."""
    return assemble_proof(statement, []).rstrip() + " sorry"


def open_proof_session(verifier: Any, timeout: float | None = None) -> ProofSession:
    """A proof session from ``verifier`` (anything with ``open_session``: the REPL pool, LeanDojo)."""
    opener = getattr(verifier, "open_session", None)
    if opener is None:
        name = getattr(verifier, "name", type(verifier).__name__)
        raise ConfigError(
            f"tactic-level search needs a verifier with interactive proof sessions; {name!r} has none",
            hint="use the REPL pool ([lean] backend = 'repl' with a Lake project) or the LeanDojo adapter",
        )
    session: ProofSession = opener(timeout=timeout) if timeout is not None else opener()
    return session


class _SharedSearch:
    """The proof session, root state and tactic cache the searches of one problem share (reference counted)."""

    def __init__(self) -> None:
        self.session: ProofSession | None = None
        self.root: ProofState | None = None
        self.cache = TacticCache()
        self.users = 0
        self.lock = asyncio.Lock()
        self.critic_llm: Any = None

    async def critic(self, model: str | None) -> Any:
        """The critic model named by ``[search] critic_model`` (opened once per problem), or None."""
        if model is None:
            return None
        async with self.lock:
            if self.critic_llm is None:
                from malot.llm import load_llm

                llm = load_llm(model)
                await llm.__aenter__()
                self.critic_llm = llm
        return self.critic_llm

    async def acquire(self, deps: ProverDeps, timeout: float | None) -> tuple[ProofSession, ProofState]:  # noqa: ASYNC109
        """The shared session and root state (the first user opens the session and starts the proof)."""
        async with self.lock:
            self.users += 1
            try:
                if self.session is None or self.root is None:
                    session = open_proof_session(deps.verifier, timeout)
                    await session.__aenter__()
                    try:
                        roots = await session.start(sorry_statement(deps.problem.statement), header=deps.problem.header)
                    except BaseException:
                        await session.aclose()
                        raise
                    self.session, self.root = session, roots[0]
            except BaseException:
                self.users -= 1
                raise
            return self.session, self.root

    async def release(self) -> None:
        """One user less; the last one closes the session (and the critic model)."""
        self.users -= 1
        if self.users <= 0 and self.session is not None:
            session, self.session, self.root = self.session, None, None
            await session.aclose()
        if self.users <= 0 and self.critic_llm is not None:
            critic, self.critic_llm = self.critic_llm, None
            await critic.aclose()


_SHARED: weakref.WeakKeyDictionary[VerdictCache, _SharedSearch] = weakref.WeakKeyDictionary()


def _shared(deps: ProverDeps) -> _SharedSearch:
    shared = _SHARED.get(deps.cache)
    if shared is None:
        shared = _SHARED[deps.cache] = _SharedSearch()
    return shared


class _SearchAgent(Agent[Task, SearchCandidate]):
    """Runs one search per attempt (see the module docstring); subclasses build the search engine."""

    input_type = Task
    output_type = SearchCandidate
    resource = None

    def __init__(self, settings: SearchSettings) -> None:
        self.settings = settings

    def estimate(self, message: Task) -> Usage:
        return Usage(samples=1)

    def limits(self) -> SearchLimits:
        """The search limits from ``[search]``."""
        s = self.settings
        return SearchLimits(
            max_expansions=s.max_expansions,
            max_depth=s.max_depth,
            max_time_s=s.max_time_s,
            width=s.width,
            critic_weight=s.critic_weight,
        )

    def build(self, ctx: RunContext[ProverDeps], session: ProofSession, cache: TacticCache, sample: int) -> Any:
        """The search engine for one attempt."""
        raise NotImplementedError

    async def run(self, message: Task, ctx: RunContext[ProverDeps]) -> SearchCandidate:
        """One whole search on the problem's shared session; the proof found (re-checked) as a candidate."""
        deps = ctx.deps
        sample = int(message.params.get("sample", 0))
        started = time.perf_counter()
        shared = _shared(deps)
        timeout = self.settings.tactic_timeout_s or deps.lean_timeout
        session, root = await shared.acquire(deps, timeout)
        spent = [0, 0]  # tokens in/out charged to the shared budget so far
        try:
            if self.settings.critic_weight > 0 and self.settings.critic_model:
                from malot.provers.search.policy import LLMCritic

                ctx.state["critic"] = LLMCritic(await shared.critic(self.settings.critic_model))
            engine = self.build(ctx, session, shared.cache, sample)
            engine.should_stop = ctx.meter.exhausted
            engine.confirm = self._confirm(deps, session)

            def progress(data: dict[str, Any]) -> None:
                usage = engine.policy.usage if hasattr(engine, "policy") else engine.writer.usage
                delta = Usage(tokens_in=usage.tokens_in - spent[0], tokens_out=usage.tokens_out - spent[1])
                spent[0], spent[1] = usage.tokens_in, usage.tokens_out
                ctx.meter.settle(0, delta)  # charged as spent, so the budget can stop the search
                ctx.publish(search=data, sample=sample)

            engine.progress = progress
            outcome: SearchOutcome = await engine.run(root)
        finally:
            ctx.meter.settle(0, Usage(tokens_in=-spent[0], tokens_out=-spent[1]))  # the step's usage charges them
            await shared.release()
        stats = outcome.stats()
        ctx.note(
            search=stats,
            search_tree=outcome.tree.to_dict(),
            run_s=time.perf_counter() - started,
            llm_s=0.0,
            sample=sample,
            round=0,
        )
        code = assemble_proof(deps.problem.statement, outcome.proof) if outcome.proof is not None else ""
        reason = None if outcome.proof is not None else f"search stopped: {outcome.stopped}"
        return SearchCandidate(
            outcome="candidate" if code else "no_code",
            code=code,
            round=0,
            sample=sample,
            raw_output="\n".join(outcome.proof or []),
            extraction_error=reason,
            search=stats,
            usage=Usage(samples=1, tokens_in=outcome.tokens_in, tokens_out=outcome.tokens_out),
        )

    @staticmethod
    def _confirm(deps: ProverDeps, session: ProofSession) -> Any:
        # the re-check runs on the session's own REPL where the backend offers that (it is idle now)
        affine = getattr(session, "affine_verifier", None)
        verifier = affine() if affine is not None and session is not deps.verifier else deps.verifier

        async def confirm(tactics: list[str]) -> bool:
            code = assemble_proof(deps.problem.statement, tactics)

            async def check() -> Any:
                return await confirm_proof(verifier, deps.target, code, deps.rule, deps.lean_timeout)

            result, _ = await deps.cache.get_or_check(code, check)
            return bool(result.accepted)

        return confirm


class BestFirstAgent(_SearchAgent):
    """A best-first search per attempt, the policy being the run's LLM."""

    role = "search"

    def build(self, ctx: RunContext[ProverDeps], session: ProofSession, cache: TacticCache, sample: int) -> Any:
        from malot.provers.search.best_first import BestFirstSearch
        from malot.provers.search.policy import DEFAULT_POLICY_PROMPT, TacticPolicy

        deps = ctx.deps
        s = self.settings
        seed = deps.sampling.seed
        policy = TacticPolicy(
            deps.llm,
            k=s.tactics_per_state,
            prompt=s.policy_prompt or DEFAULT_POLICY_PROMPT,
            temperature=s.temperature,
            top_p=deps.sampling.top_p,
            max_tokens=s.policy_max_tokens,
            statement=deps.problem.statement,
            demos=_demos_text(deps),
            seed=None if seed is None else seed + 100_000 * sample,
        )
        critic = ctx.state.get("critic")
        return BestFirstSearch(
            session,
            policy,
            limits=self.limits(),
            cache=cache,
            critic=critic,
            tactic_timeout=s.tactic_timeout_s or deps.lean_timeout,
        )


class RMaxTSAgent(_SearchAgent):
    """Truncate-and-resume with RMaxTS per attempt, the proof writer being the run's LLM."""

    role = "search"

    def build(self, ctx: RunContext[ProverDeps], session: ProofSession, cache: TacticCache, sample: int) -> Any:
        from malot.provers.search.rmaxts import DEFAULT_RESUME_PROMPT, ProofWriter, TruncateResumeSearch

        deps = ctx.deps
        s = self.settings
        seed = deps.sampling.seed
        writer = ProofWriter(
            deps.llm,
            statement=deps.problem.statement,
            header=deps.problem.header,
            prompt=s.resume_prompt or DEFAULT_RESUME_PROMPT,
            temperature=s.temperature,
            top_p=deps.sampling.top_p,
            max_tokens=s.resume_max_tokens,
            seed=None if seed is None else seed + 100_000 * sample,
        )
        return TruncateResumeSearch(
            session,
            writer,
            limits=self.limits(),
            cache=cache,
            exploration=s.exploration,
            tactic_timeout=s.tactic_timeout_s or deps.lean_timeout,
        )


def _demos_text(deps: ProverDeps) -> str:
    parts = []
    for demo in deps.demos:
        statement = str(demo.get("statement", "") or demo.get("formal_statement", ""))
        proof = str(demo.get("proof", "") or demo.get("formal_proof", ""))
        if statement or proof:
            parts.append(f"[EXAMPLE]\n{statement}{proof}\n")
    return "".join(parts)


class _SearchStrategy(Strategy):
    """A tactic-level search strategy: ``search -> verifier -> END``, its limits from ``[search]``."""

    agent_class: ClassVar[type[_SearchAgent]] = BestFirstAgent

    def __init__(self, *, settings: SearchSettings | None = None) -> None:
        super().__init__(rounds=0)
        from malot.config import SearchSettings

        self.search = settings or SearchSettings()

    @classmethod
    def from_settings(cls, *, rounds: int, settings: Settings | None = None) -> Strategy:
        """The strategy with the ``[search]`` settings (``rounds`` does not apply to a search)."""
        return cls(settings=settings.search if settings is not None else None)

    def workflow(self) -> Workflow:
        return Workflow(
            self.name,
            [self.agent_class(self.search), VerifierAgent()],
            [("search", "verifier"), Edge("verifier", END)],
            start="search",
            max_steps=3,
        )

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.name, "rounds": 0, "search": self.search.model_dump()}


class BestFirst(_SearchStrategy):
    """Best-first tactic search (``--strategy best-first``)."""

    name = "best-first"
    agent_class = BestFirstAgent


class RMaxTS(_SearchStrategy):
    """Truncate-and-resume with RMaxTS (``--strategy rmaxts``)."""

    name = "rmaxts"
    agent_class = RMaxTSAgent
