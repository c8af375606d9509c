"""Fit one spectrum: prepare the bins, start from a coarse grid, run the backend, and derive
goodness, energy flux with its error, and the tables for plotting."""
from __future__ import annotations

import itertools
import logging
from typing import Mapping

import numpy as np

from .. import spectral_models
from ..ogip import Arf, Rmf, Spectrum
from . import statistics
from .backends import resolve_backend, run_backend
from .data import FitData, FitInputError, channel_terms, group_runs, prepare
from .results import ChannelTable, FitResult, Flux, ParameterResult, PlotTable

log = logging.getLogger(__name__)


def fit_spectrum(spectrum: Spectrum, rmf: Rmf, arf: Arf | None = None,
                 background: Spectrum | None = None, *, model: str = "powerlaw",
                 absorbed: bool = False, stat: str = "auto", emin: float | None = None,
                 emax: float | None = None, flux_emin: float | None = None,
                 flux_emax: float | None = None, group_min_counts: int | None = None,
                 plot_min_snr: float = 5.0, backend: str = "auto") -> FitResult:
    """Fit `model` (optionally absorbed) to a spectrum through its response.

    stat: "auto" (C-stat for counts; W-stat with a Poisson background, PG-stat with a
    background given as rates with errors; chi-square for rate spectra), "cstat" or "chi2".
    emin/emax: fit band [keV] (channels whose centre lies inside); default all channels.
    flux_emin/flux_emax: energy-flux band [keV]; default the fit band.
    group_min_counts: group fitted channels to this many counts (default: none for C-stat,
    20 for chi-square on counts). plot_min_snr: minimum signal-to-noise of plotted groups.
    Raises FitInputError naming the parameter at fault.
    """
    if model not in spectral_models.MODELS:
        raise FitInputError("model", f"unknown model {model!r}; use one of "
                            f"{', '.join(spectral_models.MODELS)}")
    if plot_min_snr < 0:
        raise FitInputError("plot_min_snr", "must be >= 0")
    backend_name = resolve_backend(backend)
    data = prepare(spectrum, rmf, arf, background, stat=stat, emin=emin, emax=emax,
                   group_min_counts=group_min_counts)
    specs = spectral_models.parameter_specs(model, absorbed)
    if data.n_groups <= len(specs):
        raise FitInputError("emin", f"the fit band {data.emin:g}-{data.emax:g} keV holds "
                            f"{data.n_groups} bins, not more than the {len(specs)} free parameters")
    band = (data.emin if flux_emin is None else float(flux_emin),
            data.emax if flux_emax is None else float(flux_emax))
    if not 0 < band[0] < band[1]:
        raise FitInputError("flux_emin", f"the flux band must satisfy 0 < emin < emax, got "
                            f"{band[0]:g}-{band[1]:g} keV")
    start = starting_values(data, model, absorbed)
    found = run_backend(backend_name, data, model, absorbed, start)
    values = found.values
    predicted = data.fold(model, values)
    stat_value = statistics.statistic(data.bins, predicted)
    if not np.isclose(stat_value, found.statistic, rtol=1e-4, atol=1e-4):
        log.warning("%s reports statistic %g, xoda computes %g at the same parameters",
                    found.backend, found.statistic, stat_value)
    limits = {s.name: s.limit_reached(values[s.name]) for s in specs}
    covariance = _valid_covariance(found.covariance, [limits[s.name] is None for s in specs])
    variances = np.diag(covariance) if covariance is not None else [None] * len(specs)
    parameters = []
    for spec, variance in zip(specs, variances):
        limit = limits[spec.name]
        # A parameter on a hard limit has no covariance error (its curvature there means
        # nothing); a zero or negative variance is a failed estimate, not a perfect one.
        sigma = (float(np.sqrt(variance)) if limit is None and variance is not None
                 and np.isfinite(variance) and variance > 0 else None)
        parameters.append(ParameterResult(spec.name, spec.unit, values[spec.name],
                                          found.lower[spec.name], found.upper[spec.name],
                                          sigma, limit))
    channels, plot = _tables(data, model, values, plot_min_snr)
    return FitResult(
        model=model, absorbed=absorbed, statistic=data.statistic, backend=found.backend,
        parameters=parameters, stat=stat_value, dof=data.n_groups - len(specs),
        n_bins=data.n_groups,
        goodness=statistics.goodness(data.bins, predicted, stat_value, len(specs)),
        flux=_flux(model, values, covariance, [s.name for s in specs], band),
        covariance=covariance, fit_band=(data.emin, data.emax),
        exposure=spectrum.exposure, channels=channels, plot=plot, obs=spectrum.obs)


def _valid_covariance(covariance: np.ndarray | None, free: list[bool]) -> np.ndarray | None:
    """The backend's covariance matrix if it is one: positive definite over the parameters
    off their limits. Where the statistic is flat or the fit sits on a saddle, the numerical
    Hessian is not, and errors taken from it (or a flux error propagated with it) would look
    precise and mean nothing; the confidence intervals remain."""
    if covariance is None:
        return None
    index = [i for i, is_free in enumerate(free) if is_free]
    block = np.asarray(covariance, float)[np.ix_(index, index)]
    scale = np.sqrt(np.clip(np.diag(block), 0, None))
    try:
        if not np.all(np.isfinite(block)) or np.any(scale <= 0):
            raise np.linalg.LinAlgError("non-positive variance")
        np.linalg.cholesky(block / np.outer(scale, scale))
    except np.linalg.LinAlgError:
        log.warning("the covariance matrix is not positive definite: no covariance errors")
        return None
    return covariance


