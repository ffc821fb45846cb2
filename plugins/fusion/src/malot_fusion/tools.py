"""The ``fusion`` family's tools: JSON in, JSON out, one per method; heavy imports happen inside each tool.

Kept apart from the method modules so that listing tools (``malot tools list``) does not import torch.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

__all__ = [
    "BTMInput",
    "BTMOutput",
    "BinaryPVInput",
    "BinaryPVOutput",
    "FusionInput",
    "FusionOutput",
    "GpiclInput",
    "GpiclOutput",
    "LokiInput",
    "LokiOutput",
    "RecoInput",
    "RecoOutput",
    "Set2SeqInput",
    "Set2SeqOutput",
]

_FAMILY = "fusion"


def _load_causal_lm(name: str) -> tuple[Any, Any]:
    import importlib

    tf: Any = importlib.import_module("transformers")
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(name)
        model = tf.AutoModelForCausalLM.from_pretrained(name).eval()
    except (OSError, ValueError) as exc:
        raise ToolError(f"could not load model {name!r}: {exc}", hint="pass a local model folder") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


class FusionInput(BaseModel):
    """Arguments of ``dynamic_logits_fusion``."""

    large: str = Field(description="the large model (folder or hub id)")
    experts: list[str] = Field(min_length=1, description="small fine-tuned expert models sharing the tokenizer")
    base: str = Field(description="the small base model the experts were fine-tuned from")
    prompt: str
    max_tokens: int = Field(32, ge=1, le=4096)
    temperature: float = Field(0.0, ge=0.0)
    lower: float = Field(0.0, ge=0.0)
    upper: float = Field(2.0, gt=0.0)
    objective: Literal["marginal", "total"] = "marginal"
    seed: int = 0


class FusionOutput(BaseModel):
    """The fused continuation and, for every decoding step, the expert weights and KL shifts."""

    text: str
    weights: list[list[float]]
    target_kl: list[list[float]]
    fused_kl: list[float]


@tool(
    name="dynamic_logits_fusion",
    family=_FAMILY,
    paper="Fan et al. 2024, On Giant's Shoulders: Effortless Weak to Strong by Dynamic Logits Fusion",
    tags=("decoding", "weak-to-strong", "logits"),
    heavy=True,
)
def dynamic_logits_fusion_tool(args: FusionInput) -> FusionOutput:
    """Decode a large model steered by small experts: each step adds the experts' logit shifts from their base,
    weighted so the large model's KL shift matches each expert's own."""
    import torch

    from malot_fusion.fusion_processor import FusionLogitsProcessor

    large, tokenizer = _load_causal_lm(args.large)
    experts = [_load_causal_lm(name)[0] for name in args.experts]
    base, _ = _load_causal_lm(args.base)
    processor = FusionLogitsProcessor(
        experts, base, lower=args.lower, upper=args.upper, objective=args.objective, pad_token_id=tokenizer.pad_token_id
    )
    ids = torch.tensor([tokenizer(args.prompt)["input_ids"]])
    torch.manual_seed(args.seed)
    sampling: dict[str, Any] = (
        {"do_sample": True, "temperature": args.temperature, "top_k": 0}
        if args.temperature > 0
        else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    )
    with torch.no_grad():
        out = large.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=args.max_tokens,
            logits_processor=[processor],
            pad_token_id=tokenizer.pad_token_id,
            **sampling,
        )
    steps = processor.recorder.steps
    return FusionOutput(
        text=tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True),
        weights=[s.weights[0] for s in steps],
        target_kl=[s.target_kl[0] for s in steps],
        fused_kl=[s.fused_kl[0] for s in steps],
    )


class BTMInput(BaseModel):
    """Arguments of ``btm_ensemble``."""

    experts: list[str] = Field(min_length=1, description="domain expert LMs sharing one tokenizer")
    prompt: str
    prior: list[float] | None = Field(None, description="domain prior (default uniform)")
    top_k: int | None = Field(None, ge=1)
    max_tokens: int = Field(32, ge=1, le=4096)


class BTMOutput(BaseModel):
    """The greedy ensemble continuation and the domain posterior before every generated token."""

    text: str
    posteriors: list[list[float]]


@tool(
    name="btm_ensemble",
    family=_FAMILY,
    paper="Li et al. 2022, Branch-Train-Merge: Embarrassingly Parallel Training of Expert Language Models",
    tags=("decoding", "ensemble", "experts"),
    heavy=True,
)
def btm_ensemble_tool(args: BTMInput) -> BTMOutput:
    """Decode with an ensemble of domain experts weighted by the posterior over domains given the context."""
    import torch

    from malot_fusion.btm_ensemble import BTMEnsemble

    loaded = [_load_causal_lm(name) for name in args.experts]
    tokenizer = loaded[0][1]
    prior = None
    if args.prior is not None:
        if len(args.prior) != len(args.experts) or min(args.prior) <= 0:
            raise ToolError("the prior needs one positive value per expert")
        prior = torch.log(torch.tensor(args.prior, dtype=torch.float64) / sum(args.prior))
    ensemble = BTMEnsemble([m for m, _ in loaded], log_prior=prior, top_k=args.top_k)
    ids = torch.tensor([tokenizer(args.prompt)["input_ids"]])
    generated: list[int] = []
    for _ in range(args.max_tokens):
        log_probs, _ = ensemble.next_log_probs(ids)
        token = int(log_probs[0].argmax())
        if token == tokenizer.eos_token_id:
            break
        generated.append(token)
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return BTMOutput(text=tokenizer.decode(generated), posteriors=[p[0] for p in ensemble.posteriors])


class LokiInput(BaseModel):
    """Arguments of ``loki``: class probabilities and a label metric (a graph or label embeddings)."""

    probs: list[list[float]] = Field(description="rows of probabilities over the observed classes")
    observed: list[int] = Field(min_length=1, description="label index of each observed class")
    n_labels: int | None = Field(None, ge=1, description="number of labels of the graph metric")
    edges: list[tuple[int, int]] | None = Field(None, description="undirected edges of the label graph")
    edge_weights: list[float] | None = None
    embeddings: list[list[float]] | None = Field(None, description="label embeddings (Euclidean metric)")


class LokiOutput(BaseModel):
    """Loki's predictions over all labels, and the argmax baseline (mapped to labels)."""

    predictions: list[int]
    argmax: list[int]


