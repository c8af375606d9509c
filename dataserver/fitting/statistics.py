"""Fit statistics per bin, and their goodness of fit.

All statistics work in counts of the source spectrum. For bin i, m is the folded model
(counts expected from the source), S the observed counts, and the background is:

- ``cstat`` (no background): C = 2 sum [m - S + S ln(S/m)] (Cash 1979 in XSPEC's form).
- ``wstat`` (Poisson background counts B, scaled to the source by alpha =
  t_s BACKSCAL_s AREASCAL_s / (t_b BACKSCAL_b AREASCAL_b)): XSPEC's W statistic, the Poisson
  likelihood of S and B with the background level profiled out bin by bin.
- ``pgstat`` (background known as a rate with a Gaussian error, e.g. an HXMT background
  model): Poisson source counts S, Gaussian background B' +- sigma' (both in source counts),
  the background level profiled out bin by bin (XSPEC's PG statistic).
- ``chi2``: sum (S - alpha B - m)^2 / (var_S + alpha^2 var_B + (SYS_ERR S)^2), with var_S = S
  for Poisson counts (grouped to enough counts per bin) or the given STAT_ERR^2.

Every per-bin contribution is >= 0 and zero for a perfect model, so the statistics double as
sums of squares: `contributions` also returns signed residuals sign(m - y) sqrt(c_i), which
Levenberg-Marquardt optimisers can use (smooth through zero, unlike sqrt(c_i)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

_TINY = 1e-300


@dataclass(frozen=True)
class BinData:
    """What the statistics need per fitted bin (all in source counts)."""

    statistic: str                        # cstat, wstat, pgstat or chi2
    counts: np.ndarray                    # S
    background: np.ndarray | None = None  # B: background counts (wstat) or B' (pgstat, chi2)
    alpha: np.ndarray | None = None       # wstat: background scale to the source
    background_sigma: np.ndarray | None = None  # pgstat: sigma' (source counts)
    variance: np.ndarray | None = None    # chi2: total variance of S - background

    @property
    def net(self) -> np.ndarray:
        """Background-subtracted counts."""
        if self.background is None:
            return self.counts
        if self.statistic == "wstat":
            return self.counts - self.alpha * self.background
        return self.counts - self.background


def _xlogy_ratio(s: np.ndarray, m: np.ndarray) -> np.ndarray:
    """S ln(S/m), zero where S == 0."""
    return special.xlogy(s, s) - special.xlogy(s, np.maximum(m, _TINY))


def cstat_bins(counts: np.ndarray, model: np.ndarray) -> np.ndarray:
    m = np.maximum(model, _TINY)
    return 2.0 * (m - counts + _xlogy_ratio(counts, m))


def wstat_profile(counts, background, alpha, model) -> np.ndarray:
    """Best-fit background counts in the *background* spectrum, per bin (>= 0)."""
    t_s, t_b = 1.0, 1.0 / alpha
    m = np.maximum(model, 0.0)
    total = t_s + t_b
    d = np.sqrt((total * m - counts - background) ** 2 + 4.0 * total * background * m)
    f = (counts + background - total * m + d) / (2.0 * total)
    # Closed forms for empty bins (as XSPEC): S = 0, or B = 0 with the two branches.
    f = np.where(counts == 0, background / total, f)
    f = np.where((background == 0) & (m < counts / total), counts / total - m, f)
    f = np.where((background == 0) & (m >= counts / total), 0.0, f)
    return np.maximum(f, 0.0) * t_b


def wstat_bins(counts, background, alpha, model) -> np.ndarray:
    """XSPEC's W statistic per bin, with t_s = 1 and t_b = 1/alpha (only the ratio matters)."""
    t_s, t_b = 1.0, 1.0 / alpha
    m = np.maximum(model, _TINY)
    f = wstat_profile(counts, background, alpha, model) / t_b    # in source-region counts
    total = t_s + t_b
    general = (t_s * m + total * f - special.xlogy(counts, np.maximum(t_s * (m + f), _TINY))
               - special.xlogy(background, np.maximum(t_b * f, _TINY))
               - counts * (1.0 - np.log(np.maximum(counts, _TINY)))
               - background * (1.0 - np.log(np.maximum(background, _TINY))))
    empty_source = t_s * m - special.xlogy(background, t_b / total)
    empty_background_low = -t_b * m - special.xlogy(counts, t_s / total)
    empty_background_high = t_s * m + _xlogy_ratio(counts, t_s * m) - counts
    value = np.where(counts == 0, empty_source, general)
    value = np.where((background == 0) & (m < counts / total), empty_background_low, value)
    value = np.where((background == 0) & (m >= counts / total), empty_background_high, value)
    value = np.where((counts == 0) & (background == 0), t_s * m, value)
    return 2.0 * np.maximum(value, 0.0)


def pgstat_profile(counts, background, sigma, model) -> np.ndarray:
    """The background level (source counts) that maximises Poisson(S | m + b) N(b | B, sigma),
    per bin: the root of y^2 + (sigma^2 - B - m) y - S sigma^2 = 0 for y = m + b."""
    m = np.maximum(model, 0.0)
    s2 = sigma**2
    b_coef = s2 - background - m
    y = 0.5 * (-b_coef + np.sqrt(b_coef**2 + 4.0 * counts * s2))
    y = np.where(s2 > 0, y, np.maximum(background + m, 0.0))
    return y - m