def starting_values(data: FitData, model: str, absorbed: bool) -> dict[str, float]:
    """Best point of a coarse grid over the shape parameters, the norm set to match the
    observed net counts; a robust start for any reasonable spectrum."""
    grids = {"PhoIndex": np.linspace(-0.5, 4.5, 11),
             "HighECut": np.geomspace(max(data.emin / 2, 0.5), max(data.emax * 5, 1.0), 8),
             "kT": np.geomspace(max(data.emin / 30, 0.01), max(data.emax / 2, 0.02), 14),
             "nH": np.array([0.0, 0.3, 3.0, 30.0])}
    specs = spectral_models.parameter_specs(model, absorbed)
    shape = [s.name for s in specs if s.name != "norm"]
    net = max(float(np.sum(data.bins.net)), 1.0)
    best, best_stat = None, np.inf
    for combination in itertools.product(*(grids[name] for name in shape)):
        trial = dict(zip(shape, combination), norm=1.0)
        unit = data.fold(model, trial)
        if not np.all(np.isfinite(unit)) or unit.sum() <= 0:
            continue
        trial["norm"] = net / unit.sum()
        value = statistics.statistic(data.bins, trial["norm"] * unit)
        if value < best_stat:
            best, best_stat = trial, value
    if best is None:
        raise FitInputError("model", f"model {model} predicts no counts in the fit band "
                            f"{data.emin:g}-{data.emax:g} keV for any starting value")
    limits = {s.name: (s.minimum, s.maximum) for s in specs}
    return {name: float(np.clip(value, *limits[name])) for name, value in best.items()}


def _flux_value(model: str, values: Mapping[str, float], band, intrinsic: bool) -> float:
    params = {k: v for k, v in values.items() if not (intrinsic and k == "nH")}
    return spectral_models.energy_flux(model, params, *band)


def _flux_error(model, values, covariance, names, band, intrinsic) -> float | None:
    """Delta method: sqrt(g^T C g) with g the numerical gradient of the flux."""
    if covariance is None or not np.all(np.isfinite(covariance)):
        return None
    gradient = np.zeros(len(names))
    for i, name in enumerate(names):
        step = 1e-4 * max(abs(values[name]), np.sqrt(max(covariance[i, i], 0.0)), 1e-8)
        up = dict(values, **{name: values[name] + step})
        down = dict(values, **{name: values[name] - step})
        gradient[i] = (_flux_value(model, up, band, intrinsic)
                       - _flux_value(model, down, band, intrinsic)) / (2 * step)
    variance = float(gradient @ covariance @ gradient)
    return float(np.sqrt(variance)) if variance >= 0 else None


def _flux(model, values, covariance, names, band) -> Flux:
    return Flux(emin=band[0], emax=band[1],
                value=_flux_value(model, values, band, intrinsic=False),
                error=_flux_error(model, values, covariance, names, band, intrinsic=False),
                unabsorbed=_flux_value(model, values, band, intrinsic=True),
                unabsorbed_error=_flux_error(model, values, covariance, names, band,
                                             intrinsic=True))


def _tables(data: FitData, model: str, values, min_snr: float) -> tuple[ChannelTable, PlotTable]:
    counts, background, variance = channel_terms(data)
    predicted = data.photon_flux(model, values) @ data.channel_response()
    net = counts - background
    channels = data.spectrum.channel[data.channel_index]
    if min_snr > 0:
        groups = group_runs(channels, lambda s: s[1] > 0 and s[0] / np.sqrt(s[1]) >= min_snr,
                            net, variance)
    else:
        groups = np.arange(channels.size)
    e_min = data.rmf.e_min[data.channel_index]
    e_max = data.rmf.e_max[data.channel_index]
    first = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    last = np.r_[first[1:] - 1, groups.size - 1]

    def total(values_):
        return np.bincount(groups, weights=values_)

    width = (e_max[last] - e_min[first]) * data.spectrum.exposure
    group_var = total(variance)
    group_model = total(predicted)
    group_var = np.where(group_var > 0, group_var, group_model)
    error = np.sqrt(group_var)
    group_net = total(net)
    with np.errstate(divide="ignore", invalid="ignore"):
        residual = np.where(error > 0, (group_net - group_model) / error, np.nan)
        ratio = np.where(group_model > 0, group_net / group_model, np.nan)
    plot = PlotTable(e_min=e_min[first], e_max=e_max[last], data=group_net / width,
                     data_error=error / width, model=group_model / width,
                     background=total(background) / width, residual=residual, ratio=ratio,
                     channel_first=channels[first], channel_last=channels[last])
    table = ChannelTable(channel=channels, e_min=e_min, e_max=e_max, counts=counts,
                         background=background, model=predicted, variance=variance,
                         fit_group=data.group_of_channel, plot_group=groups)
    return table, plot