@tool(
    name="loki",
    family=_FAMILY,
    paper="Fu et al. 2023, Geometry-Aware Adaptation for Pretrained Models",
    tags=("prediction", "metric-space", "zero-shot"),
)
def loki_tool(args: LokiInput) -> LokiOutput:
    """Predict the Fréchet mean of the class probabilities over a label metric space (can be an unseen label)."""
    import torch

    from malot_fusion.loki import LokiPredictor, euclidean_distances, graph_distances

    if args.embeddings is not None:
        dist = euclidean_distances(torch.tensor(args.embeddings, dtype=torch.float64))
    elif args.edges is not None and args.n_labels is not None:
        dist = graph_distances(args.n_labels, args.edges, args.edge_weights)
    else:
        raise ToolError("loki needs a label metric", hint="give 'embeddings', or 'n_labels' with 'edges'")
    probs = torch.tensor(args.probs, dtype=torch.float64)
    predictor = LokiPredictor(dist, args.observed)
    argmax = [args.observed[i] for i in probs.argmax(-1).tolist()]
    return LokiOutput(predictions=predictor.predict(probs).tolist(), argmax=argmax)


class BinaryPVInput(BaseModel):
    """Arguments of ``binary_pv``: a corpus to code, queries to search with."""

    documents: list[str] = Field(min_length=1)
    queries: list[str] = Field(default_factory=list)
    bits: int = Field(32, ge=8, le=256)
    epochs: int = Field(30, ge=1, le=1000)
    k: int = Field(5, ge=1)
    seed: int = 0


class BinaryPVOutput(BaseModel):
    """Hex binary codes of the documents, and per query the nearest documents by Hamming distance."""

    codes: list[str]
    neighbours: list[list[int]]
    distances: list[list[int]]


@tool(
    name="binary_pv",
    family=_FAMILY,
    paper="Grzegorczyk and Kurdziel 2017, Binary Paragraph Vector Models",
    tags=("retrieval", "hashing", "pre-filter"),
    heavy=True,
)
def binary_pv_tool(args: BinaryPVInput) -> BinaryPVOutput:
    """Learn binary document codes (PV-DBOW with a straight-through sigmoid layer) and search them by Hamming
    distance, a cheap pre-filter for demonstrations or premises."""
    import torch

    from malot_fusion.binary_pv import BinaryPV, hamming_search, pack_codes

    torch.manual_seed(args.seed)
    vocab: dict[str, int] = {}
    docs = [[vocab.setdefault(w, len(vocab)) for w in text.lower().split()] for text in args.documents]
    if any(not d for d in docs):
        raise ToolError("every document needs at least one word")
    model = BinaryPV(len(docs), len(vocab), bits=args.bits)
    model.fit(docs, epochs=args.epochs)
    codes = pack_codes(model.codes())
    neighbours: list[list[int]] = []
    distances: list[list[int]] = []
    queries = [[vocab[w] for w in text.lower().split() if w in vocab] for text in args.queries]
    if queries:
        if any(not q for q in queries):
            raise ToolError("a query shares no word with the documents", hint="use words that occur in the corpus")
        query_codes = pack_codes(model.infer(queries, epochs=args.epochs))
        dist, idx = hamming_search(query_codes, codes, args.k)
        neighbours, distances = idx.tolist(), dist.tolist()
    return BinaryPVOutput(
        codes=[bytes(row).hex() for row in codes.tolist()], neighbours=neighbours, distances=distances
    )


