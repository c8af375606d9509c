"""The data of one fit: channels selected and grouped, the background, and the response.

Everything a backend needs is decided here, once, so that every backend fits the same bins
with the same statistic: channels of good quality whose centre lies in [emin, emax]; groups
of at least `group_min_counts` source counts (chi-square on Poisson counts needs them, 20 by
default); the statistic from the data (see `choose_statistic`); and the response
(ARF x RMF) reduced to the energies that reach the fitted channels.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import spectral_models
from ..ogip import Arf, Rmf, Spectrum
from .statistics import BinData

log = logging.getLogger(__name__)

STATISTICS = ("auto", "cstat", "chi2")
DEFAULT_CHI2_MIN_COUNTS = 20


class FitInputError(ValueError):
    """Bad input to a fit; names the parameter (or input) at fault and why."""

    def __init__(self, parameter: str, reason: str):
        self.parameter = parameter
        self.reason = reason
        super().__init__(f"parameter {parameter!r}: {reason}")


@dataclass
class FitData:
    """Selected, grouped channels and the matching response, ready for any backend."""

    spectrum: Spectrum
    background: Spectrum | None
    rmf: Rmf
    arf: Arf | None
    statistic: str
    channel_index: np.ndarray        # indices (into the spectrum) of the fitted channels
    group_of_channel: np.ndarray     # group number of each fitted channel
    bins: BinData                    # per group
    energy_rows: slice               # response rows that reach the fitted channels
    group_response: np.ndarray       # (rows, groups): exposure x AREASCAL x ARF x RMF summed
    emin: float
    emax: float

    @property
    def n_groups(self) -> int:
        return self.bins.counts.size

    @property
    def energ_lo(self) -> np.ndarray:
        return self.rmf.energ_lo[self.energy_rows]

    @property
    def energ_hi(self) -> np.ndarray:
        return self.rmf.energ_hi[self.energy_rows]

    @property
    def group_first(self) -> np.ndarray:
        """Index (into the spectrum) of each group's first channel."""
        return self.channel_index[np.r_[0, np.flatnonzero(np.diff(self.group_of_channel)) + 1]]

    def photon_flux(self, model: str, params: dict) -> np.ndarray:
        return spectral_models.photon_flux(model, params, self.energ_lo, self.energ_hi)

    def fold(self, model: str, params: dict) -> np.ndarray:
        """Predicted source counts per group."""
        return self.photon_flux(model, params) @ self.group_response

    def channel_response(self) -> np.ndarray:
        """(rows, fitted channels): counts per unit photon flux in each fitted channel."""
        return _channel_response(self.spectrum, self.rmf, self.arf, self.energy_rows,
                                 self.channel_index)


