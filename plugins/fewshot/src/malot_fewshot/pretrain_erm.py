"""Unsupervised pre-training then ERM: MLE of a latent-variable model on unlabelled data, ERM on few labels.

The setting of "On the Provable Advantage of Unsupervised Pretraining" (Ge, Zhou, Liu, Jin; ICLR 2024): data
``x`` are generated from a latent variable ``z`` (``x ~ p_φ(x|z)``) and labels depend on ``x`` only through ``z``.
Phase 1 fits ``φ`` by maximum likelihood on ``m`` unlabelled samples; phase 2 runs empirical risk minimisation of a
simple predictor ``ψ`` on the representation ``E_φ[z|x]`` (posterior responsibilities of a Gaussian mixture, or
posterior means of a factor-analysis model) with ``n`` labels. The excess risk is ``Õ(√(C_Φ/m) + √(C_Ψ/n))``, against
``Õ(√(C_{Φ∘Ψ}/n))`` for supervised learning of the composite class, so pre-training wins when ``m ≫ n``. The
paper's part: the two-phase estimator; the library's (scikit-learn): the EM fits of the latent models and the
logistic-regression ERM. Exact properties: ``latent_model="none"`` is plain supervised logistic regression, and
relabelling the mixture components leaves every prediction unchanged (the latent model is identified only up to a
permutation, which ERM absorbs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_fewshot.core.arrays import as_labels, as_matrix

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "PretrainErmInput",
    "PretrainErmOutput",
    "PretrainedPredictor",
    "pretrain_then_erm",
    "pretrain_then_erm_tool",
]

_PAPER = "On the Provable Advantage of Unsupervised Pretraining (Ge, Zhou, Liu, Jin; ICLR 2024)"

LatentModel = Literal["gmm", "factor", "none"]


@dataclass
class PretrainedPredictor:
    """The MLE latent model (``None`` for plain supervised learning) and the ERM head on its representation."""

    latent: Any
    head: Any
    kind: LatentModel

    def features(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """The representation ``E[z|x]`` of the fitted latent model (``x`` itself for ``none``)."""
        import numpy as np

        if self.kind == "gmm":
            return np.asarray(self.latent.predict_proba(x), dtype=np.float64)
        if self.kind == "factor":
            return np.asarray(self.latent.transform(x), dtype=np.float64)
        return x

    def predict(self, x: NDArray[np.float64]) -> NDArray[np.int64]:
        """Predicted labels."""
        import numpy as np

        return np.asarray(self.head.predict(self.features(x)), dtype=np.int64)

    def predict_proba(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Predicted class probabilities."""
        import numpy as np

        return np.asarray(self.head.predict_proba(self.features(x)), dtype=np.float64)


def pretrain_then_erm(
    unlabelled: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.int64],
    *,
    latent_model: LatentModel = "gmm",
    n_latent: int = 4,
    c: float = 1.0,
    seed: int = 0,
) -> PretrainedPredictor:
    """Phase 1: MLE of the latent model on ``unlabelled`` (EM, scikit-learn). Phase 2: logistic-regression ERM."""
    from sklearn.decomposition import FactorAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.mixture import GaussianMixture

    latent: Any = None
    if latent_model == "gmm":
        latent = GaussianMixture(n_components=n_latent, covariance_type="full", n_init=3, random_state=seed)
        latent.fit(unlabelled)
    elif latent_model == "factor":
        latent = FactorAnalysis(n_components=n_latent, random_state=seed).fit(unlabelled)
    predictor = PretrainedPredictor(latent=latent, head=None, kind=latent_model)
    predictor.head = LogisticRegression(C=c, max_iter=5000).fit(predictor.features(x), y)
    return predictor


class PretrainErmInput(BaseModel):
    """Arguments of the ``pretrain_then_erm`` tool."""

    unlabelled: list[list[float]] = Field(description="m unlabelled samples for maximum-likelihood pre-training")
    x: list[list[float]] = Field(description="n labelled samples (n can be small)")
    y: list[int] = Field(description="labels of x (0..C-1)")
    predict: list[list[float]] | None = Field(default=None, description="samples to label with the fitted model")
    latent_model: LatentModel = Field(default="gmm", description="gmm | factor | none (plain supervised baseline)")
    n_latent: int = Field(default=4, gt=0, description="mixture components / latent factors")
    c: float = Field(default=1.0, gt=0, description="inverse L2 strength of the logistic ERM")
    seed: int = 0


class PretrainErmOutput(BaseModel):
    """Result of the ``pretrain_then_erm`` tool."""

    train_accuracy: float
    unlabelled_log_likelihood: float | None
    predictions: list[int] | None


@tool(
    name="pretrain_then_erm",
    family="fewshot",
    paper=_PAPER,
    tags=("few-shot", "unsupervised pre-training", "latent variable", "semi-supervised", "needs:unlabelled+few labels"),
)
def pretrain_then_erm_tool(args: PretrainErmInput) -> PretrainErmOutput:
    """Pre-train a latent-variable model by MLE on unlabelled data, then fit a classifier on its representation.

    Use when unlabelled data are plentiful and labels few; ``latent_model="none"`` gives the supervised baseline.
    """
    unlabelled = as_matrix(args.unlabelled, "unlabelled", min_rows=2)
    x = as_matrix(args.x, "x", cols=unlabelled.shape[1])
    y = as_labels(args.y, "y", length=len(x))
    if len(set(y.tolist())) < 2:
        raise ToolError("the labelled set needs at least two classes", hint="add labelled samples of another class")
    if args.latent_model != "none" and args.n_latent >= len(unlabelled):
        raise ToolError(f"n_latent={args.n_latent} needs more unlabelled samples", hint="lower n_latent")
    if args.latent_model == "factor" and args.n_latent > unlabelled.shape[1]:
        raise ToolError(f"factor analysis cannot have more factors ({args.n_latent}) than features")
    predict = as_matrix(args.predict, "predict", cols=x.shape[1]) if args.predict is not None else None
    model = pretrain_then_erm(
        unlabelled, x, y, latent_model=args.latent_model, n_latent=args.n_latent, c=args.c, seed=args.seed
    )
    return PretrainErmOutput(
        train_accuracy=float((model.predict(x) == y).mean()),
        unlabelled_log_likelihood=float(model.latent.score(unlabelled)) if model.latent is not None else None,
        predictions=model.predict(predict).tolist() if predict is not None else None,
    )
