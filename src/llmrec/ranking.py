"""Ranker: a learned logistic scorer over candidate features, then MMR diversity.

``score = sigmoid(b + sum_i w_i * f_i)``; each ``w_i * f_i`` is kept as the signal's
contribution, which is the evidence an explanation shows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from llmrec._validate import check_float
from llmrec.errors import ConfigError, InvalidInputError, PersistenceError
from llmrec.storage.io import read_json, write_json

__all__ = ["DEFAULT_WEIGHTS", "Ranker", "mmr_order"]

logger = logging.getLogger(__name__)

#: Starting weights of the built-in features for a :class:`Ranker` given no ``weights``.
#: The pipeline passes its own instead: each candidate source's ``default_weight``
#: (``Retriever.default_weights``) plus its tag affinity feature.
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "text_similarity": 2.0,
    "co_occurrence": 3.0,
    "popularity": 1.5,
    "query": 4.0,
    "tag_affinity": 0.5,
}


def mmr_order(relevance: np.ndarray, vectors: np.ndarray, k: int, diversity: float) -> np.ndarray:
    """Maximal marginal relevance: greedily pick ``k`` positions of ``relevance``.

    Each step takes ``argmax (1 - diversity) * rel - diversity * max_sim_to_picked`` with
    relevance min-max scaled to [0, 1]. ``diversity=0`` is a plain sort.
    """
    n = len(relevance)
    k = min(k, n)
    order = np.argsort(-relevance, kind="stable")
    if diversity <= 0 or k <= 1:
        return order[:k]
    # Only the top of the list can win once diversity is bounded; keep the work small.
    pool = order[: max(4 * k, 50)]
    rel = relevance[pool].astype(np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    sims = vectors[pool] @ vectors[pool].T
    picked = [0]
    max_sim = sims[0].copy()
    available = np.ones(len(pool), dtype=bool)
    available[0] = False
    while len(picked) < k:
        gain = (1.0 - diversity) * rel - diversity * max_sim
        gain[~available] = -np.inf
        best = int(np.argmax(gain))
        picked.append(best)
        available[best] = False
        np.maximum(max_sim, sims[best], out=max_sim)
    return pool[np.asarray(picked)]


class Ranker:
    """Scores candidates with a logistic model over named features.

    Args:
        feature_names: The features, in order.
        weights: Initial weights by name, 0 for features not named. ``None`` starts the
            built-in features at :data:`DEFAULT_WEIGHTS` and every other feature at 0.
        bias: Initial bias.
        l2: L2 penalty used by :meth:`fit`.
        diversity: Default MMR trade-off in [0, 1) (0 = rank by score alone).
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        *,
        weights: Mapping[str, float] | None = None,
        bias: float = 0.0,
        l2: float = 1e-3,
        diversity: float = 0.0,
    ) -> None:
        names = tuple(feature_names)
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"feature_names must be unique and non-empty, got {names!r}")
        self.feature_names = names
        self.l2 = check_float(l2, "l2", low=0.0)
        self.diversity = self.check_diversity(diversity)
        if weights is not None and not isinstance(weights, Mapping):
            raise ConfigError(
                f"weights must be a mapping of feature name to number, got {type(weights).__name__}"
            )
        given = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = set(given) - set(names)
        if weights is not None and unknown:
            raise ConfigError(f"weights name unknown features {sorted(unknown)}")
        self.weights_ = np.array(
            [check_float(given.get(n, 0.0), f"weights[{n!r}]") for n in names], dtype=np.float64
        )
        self.bias_ = check_float(bias, "bias")
        self.fitted_ = False

    @staticmethod
    def check_diversity(diversity: Any) -> float:
        """``diversity`` as a float in [0, 1), else :class:`~llmrec.InvalidInputError`."""
        return check_float(
            diversity, "diversity", low=0.0, high=1.0, high_open=True, error=InvalidInputError
        )

    @property
    def weights(self) -> dict[str, float]:
        """Feature name -> current weight."""
        return dict(zip(self.feature_names, self.weights_.tolist()))

    def feature_matrix(self, features: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Stack named feature arrays into ``(n, n_features)``; absent features are 0."""
        out = np.zeros((n, len(self.feature_names)), dtype=np.float64)
        for j, name in enumerate(self.feature_names):
            if name in features:
                out[:, j] = features[name]
        return out

    def score(
        self, x: np.ndarray, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(probabilities, contributions)`` for a feature matrix, by the fitted
        weights or the given ``weights`` (one per feature, in order)."""
        contributions = x * (self.weights_ if weights is None else weights)
        logits = contributions.sum(axis=1) + self.bias_
        return 1.0 / (1.0 + np.exp(-logits)), contributions

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        sample_weight: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        prior: Mapping[str, float] | None = None,
        prior_strength: float = 0.0,
        nonnegative: Sequence[str] = (),
    ) -> Ranker:
        """Fit weights by regularized logistic regression (L-BFGS-B).

        The loss is the weighted mean log loss plus ``l2 / 2 * |w|^2`` plus
        ``prior_strength / 2 * |w - prior|^2``: with little data the prior holds the
        weights near it, with much data the data decides.

        With ``groups`` (one request's candidates per group, as ranked together) the
        weights are fitted listwise instead: the loss is the mean over groups with a
        positive of the softmax cross-entropy of its positive rows among its candidates,
        which scores only the order within a request, what ranking uses. The bias, which
        does not change an order, is then fitted by the weighted log loss with the
        weights held, so :meth:`score` stays a probability.

        Args:
            x: ``(n, n_features)`` features.
            y: ``(n,)`` labels in {0, 1}.
            sample_weight: Optional per-row weights (e.g. to balance classes); with
                ``groups`` they weigh the bias fit only.
            groups: Optional ``(n,)`` group id of each row (any integers).
            prior: Weights the fit is pulled toward, by feature name (absent names: 0);
                ``None``: the current weights.
            prior_strength: Strength of that pull (>= 0; 0 = none).
            nonnegative: Features whose weight may not go below 0 (similarity-type
                signals: being more similar to what the user likes must never count
                against an item).

        Raises:
            InvalidInputError: mis-shaped or non-finite data, one class only, or a
                ``nonnegative`` name that is not a feature.
        """
        x, y = self._check_data(x, y)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        w = w / w.sum()
        strength = check_float(
            prior_strength,
            "prior_strength",
            low=0.0,
            high=math.inf,
            high_open=True,
            error=InvalidInputError,
        )
        for what, names_given in (("prior", prior or {}), ("nonnegative", nonnegative)):
            unknown = set(names_given) - set(self.feature_names)
            if unknown:
                raise InvalidInputError(f"{what} names unknown features {sorted(unknown)}")
        if prior is None:
            target = self.weights_.copy()
        else:
            target = np.array(
                [
                    check_float(prior.get(n, 0.0), f"prior[{n!r}]", error=InvalidInputError)
                    for n in self.feature_names
                ]
            )
        # A feature that never varies in the training data (e.g. ``query`` when no event
        # carried a query) says nothing about its weight: keep the current one.
        free = x.std(axis=0) > 1e-12
        offset = x[:, ~free] @ self.weights_[~free]
        xf, prior_f = x[:, free], target[free]
        names = np.asarray(self.feature_names)[free]
        bounds = [(0.0, None) if n in set(nonnegative) else (None, None) for n in names]

        def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
            coef, b = params[:-1], params[-1]
            z = xf @ coef + b + offset
            gap = coef - prior_f
            # log(1 + e^z) - y z, computed stably
            value = float(np.sum(w * (np.logaddexp(0.0, z) - y * z)))
            value += 0.5 * self.l2 * coef @ coef + 0.5 * strength * gap @ gap
            p = 1.0 / (1.0 + np.exp(-z))
            grad_z = w * (p - y)
            grad = xf.T @ grad_z + self.l2 * coef + strength * gap
            return value, np.concatenate([grad, [grad_z.sum()]])

        start = self.weights_[free].copy()
        for j, (low, _) in enumerate(bounds):
            if low is not None:
                start[j] = max(start[j], low)
        if groups is None:
            result = minimize(
                loss,
                np.concatenate([start, [self.bias_]]),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds + [(None, None)],
            )
            coef, bias = result.x[:-1], float(result.x[-1])
        else:
            coef = self._fit_listwise(
                xf, y, self._check_groups(groups, len(y)), offset, start, prior_f, strength, bounds
            )

            # The bias alone, the weights held: a probability for score().
            def bias_loss(b: np.ndarray) -> tuple[float, np.ndarray]:
                value, grad = loss(np.concatenate([coef, b]))
                return value, grad[-1:]

            fixed = minimize(bias_loss, [self.bias_], jac=True, method="L-BFGS-B")
            bias = float(fixed.x[0])
        self.weights_ = self.weights_.copy()
        self.weights_[free] = coef
        self.bias_ = bias
        self.fitted_ = True
        logger.debug(
            "ranker fitted: %s bias=%.3f prior_strength=%.4g",
            {k: round(v, 3) for k, v in self.weights.items()},
            self.bias_,
            strength,
        )
        return self

    @staticmethod
    def _check_groups(groups: Any, n: int) -> np.ndarray:
        array = np.asarray(groups)
        if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
            raise InvalidInputError(
                f"groups must be {n} integer group ids, one per row, got {array.dtype} "
                f"{array.shape}"
            )
        return array

    def _fit_listwise(
        self,
        x: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray,
        offset: np.ndarray,
        start: np.ndarray,
        prior: np.ndarray,
        strength: float,
        bounds: list[tuple[float | None, float | None]],
    ) -> np.ndarray:
        """Weights minimizing the mean per-group softmax cross-entropy of the positives
        (``y`` as each group's target distribution), plus the L2 and prior terms."""
        order = np.argsort(groups, kind="stable")  # each group's rows together
        x, y, offset, groups = x[order], y[order], offset[order], groups[order]
        first = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        mass = np.add.reduceat(y, first)
        sizes = np.diff(np.r_[first, len(y)])
        keep = np.repeat(mass > 0, sizes)  # a group without a positive says nothing
        x, y, offset = x[keep], y[keep], offset[keep]
        sizes, mass = sizes[mass > 0], mass[mass > 0]
        first = np.r_[0, np.cumsum(sizes)[:-1]]
        target = y / np.repeat(mass, sizes)
        used = max(len(sizes), 1)

        def loss(coef: np.ndarray) -> tuple[float, np.ndarray]:
            z = x @ coef + offset
            top = np.maximum.reduceat(z, first)
            e = np.exp(z - np.repeat(top, sizes))
            total = np.add.reduceat(e, first)
            p = e / np.repeat(total, sizes)
            value = (float(np.sum(top + np.log(total))) - float(target @ z)) / used
            grad = x.T @ (p - target) / used
            gap = coef - prior
            value += 0.5 * self.l2 * coef @ coef + 0.5 * strength * gap @ gap
            return value, grad + self.l2 * coef + strength * gap

        result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
        return result.x

    def _check_data(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names) or len(y) != len(x):
            raise InvalidInputError(
                f"fit needs x of shape (n, {len(self.feature_names)}) and y of shape (n,), "
                f"got {x.shape} and {y.shape}"
            )
        if not np.isfinite(x).all():
            raise InvalidInputError("fit features contain NaN or inf")
        if len(np.unique(y)) < 2:
            raise InvalidInputError("fit needs both positive and negative examples")
        return x, y

    def order(
        self, relevance: np.ndarray, vectors: np.ndarray, k: int, diversity: float | None = None
    ) -> np.ndarray:
        """Positions of the final top-``k`` after MMR."""
        div = self.diversity if diversity is None else self.check_diversity(diversity)
        return mmr_order(relevance, vectors, k, div)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        return {
            "feature_names": list(self.feature_names),
            "weights": self.weights,
            "bias": self.bias_,
            "l2": self.l2,
            "diversity": self.diversity,
            "fitted": self.fitted_,
        }

    def save(self, path: Path) -> dict[str, Any]:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / "ranker.json", self.config())
        return {"file": "ranker.json"}

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> Ranker:
        state = read_json(Path(path) / "ranker.json")
        try:
            names, weights = state["feature_names"], state["weights"]
            if not isinstance(weights, Mapping) or not all(isinstance(n, str) for n in names):
                raise TypeError("feature_names must be names and weights a mapping")
            # Finite bounds: an infinite weight or bias would load and then score NaN.
            finite = {"low": -math.inf, "high": math.inf, "low_open": True, "high_open": True}
            for name, value in weights.items():
                check_float(value, f"ranker weights[{name!r}]", **finite, error=PersistenceError)
            check_float(state["bias"], "ranker bias", **finite, error=PersistenceError)
            check_float(
                state["l2"],
                "ranker l2",
                low=0.0,
                high=math.inf,
                high_open=True,
                error=PersistenceError,
            )
            ranker = cls(
                names,
                weights=weights,
                bias=state["bias"],
                l2=state["l2"],
                diversity=state["diversity"],
            )
            ranker.fitted_ = bool(state["fitted"])
        except (KeyError, TypeError, ConfigError) as exc:
            raise PersistenceError(f"corrupt ranker state in {str(path)!r}: {exc}") from None
        return ranker