def channel_terms(data: "FitData") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per fitted channel: source counts, background expected in the source (observed,
    scaled), and the variance of their difference."""
    return _channel_arrays(data.spectrum, data.background, data.channel_index)


def _channel_arrays(spectrum: Spectrum, background: Spectrum | None, idx: np.ndarray):
    """Counts, scaled background and variance (Poisson counts or the given errors, plus
    systematics and the background's variance) of the channels `idx`."""
    counts = spectrum.total_counts[idx]
    errors = spectrum.count_errors
    variance = errors[idx] ** 2 if errors is not None else counts.astype(float).copy()
    if spectrum.sys_err is not None:
        variance = variance + (spectrum.sys_err[idx] * counts) ** 2
    scaled = np.zeros(idx.size)
    if background is not None:
        scaled, background_variance, _, _ = _background_terms(spectrum, background, idx)
        variance = variance + background_variance
    return counts, scaled, variance


def choose_statistic(requested: str, spectrum: Spectrum, background: Spectrum | None) -> str:
    """cstat/wstat/pgstat for Poisson counts, chi2 for rates with errors (OSA spectra)."""
    if requested not in STATISTICS:
        raise FitInputError("stat", f"unknown statistic {requested!r}; use one of "
                            f"{', '.join(STATISTICS)}")
    poisson = spectrum.counts is not None and bool(spectrum.poisserr)
    if requested == "chi2":
        return "chi2"
    if not poisson:
        if requested == "cstat":
            raise FitInputError("stat", "C-stat needs Poisson counts, but this spectrum holds "
                                "rates with errors (POISSERR=F, e.g. a background-subtracted "
                                "OSA spectrum): use chi2")
        return "chi2"
    if background is None:
        return "cstat"
    return "wstat" if background.counts is not None and background.poisserr else "pgstat"


def _channel_response(spectrum, rmf, arf, rows, channels) -> np.ndarray:
    matrix = rmf.matrix[rows][:, channels]
    if arf is not None:
        matrix = matrix * arf.specresp[rows, None]
    areascal = np.broadcast_to(np.asarray(spectrum.areascal, float), spectrum.channel.shape)
    return matrix * (spectrum.exposure * areascal[channels])[None, :]


def _check_inputs(spectrum: Spectrum, rmf: Rmf, arf: Arf | None, background: Spectrum | None):
    if spectrum.channel.size != rmf.detchans or spectrum.channel[0] != rmf.first_channel:
        raise FitInputError("response", f"the spectrum has {spectrum.channel.size} channels from "
                            f"{spectrum.channel[0]}, the response {rmf.detchans} channels from "
                            f"{rmf.first_channel}: they do not belong together")
    if arf is not None and (arf.energ_lo.size != rmf.energ_lo.size
                            or not np.allclose(arf.energ_lo, rmf.energ_lo, rtol=1e-5)):
        raise FitInputError("response", f"the ARF has {arf.energ_lo.size} energy bins, the RMF "
                            f"{rmf.energ_lo.size} (or other edges): they do not belong together")
    if arf is not None and rmf.includes_area:
        log.warning("the response matrix already includes effective area and an ARF is given too")
    if spectrum.exposure <= 0:
        raise FitInputError("spectrum", "EXPOSURE must be > 0")
    if background is not None:
        if not np.array_equal(background.channel, spectrum.channel):
            raise FitInputError("background", f"the background has {background.channel.size} "
                                f"channels, the spectrum {spectrum.channel.size}")
        if background.counts is not None and background.exposure <= 0:
            raise FitInputError("background", "EXPOSURE must be > 0")


def _select(spectrum: Spectrum, rmf: Rmf, background: Spectrum | None, emin, emax):
    centre = 0.5 * (rmf.e_min + rmf.e_max)
    lo = float(emin) if emin is not None else float(rmf.e_min.min())
    hi = float(emax) if emax is not None else float(rmf.e_max.max())
    if not lo < hi:
        raise FitInputError("emin", f"the fit band must have emin < emax, got {lo}-{hi} keV")
    good = spectrum.good & (centre >= lo) & (centre <= hi)
    if background is not None:
        good &= background.good
    selected = np.flatnonzero(good)
    if selected.size == 0:
        name = "emin" if lo >= rmf.e_max.max() or emin is not None else "emax"
        raise FitInputError(name, f"no good channel of the spectrum lies in the fit band "
                            f"{lo:g}-{hi:g} keV (channels cover {rmf.e_min.min():g}-"
                            f"{rmf.e_max.max():g} keV)")
    return selected, lo, hi


def group_runs(channels: np.ndarray, enough: Callable[[np.ndarray], bool],
               *values: np.ndarray) -> np.ndarray:
    """Group number per channel: runs of adjacent channels closed as soon as
    `enough(sums of values over the run)`; a run left short at the end of a stretch of
    adjacent channels joins the run before it. Groups never span a missing channel."""
    stacked = np.vstack(values) if values else np.zeros((0, channels.size))
    groups = np.empty(channels.size, np.int64)
    stretches = np.split(np.arange(channels.size), np.flatnonzero(np.diff(channels) > 1) + 1)
    current = 0
    for stretch in stretches:
        first_group, running, open_run = current, np.zeros(stacked.shape[0]), False
        for i in stretch:
            groups[i] = current
            running += stacked[:, i]
            open_run = True
            if enough(running):
                current += 1
                running[:] = 0.0
                open_run = False
        if open_run:                             # a short run remains at the end
            if current > first_group:
                groups[stretch[groups[stretch] == current]] = current - 1
            else:
                current += 1
    return np.unique(groups, return_inverse=True)[1]


def _group(counts: np.ndarray, channels: np.ndarray, min_counts: int | None) -> np.ndarray:
    """Fit groups of at least `min_counts` counts, or one group per channel."""
    if not min_counts or min_counts <= 1:
        return np.arange(counts.size)
    return group_runs(channels, lambda sums: sums[0] >= min_counts, counts)


def _sum_groups(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return np.bincount(groups, weights=values, minlength=groups.max() + 1)


def _background_terms(spectrum: Spectrum, background: Spectrum, idx: np.ndarray):
    """Per channel: background in the source (counts), its variance, and the wstat scale."""
    n = spectrum.channel.size
    ratio = (np.broadcast_to(np.asarray(spectrum.backscal, float), n)
             * np.broadcast_to(np.asarray(spectrum.areascal, float), n)
             / (np.broadcast_to(np.asarray(background.backscal, float), n)
                * np.broadcast_to(np.asarray(background.areascal, float), n)))[idx]
    if background.counts is not None:
        alpha = spectrum.exposure / background.exposure * ratio
        counts = background.counts[idx]
        variance = (background.count_errors[idx] ** 2 if background.stat_err is not None
                    else counts)
        return alpha * counts, alpha**2 * variance, alpha, counts
    scale = spectrum.exposure * ratio
    return (background.rate[idx] * scale, (background.stat_err[idx] * scale) ** 2, None, None)


def prepare(spectrum: Spectrum, rmf: Rmf, arf: Arf | None = None,
            background: Spectrum | None = None, *, stat: str = "auto", emin: float | None = None,
            emax: float | None = None, group_min_counts: int | None = None) -> FitData:
    """Select, group and scale everything a fit needs; FitInputError on bad input."""
    _check_inputs(spectrum, rmf, arf, background)
    statistic = choose_statistic(stat, spectrum, background)
    idx, lo, hi = _select(spectrum, rmf, background, emin, emax)
    counts = spectrum.total_counts[idx]
    min_counts = group_min_counts
    if min_counts is None and statistic == "chi2" and spectrum.stat_err is None:
        min_counts = DEFAULT_CHI2_MIN_COUNTS
    groups = _group(counts, spectrum.channel[idx], min_counts)
    s = _sum_groups(counts, groups)
    bins: BinData
    if statistic == "cstat":
        bins = BinData("cstat", s)
    elif statistic in ("wstat", "pgstat"):
        bkg_src, bkg_var, alpha, bkg_counts = _background_terms(spectrum, background, idx)
        if statistic == "wstat":
            b = _sum_groups(bkg_counts, groups)
            # One alpha per group: the counts-weighted mean keeps the expected background.
            a = _sum_groups(bkg_src, groups) / np.where(b > 0, b, 1.0)
            a = np.where(b > 0, a, _sum_groups(alpha, groups) / np.bincount(groups))
            bins = BinData("wstat", s, background=b, alpha=a)
        else:
            bins = BinData("pgstat", s, background=_sum_groups(bkg_src, groups),
                           background_sigma=np.sqrt(_sum_groups(bkg_var, groups)))
    else:
        _, scaled, variance = _channel_arrays(spectrum, background, idx)
        var = _sum_groups(variance, groups)
        if np.any(var <= 0):
            bad = int(np.flatnonzero(var <= 0)[0])
            raise FitInputError("group_min_counts", f"bin {bad} of the fit has zero variance "
                                "(no counts, no error): group channels for chi-square")
        bins = BinData("chi2", s, background=_sum_groups(scaled, groups)
                       if background is not None else None, variance=var)
    rows = _energy_rows(spectrum, rmf, arf, idx)
    response = _channel_response(spectrum, rmf, arf, rows, idx)
    indicator = np.zeros((idx.size, groups.max() + 1))
    indicator[np.arange(idx.size), groups] = 1.0
    return FitData(spectrum=spectrum, background=background, rmf=rmf, arf=arf,
                   statistic=statistic, channel_index=idx, group_of_channel=groups, bins=bins,
                   energy_rows=rows, group_response=response @ indicator, emin=lo, emax=hi)


def _energy_rows(spectrum, rmf, arf, idx) -> slice:
    """The contiguous range of response rows with any response in the fitted channels. Rows
    outside cannot change the fit; a row starting at 0 keV is left out too, since E^-Gamma
    diverges there (real responses start above the detector's threshold anyway)."""
    weight = np.abs(rmf.matrix[:, idx]).sum(axis=1)
    if arf is not None:
        weight = weight * np.abs(arf.specresp)
    rows = np.flatnonzero((weight > 0) & (rmf.energ_lo > 0))
    if rows.size == 0:
        raise FitInputError("response", "the response gives no counts in the fitted channels")
    return slice(int(rows[0]), int(rows[-1]) + 1)