def pgstat_bins(counts, background, sigma, model) -> np.ndarray:
    """XSPEC's PG statistic per bin: the Poisson deviance of S at m + b plus
    ((B - b) / sigma)^2, at the profiled background level b."""
    m = np.maximum(model, 0.0)
    b = pgstat_profile(counts, background, sigma, model)
    y = np.maximum(m + b, _TINY)
    poisson = 2.0 * (y - counts + _xlogy_ratio(counts, y))
    s2 = sigma**2
    gauss = np.where(s2 > 0, (background - b) ** 2 / np.where(s2 > 0, s2, 1.0), 0.0)
    return np.maximum(poisson + gauss, 0.0)


def chi2_bins(net, variance, model) -> np.ndarray:
    return (net - model) ** 2 / variance


def contributions(data: BinData, model: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin statistic contributions and signed residuals sign(m - net) sqrt(c)."""
    if data.statistic == "cstat":
        c = cstat_bins(data.counts, model)
    elif data.statistic == "wstat":
        c = wstat_bins(data.counts, data.background, data.alpha, model)
    elif data.statistic == "pgstat":
        c = pgstat_bins(data.counts, data.background, data.background_sigma, model)
    elif data.statistic == "chi2":
        c = chi2_bins(data.net, data.variance, model)
    else:
        raise ValueError(f"unknown statistic {data.statistic!r}")
    return c, np.sign(model - data.net) * np.sqrt(c)


def statistic(data: BinData, model: np.ndarray) -> float:
    return float(np.sum(contributions(data, model)[0]))


# ---- goodness of fit ----------------------------------------------------------------------

def cstat_expectation(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact expected value and variance of each bin's C contribution when the counts are
    Poisson with mean mu: the quantities Kaastra (2017, A&A 605, A51, eqs. 8-9) defines, here
    summed over the Poisson distribution instead of his fitted approximations."""
    mu = np.asarray(mu, float)
    expected = np.zeros_like(mu)
    variance = np.zeros_like(mu)
    positive = mu > 1e-12
    for index in np.flatnonzero(positive):
        m = mu[index]
        width = 12.0 * np.sqrt(m) + 15.0
        k = np.arange(max(0, int(m - width)), int(m + width) + 1, dtype=float)
        p = np.exp(special.xlogy(k, m) - m - special.gammaln(k + 1.0))
        c = 2.0 * (m - k + _xlogy_ratio(k, np.full_like(k, m)))
        e = np.sum(p * c)
        expected[index] = e
        variance[index] = max(np.sum(p * c * c) - e * e, 0.0)
    return expected, variance


def _pack(kind: str, value: float, expected: float, variance: float, free: int) -> dict:
    """z-score and one-sided p-value of `value` against its expectation minus the number of
    free parameters (fitting lowers the statistic by about one per parameter, by Wilks)."""
    centre = expected - free
    sigma = np.sqrt(variance) if variance > 0 else float("nan")
    z = (value - centre) / sigma if variance > 0 else float("nan")
    return {"method": kind, "expected": float(centre), "sigma": float(sigma), "z": float(z),
            "p_value": float(stats.norm.sf(z)) if np.isfinite(z) else float("nan")}


def goodness(data: BinData, model: np.ndarray, value: float, free: int,
             simulations: int = 400, seed: int = 0) -> dict:
    """Goodness of fit of the best fit `model`.

    chi2: reduced chi-square and the p-value of the chi-square distribution with N - p dof.
    cstat: Kaastra (2017) expected value and variance at the best fit (exact sums), giving a
    z-score and one-sided p-value. wstat/pgstat (no closed form): the same comparison with
    the mean and variance of the statistic over `simulations` spectra drawn from the best
    fit (source and profiled background), with a fixed seed so results are reproducible.
    """
    dof = int(model.size - free)
    if data.statistic == "chi2":
        return {"method": "chi2", "reduced": float(value / dof) if dof > 0 else float("nan"),
                "p_value": float(stats.chi2.sf(value, dof)) if dof > 0 else float("nan")}
    if data.statistic == "cstat":
        expected, variance = cstat_expectation(model)
        return _pack("kaastra2017", value, float(expected.sum()), float(variance.sum()), free)
    rng = np.random.default_rng(seed)
    if data.statistic == "wstat":
        bkg = wstat_profile(data.counts, data.background, data.alpha, model)
    else:
        bkg = pgstat_profile(data.counts, data.background, data.background_sigma, model)
    draws = []
    # Blocks of simulated spectra keep memory bounded for spectra of thousands of bins.
    for start in range(0, simulations, 200):
        shape = (min(200, simulations - start), model.size)
        if data.statistic == "wstat":
            s = rng.poisson(model + data.alpha * bkg, size=shape).astype(float)
            b = rng.poisson(bkg, size=shape).astype(float)
            draws.append(wstat_bins(s, b, data.alpha, model).sum(axis=1))
        else:
            s = rng.poisson(np.maximum(model + bkg, 0.0), size=shape).astype(float)
            b = bkg + data.background_sigma * rng.standard_normal(shape)
            draws.append(pgstat_bins(s, b, data.background_sigma, model).sum(axis=1))
    draws = np.concatenate(draws)
    result = _pack("simulation", value, float(draws.mean()), float(draws.var(ddof=1)), free)
    result["simulations"] = simulations
    return result
