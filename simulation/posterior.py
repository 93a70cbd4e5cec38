"""The hidden trait's posterior given what was observed, for the realistic regime's truth.

The realistic regime's trait (motivation) is never recorded, so the true probability given the
observed history must integrate it out. The cohort run accumulates, for every person and every
value on a grid of trait values, the log-likelihood of everything observed so far that depends on
the trait: surviving each month without a job, the caseworker's ratings and belief (rounded
normal draws; the shared noise integrated by Gauss-Hermite quadrature), whether the citizen's form
was skipped, and whether each programme was started. Everything else in the history (caseworker
changes, missed visits, series stops) does not depend on the trait and cancels. With the
standard normal prior this gives the exact posterior on the grid, up to the grid's spacing.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, ndtr

GRID = np.linspace(-4.5, 4.5, 41)
_NODES = 9     # Gauss-Hermite nodes for the noise the indicators share
_CHUNK = 400   # rows per block of the (rows, grid, nodes, indicators) array


class TraitPosterior:
    """Log-likelihood of each person's observed history at each grid value of the trait."""

    def __init__(self, n: int, grid: np.ndarray = GRID):
        self.grid = grid
        self.loglik = np.zeros((n, len(grid)))
        self.before = np.zeros((n, len(grid)))  # as it stood before the latest assignment
        nodes, weights = np.polynomial.hermite_e.hermegauss(_NODES)  # weight exp(-x^2 / 2)
        self.nodes, self.log_weights = nodes, np.log(weights / weights.sum())

    def survive(self, rows: np.ndarray, eta: np.ndarray, trait_hazard: float) -> None:
        """A month without a job at cloglog hazard eta + trait_hazard * trait."""
        self.loglik[rows] -= np.exp(eta[rows])[:, None] * np.exp(trait_hazard * self.grid)[None, :]

    def bernoulli(self, rows: np.ndarray, base: np.ndarray, slope, happened: np.ndarray) -> None:
        """An event of probability sigmoid(base + slope * trait) happened or not (rows may repeat)."""
        x = base[:, None] + np.reshape(slope, (-1, 1)) * self.grid[None, :]
        term = np.where(happened[:, None], -np.logaddexp(0.0, -x), -np.logaddexp(0.0, x))
        np.add.at(self.loglik, rows, term)

    def ratings(self, rows: np.ndarray, value: np.ndarray, base: np.ndarray, loading: np.ndarray,
                common_sd: float, noise_sd: float, low_end: np.ndarray, high_end: np.ndarray) -> None:
        """Ratings rounded from base + loading * trait + common_sd * shared + noise_sd * own
        (shared and own standard normal), `value` the rating in that level's units; a value at
        the scale's end stands for everything beyond it. All arrays (rows, K) but `loading` (K,)."""
        lower = np.where(value <= low_end + 1e-9, -np.inf, value - 0.5)
        upper = np.where(value >= high_end - 1e-9, np.inf, value + 0.5)
        nodes = self.nodes if common_sd > 0 else np.zeros(1)
        log_weights = self.log_weights if common_sd > 0 else np.zeros(1)
        loaded = loading != 0
        grid = self.grid[:, None, None]
        for lo in range(0, len(rows), _CHUNK):
            part = slice(lo, lo + _CHUNK)
            shared = common_sd * nodes[None, None, :, None]                              # (1, 1, Q, 1)
            # indicators the trait does not load on depend on it only through the shared noise:
            # their product is computed once per node, not once per grid value
            free = _log_interval(lower[part][:, None, None, ~loaded], upper[part][:, None, None, ~loaded],
                                 base[part][:, None, None, ~loaded] + shared, noise_sd).sum(axis=-1)   # (n, 1, Q)
            mean = base[part][:, None, None, loaded] + loading[loaded] * grid + shared           # (n, G, Q, K1)
            tied = _log_interval(lower[part][:, None, None, loaded], upper[part][:, None, None, loaded],
                                 mean, noise_sd).sum(axis=-1)                                      # (n, G, Q)
            self.loglik[rows[part]] += logsumexp(free + tied + log_weights, axis=-1)

    def before_assignment(self, rows: np.ndarray) -> None:
        self.before[rows] = self.loglik[rows]

    def weights(self, loglik: np.ndarray) -> np.ndarray:
        """Posterior probabilities on the grid (rows sum to 1) from accumulated log-likelihoods."""
        log_post = loglik - 0.5 * self.grid[None, :] ** 2
        log_post -= log_post.max(axis=1, keepdims=True)
        post = np.exp(log_post)
        return post / post.sum(axis=1, keepdims=True)


def _log_interval(lower, upper, mean, sd):
    """log P(lower < mean + sd * Z < upper), on the side of the distribution where the two
    normal probabilities do not cancel."""
    a, b = (lower - mean) / sd, (upper - mean) / sd
    flip = a > 0
    return np.log(np.maximum(ndtr(np.where(flip, -a, b)) - ndtr(np.where(flip, -b, a)), 1e-300))


def draw(weights: np.ndarray, paths: int, grid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(rows * paths,) trait values, `paths` per row, stratified over each row's posterior (one
    uniform per stratum), so few paths already cover the posterior evenly."""
    cdf = np.cumsum(weights, axis=1)
    cdf[:, -1] = 1.0
    u = (np.arange(paths)[None, :] + rng.random((len(weights), paths))) / paths
    index = np.minimum((cdf[:, None, :] < u[:, :, None]).sum(axis=2), len(grid) - 1)
    return grid[index].reshape(-1)