class RecoInput(BaseModel):
    """Arguments of ``retrieve_coseg``: concept vectors, a collection of items (global embedding plus dense
    features), and features to label."""

    concepts: list[list[float]] = Field(min_length=1)
    item_embeddings: list[list[float]] = Field(min_length=2)
    item_features: list[list[list[float]]] = Field(min_length=2)
    features: list[list[float]]
    k: int = Field(8, ge=2)
    per_item: int = Field(1, ge=1)
    background_threshold: float | None = None


class RecoOutput(BaseModel):
    """The label (concept index, or -1 for background) of each feature, and the reference per concept."""

    labels: list[int]
    references: list[list[float]]


@tool(
    name="retrieve_coseg",
    family=_FAMILY,
    paper="Shin, Xie and Albanie 2022, ReCo: Retrieve and Co-segment for Zero-shot Transfer",
    tags=("retrieval", "co-segmentation", "zero-shot"),
)
def retrieve_coseg_tool(args: RecoInput) -> RecoOutput:
    """Retrieve the items nearest each concept, co-segment what they share into a reference, label features by it."""
    import torch

    from malot_fusion.retrieve_coseg import build_references, label_features

    if len(args.item_embeddings) != len(args.item_features):
        raise ToolError("give one feature set per item embedding")
    references = build_references(
        torch.tensor(args.concepts, dtype=torch.float64),
        torch.tensor(args.item_embeddings, dtype=torch.float64),
        [torch.tensor(f, dtype=torch.float64) for f in args.item_features],
        k=args.k,
        per_item=args.per_item,
    )
    labels, _ = label_features(
        torch.tensor(args.features, dtype=torch.float64), references, background_threshold=args.background_threshold
    )
    return RecoOutput(labels=labels.tolist(), references=references.tolist())


class GpiclInput(BaseModel):
    """Arguments of ``gpicl``: the task family and the meta-training budget."""

    dim: int = Field(8, ge=2, le=128)
    classes: int = Field(4, ge=2, le=32)
    length: int = Field(32, ge=4, le=128)
    steps: int = Field(300, ge=1, le=100_000)
    n_tasks: int | None = Field(
        None, ge=1, description="fixed pool of training tasks (default: a new task per sequence)"
    )
    seed: int = 0


class GpiclOutput(BaseModel):
    """Accuracy at each context position on unseen tasks after meta-training, and the final training loss."""

    accuracy_by_position: list[float]
    final_loss: float


@tool(
    name="gpicl",
    family=_FAMILY,
    paper="Kirsch et al. 2022, General-Purpose In-Context Learning by Meta-Learning Transformers",
    tags=("meta-learning", "in-context-learning"),
    heavy=True,
)
def gpicl_tool(args: GpiclInput) -> GpiclOutput:
    """Meta-train a small transformer on random linear classification tasks, then measure in-context learning on
    unseen tasks."""
    import torch

    from malot_fusion.gpicl import GaussianTaskSource, ICLTransformer, in_context_accuracy, meta_train

    torch.manual_seed(args.seed)
    source = GaussianTaskSource(args.dim, args.classes, seed=args.seed)
    model = ICLTransformer(args.dim + args.classes, args.classes, max_len=args.length)
    losses = meta_train(model, source, steps=args.steps, length=args.length, n_tasks=args.n_tasks, seed=args.seed)
    accuracy = in_context_accuracy(model, source, length=args.length)
    return GpiclOutput(accuracy_by_position=accuracy.tolist(), final_loss=losses[-1])


class Set2SeqInput(BaseModel):
    """Arguments of ``set2seq``: learn to output a set's elements above a threshold, then answer for ``sets``."""

    sets: list[list[float]] = Field(min_length=1, description="input sets of numbers in [0, 1]")
    set_size: int = Field(5, ge=2, le=7)
    threshold: float = 0.5
    steps: int = Field(300, ge=1, le=100_000)
    process_steps: int = Field(5, ge=0, le=20)
    order_free: bool = Field(True, description="train with the min-over-orders loss (else a random target order)")
    seed: int = 0


class Set2SeqOutput(BaseModel):
    """For each input set, the indices the pointer decoder emitted (an unordered answer set)."""

    outputs: list[list[int]]
    final_loss: float


@tool(
    name="set2seq",
    family=_FAMILY,
    paper="Vinyals, Bengio and Kudlur 2016, Order Matters: Sequence to sequence for sets",
    tags=("sets", "pointer-network", "order-invariance"),
    heavy=True,
)
def set2seq_tool(args: Set2SeqInput) -> Set2SeqOutput:
    """Train a read-process-write encoder with a pointer decoder on a set-output task (order-free loss), then decode."""
    import torch

    from malot_fusion.set2seq import Set2Seq, train_subset_task

    torch.manual_seed(args.seed)
    model = Set2Seq(1, 32, args.process_steps)
    losses = train_subset_task(
        model, steps=args.steps, set_size=args.set_size, threshold=args.threshold, order_free=args.order_free
    )
    outputs = [model.predict(torch.tensor(s, dtype=torch.float32)[None, :, None])[0] for s in args.sets]
    return Set2SeqOutput(outputs=outputs, final_loss=losses[-1])
