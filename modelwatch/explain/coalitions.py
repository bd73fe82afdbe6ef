"""Interventional Shapley values of any prediction function, vectorized over rows and coalitions.

The game of row x: v(S) = mean over background rows b of f(x_S, b_rest) (features in S from the
row, the others from the background row). Two estimators:
- exact_shapley: every coalition (2^m per row), phi_j = sum_S |S|!(m-|S|-1)!/m! (v(S+j) - v(S));
- permutation_shapley: antithetic permutation sampling, as shap's Permutation explainer does
  (each drawn order walked forward and backward): unbiased, exact for games with interactions of
  at most two features (additive models, depth-2 trees), and always additive.

Why not shap's own model-agnostic explainers (measured on the bike demo's HistGradientBoosting
pipeline, 11 features, 50 rows, 25 background rows, 5 permutations; README "Explanations"):
shap 0.51's Permutation explainer calls the model once per row per permutation (about 300 calls,
each paying scikit-learn's and pandas' per-call overhead: 6.9 s per batch), and its numba kernels
compile again in every process (10-18 s; `_build_fixed_single_output` takes a jitted function as
an argument, which numba cannot cache on disk). Here every coalition value of every row comes
from a few large model calls. shap stays the reference the tests compare with, and the engine of
the tree path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from math import factorial

import numpy as np

MAX_MODEL_ROWS = 250_000  # rows per model call (bounds memory: rows x features floats)
ROUND_OFF = 1e-12  # |value| below this share of the output's scale is summation noise: 0


@dataclass
class Game:
    """The interventional game of each row of `x` (rows x features, numeric) against the
    background `bg`; `full` is f(x) (v of the whole set), computed by the caller."""

    predict: Callable[[np.ndarray], np.ndarray]
    x: np.ndarray
    bg: np.ndarray
    full: np.ndarray
    base: float = field(init=False)  # v(empty set): the mean prediction over the background

    def __post_init__(self) -> None:
        self.full = np.asarray(self.full, dtype=float)
        self.base = float(np.mean(self.predict(self.bg)))

    @property
    def features(self) -> int:
        return int(self.x.shape[1])

    def values(self, masks: np.ndarray) -> np.ndarray:
        """Returns v(S) for masks of shape (rows, K, features) (True: the feature comes from the
        row), shape (rows, K)."""
        n, k, m = masks.shape
        flat = masks.reshape(n * k, m)
        owner = np.repeat(np.arange(n), k)
        out = np.empty(n * k)
        step = max(1, MAX_MODEL_ROWS // len(self.bg))
        for lo in range(0, n * k, step):
            hi = min(lo + step, n * k)
            z = np.where(flat[lo:hi, None, :], self.x[owner[lo:hi], None, :], self.bg[None, :, :])
            pred = np.asarray(self.predict(z.reshape(-1, m)), dtype=float)
            out[lo:hi] = pred.reshape(hi - lo, len(self.bg)).mean(axis=1)
        return out.reshape(n, k)


def exact_shapley(game: Game) -> np.ndarray:
    """Returns the exact Shapley values (rows x features) from all 2^m coalitions."""
    n, m = game.x.shape
    size = 1 << m
    bits = (np.arange(size)[:, None] >> np.arange(m)[None, :]) & 1  # coalition -> members
    v = np.empty((n, size))
    v[:, 0], v[:, size - 1] = game.base, game.full
    if size > 2:
        inner = bits[1 : size - 1].astype(bool)
        v[:, 1 : size - 1] = game.values(np.broadcast_to(inner, (n, *inner.shape)))
    members = bits.sum(axis=1)
    weight = np.array([factorial(s) * factorial(m - s - 1) / factorial(m) for s in range(m)])
    phi = np.empty((n, m))
    for j in range(m):
        without = np.flatnonzero(bits[:, j] == 0)
        phi[:, j] = (v[:, without | (1 << j)] - v[:, without]) @ weight[members[without]]
    return _round_off(phi, game)


def permutation_shapley(game: Game, permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Returns antithetic permutation estimates of the Shapley values (rows x features):
    `permutations` random orders per row, each walked forward (adding features in order) and
    backward (adding them in reverse order)."""
    n, m = game.x.shape
    order = np.argsort(rng.random((n, permutations, m)), axis=-1)  # order[..., t]: t-th feature
    rank = np.argsort(order, axis=-1)  # rank[..., f]: position of feature f in the order
    steps = np.arange(1, m)[:, None]  # t = 1 .. m-1
    first = rank[:, :, None, :] < steps  # the first t features of the order
    masks = np.concatenate([first, ~first], axis=2)  # forward C_t, then the rest D_t
    v = game.values(masks.reshape(n, permutations * 2 * (m - 1), m))
    v = v.reshape(n, permutations, 2, m - 1)
    base = np.full((n, permutations, 1), game.base)
    full = np.broadcast_to(game.full[:, None, None], (n, permutations, 1))
    forward = np.concatenate([base, v[:, :, 0], full], axis=2)  # v(C_0) .. v(C_m)
    rest = np.concatenate([full, v[:, :, 1], base], axis=2)  # v(D_0) .. v(D_m)
    # the t-th feature of the order gains v(C_t) - v(C_t-1) forward, v(D_t-1) - v(D_t) backward
    gain = np.diff(forward, axis=2) - np.diff(rest, axis=2)
    by_feature = np.take_along_axis(gain, rank, axis=2)
    return _round_off(by_feature.sum(axis=1) / (2 * permutations), game)


def _round_off(phi: np.ndarray, game: Game) -> np.ndarray:
    """Sets values that are summation noise to 0: a feature the model never uses has Shapley
    value 0, which sums of differences of equal floats leave as about 1e-16 (and attribution
    drift would then show a +169 % change of nothing)."""
    scale = max(1.0, abs(game.base), float(np.abs(game.full).max(initial=0.0)))
    return np.where(np.abs(phi) <= ROUND_OFF * scale, 0.0, phi)
