"""Strength shared across members and task types: an empirical-Bayes fit of success rates.

The model, on the logit scale, for unit u (a member's engine version) on task type t:

    logit p[u, t] = offset[u, t] + a[u] + b[t] + interaction[u, t]

`offset` is the declared prior (the logit of the member's declared skill level for the
type), `a[u] ~ N(0, sigma_unit²)` how much better or worse than declared the unit is on
all its types, `b[t] ~ N(0, sigma_type²)` how much harder or easier than declared the
type is for everyone. What the additive part does not explain is left to each cell,
whose success rate is Beta around `sigmoid(offset + a + b)` with strength `kappa`.

`fit_effects` finds the posterior mode of `a` and `b` from weighted success and failure
counts (alternating Newton steps: each group's update is one dimension). A cell's prior is
as uncertain as its unit's effect (little known of a new member) plus the interaction
(`cell_strength`); the type's effect is left out, being common to every candidate for a
task of that type. `fit_strength`
picks `kappa` by maximising the beta-binomial marginal likelihood of the cells (type-II
maximum likelihood) against leave-one-cell-out predictions: judged against predictions
fitted to their own data, cells look more additive than they are, and `kappa` runs to its
bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# scipy.special is imported by the functions that use it: loading it takes a quarter of a
# second, which every command would pay.

Array = NDArray[np.float64]
Index = NDArray[np.intp]


@dataclass(frozen=True)
class CellData:
    """Weighted outcomes per observed cell, with the indexes of its unit and type."""

    unit: Index
    type: Index
    successes: Array
    failures: Array
    offset: Array
    units: int
    types: int


@dataclass(frozen=True)
class Effects:
    """Posterior modes of the unit and type effects, and the leave-one-out predictions."""

    unit: Array
    type: Array
    unit_var: Array
    """Approximate posterior variance of each unit's effect."""
    loo_mean: Array
    loo_unit_var: Array


def fit_effects(cells: CellData, sigma_unit: float, sigma_type: float, *,
                start: tuple[Array, Array] | None = None, iterations: int = 15) -> Effects:
    """Fit `a` (per unit) and `b` (per type) to the cells' counts, shrunk towards zero."""
    from scipy.special import expit  # type: ignore[import-untyped, unused-ignore]
    a = np.zeros(cells.units) if start is None else start[0].copy()
    b = np.zeros(cells.types) if start is None else start[1].copy()
    trials = cells.successes + cells.failures
    prec_a, prec_b = 1.0 / sigma_unit**2, 1.0 / sigma_type**2

    def residuals() -> tuple[Array, Array]:
        p = expit(cells.offset + a[cells.unit] + b[cells.type])
        return cells.successes - trials * p, trials * p * (1.0 - p)

    for _ in range(iterations):
        grad, weight = residuals()
        a += ((np.bincount(cells.unit, grad, cells.units) - a * prec_a)
              / (np.bincount(cells.unit, weight, cells.units) + prec_a))
        grad, weight = residuals()
        b += ((np.bincount(cells.type, grad, cells.types) - b * prec_b)
              / (np.bincount(cells.type, weight, cells.types) + prec_b))
    grad, weight = residuals()
    hess_a = np.bincount(cells.unit, weight, cells.units) + prec_a
    hess_b = np.bincount(cells.type, weight, cells.types) + prec_b
    # One Newton step back removes each cell's own pull on its unit's and type's effect.
    eta = cells.offset + a[cells.unit] + b[cells.type]
    loo_eta = (eta - grad / np.maximum(hess_a[cells.unit] - weight, 1e-9)
               - grad / np.maximum(hess_b[cells.type] - weight, 1e-9))
    loo_var = 1.0 / np.maximum(hess_a[cells.unit] - weight, prec_a)
    unit_var: Array = np.reciprocal(hess_a)
    return Effects(a, b, unit_var, expit(loo_eta), loo_var)


def cell_strength(mean: Array, kappa: float | Array, unit_var: Array) -> Array:
    """A cell prior's strength (pseudo-outcomes) from the interaction strength `kappa` and
    the uncertainty of its unit's effect: the variances add, the latter through the slope
    of the logistic curve, and the sum is matched by a Beta of that mean."""
    q = mean * (1.0 - mean)
    variance = q / (kappa + 1.0) + q * q * unit_var
    strength: Array = np.maximum(q / variance - 1.0, 0.1)
    return strength


def fit_strength(cells: CellData, effects: Effects, low: float, high: float,
                 points: int = 40) -> float:
    """The interaction strength `kappa` in [low, high] that best explains the cells' counts,
    each against its leave-one-out prediction."""
    from scipy.special import betaln  # type: ignore[import-untyped, unused-ignore]
    grid = np.exp(np.linspace(np.log(low), np.log(high), points))[None, :]
    m = np.clip(effects.loo_mean, 1e-6, 1 - 1e-6)[:, None]
    k = cell_strength(m, grid, effects.loo_unit_var[:, None])
    s, f = cells.successes[:, None], cells.failures[:, None]
    loglik = betaln(k * m + s, k * (1 - m) + f) - betaln(k * m, k * (1 - m))
    return float(grid[0, int(np.argmax(loglik.sum(axis=0)))])
