"""Fit backends: sherpa (default) and pyxspec (used only when `import xspec` works).

A backend receives the prepared `FitData` (the same bins and statistic whatever the backend)
and starting values, and returns the best fit, the statistic, 1-sigma confidence intervals
(profile likelihood, delta-statistic = 1, other parameters refitted) and the covariance
matrix. Everything else (goodness, fluxes, plots) is computed from these by the caller.
"""
from __future__ import annotations

import importlib.util
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from .. import spectral_models
from ..ogip import Spectrum, arf_hdulist, rmf_hdulist, spectrum_hdulist
from . import statistics
from .data import FitData, FitInputError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "sherpa", "xspec")


@dataclass
class BackendResult:
    values: dict[str, float]
    statistic: float
    lower: dict[str, float | None]      # negative offsets from the best fit; None: not found
    upper: dict[str, float | None]
    covariance: np.ndarray | None       # in the order of `values`
    backend: str


def xspec_available() -> bool:
    return importlib.util.find_spec("xspec") is not None


def resolve_backend(requested: str) -> str:
    """'auto' -> 'xspec' when pyxspec is importable, else 'sherpa'."""
    if requested not in BACKENDS:
        raise FitInputError("backend", f"unknown backend {requested!r}; use one of "
                            f"{', '.join(BACKENDS)}")
    if requested == "auto":
        return "xspec" if xspec_available() else "sherpa"
    if requested == "xspec" and not xspec_available():
        raise FitInputError("backend", "pyxspec (import xspec) is not available here")
    return requested


def run_backend(name: str, data: FitData, model: str, absorbed: bool,
                start: Mapping[str, float]) -> BackendResult:
    if name == "sherpa":
        return _fit_sherpa(data, model, absorbed, start)
    return _fit_xspec(data, model, absorbed, start)


# ---- sherpa -------------------------------------------------------------------------------

def _sherpa_rmf(data: FitData):
    from sherpa.astro.data import DataRMF
    rmf = data.rmf
    matrix = rmf.matrix[data.energy_rows]
    n_grp, f_chan, n_chan, elements = [], [], [], []
    for row in matrix:
        nonzero = np.flatnonzero(row)
        if nonzero.size == 0:
            n_grp.append(0)
            continue
        first, last = nonzero[0], nonzero[-1]
        n_grp.append(1)
        f_chan.append(first + rmf.first_channel)
        n_chan.append(last - first + 1)
        elements.append(row[first:last + 1])
    return DataRMF("xoda-rmf", rmf.detchans, data.energ_lo, data.energ_hi,
                   np.asarray(n_grp, np.int64), np.asarray(f_chan, np.int64),
                   np.asarray(n_chan, np.int64), np.concatenate(elements),
                   offset=rmf.first_channel, e_min=rmf.e_min, e_max=rmf.e_max)


def _sherpa_dataset(data: FitData):
    from sherpa.astro.data import DataARF, DataPHA
    spectrum: Spectrum = data.spectrum
    n = spectrum.channel.size
    grouping = np.ones(n, np.int16)
    channels = data.channel_index
    same_group = np.r_[False, np.diff(data.group_of_channel) == 0]
    grouping[channels[same_group]] = -1
    areascal = np.broadcast_to(np.asarray(spectrum.areascal, float), (n,)).copy()
    pha = DataPHA("xoda", spectrum.channel.astype(float), spectrum.total_counts.astype(float),
                  exposure=spectrum.exposure, grouping=grouping, areascal=areascal)
    pha.set_rmf(_sherpa_rmf(data))
    if data.arf is not None:
        arf = data.arf
        pha.set_arf(DataARF("xoda-arf", data.energ_lo, data.energ_hi,
                            arf.specresp[data.energy_rows]))
    pha.group()
    starts = np.flatnonzero(grouping == 1)
    pha.mask = np.isin(starts, data.group_first)
    return pha


def _sherpa_model_class():
    from sherpa.models.model import RegriddableModel1D
    from sherpa.models.parameter import Parameter

    class SpectralModel(RegriddableModel1D):
        """A `dataserver.spectral_models` model (optionally absorbed) as a sherpa model."""

        def __init__(self, model: str, absorbed: bool):
            specs = spectral_models.parameter_specs(model, absorbed)
            self._xoda_model = model
            self._xoda_names = tuple(s.name for s in specs)
            pars = tuple(Parameter("xoda", s.name, s.default, min=s.minimum, max=s.maximum,
                                   hard_min=s.minimum, hard_max=s.maximum, units=s.unit)
                         for s in specs)
            super().__init__("xoda", pars)

        def calc(self, p, xlo, xhi=None, *args, **kwargs):
            if xhi is None:
                raise ValueError("xoda spectral models are integrated over energy bins")
            return spectral_models.photon_flux(self._xoda_model, dict(zip(self._xoda_names, p)),
                                               xlo, xhi)

    return SpectralModel


def _sherpa_stat(bins: statistics.BinData):
    from sherpa.stats import Likelihood

    class XodaStat(Likelihood):
        """One of `statistics` on sherpa's folded model (background handled by xoda)."""

        def __init__(self):
            self._bins = bins
            super().__init__(name=f"xoda-{bins.statistic}")

        def calc_stat(self, data, model):
            data, model = self._bundle_inputs(data, model)
            contributions, residuals = statistics.contributions(
                self._bins, data.eval_model_to_fit(model))
            return float(contributions.sum()), residuals

    return XodaStat()


def _fit_sherpa(data: FitData, model: str, absorbed: bool,
                start: Mapping[str, float]) -> BackendResult:
    from sherpa.astro.instrument import Response1D
    from sherpa.estmethods import Confidence
    from sherpa.fit import Fit
    from sherpa.optmethods import LevMar, NelderMead
    from sherpa.utils.logging import SherpaVerbosity

    pha = _sherpa_dataset(data)
    source = _sherpa_model_class()(model, absorbed)
    for par in source.pars:
        par.val = float(np.clip(start[par.name], par.min, par.max))
    full = Response1D(pha)(source)
    fit = Fit(pha, full, _sherpa_stat(data.bins), LevMar())
    with SherpaVerbosity("WARN"):
        # Levenberg-Marquardt (on signed deviance residuals) gets close fast; the simplex
        # then polishes the minimum of the likelihood, and a last LevMar run confirms it.
        for method in (LevMar(), NelderMead(), LevMar()):
            fit.method = method
            fit.fit()
        # Errors are wanted for poor fits too; the goodness of fit reports how poor.
        covariance = _sherpa_covariance(fit, source, model, absorbed)
        fit.estmethod = Confidence()
        fit.estmethod.config.update({"sigma": 1.0, "parallel": False, "max_rstat": np.inf})
        intervals = fit.est_errors()
    names = [p.name for p in source.pars]

    def bound(value):
        return None if value is None or not np.isfinite(value) else float(value)
    lower = {n: bound(v) for n, v in zip(names, intervals.parmins)}
    upper = {n: bound(v) for n, v in zip(names, intervals.parmaxes)}
    values = {p.name: float(p.val) for p in source.pars}
    return BackendResult(values=values, statistic=float(fit.calc_stat()), lower=lower,
                         upper=upper, covariance=covariance, backend="sherpa")


def _sherpa_covariance(fit, source, model: str, absorbed: bool) -> np.ndarray | None:
    """Covariance of all parameters, those stopped on a hard limit held there: sherpa's
    matrix with such a parameter free is zero throughout. Their rows and columns are zero,
    so errors propagated from it (the flux's) are conditional on them."""
    from sherpa.estmethods import Covariance

    specs = {s.name: s for s in spectral_models.parameter_specs(model, absorbed)}
    free = [i for i, par in enumerate(source.pars) if specs[par.name].limit_reached(par.val) is None]
    if not free:
        return None
    pegged = [par for i, par in enumerate(source.pars) if i not in free]
    fit.estmethod = Covariance()
    fit.estmethod.config["max_rstat"] = np.inf
    for par in pegged:
        par.freeze()
    try:
        found = np.asarray(fit.est_errors().extra_output, float)
    except Exception as exc:  # noqa: BLE001 - a singular matrix only loses the errors
        log.warning("covariance failed: %s", exc)
        return None
    finally:
        for par in pegged:
            par.thaw()
    covariance = np.zeros((len(source.pars), len(source.pars)))
    covariance[np.ix_(free, free)] = found
    return covariance


# ---- pyxspec (used only when importable; not available on the development machine) ------

def _fit_xspec(data: FitData, model: str, absorbed: bool,
               start: Mapping[str, float]) -> BackendResult:
    import xspec  # noqa: PLC0415 - optional dependency

    spec = data.spectrum
    quality = np.ones(spec.channel.size, np.int64)
    quality[data.channel_index] = 0
    grouping = np.ones(spec.channel.size, np.int64)
    grouping[data.channel_index[np.r_[False, np.diff(data.group_of_channel) == 0]]] = -1
    expression = ("wabs*" if absorbed else "") + spectral_models.get_model(model).xspec
    names = [p.name for p in spectral_models.parameter_specs(model, absorbed)]
    with tempfile.TemporaryDirectory(prefix="xoda-xspec-") as tmp:
        folder = Path(tmp)
        # Files are attached explicitly below, so the PHA names none of them.
        source = replace(spec, quality=quality, grouping=grouping, respfile="NONE",
                         ancrfile="NONE", backfile="NONE")
        spectrum_hdulist(source).writeto(folder / "fit.pha")
        rmf_hdulist(data.rmf, threshold=0.0).writeto(folder / "fit.rmf")
        xspec.Xset.chatter = 0
        xspec.AllData.clear()
        xspec.AllModels.clear()
        observed = xspec.Spectrum(str(folder / "fit.pha"))
        observed.response = str(folder / "fit.rmf")
        if data.arf is not None:
            arf_hdulist(data.arf).writeto(folder / "fit.arf")
            observed.response.arf = str(folder / "fit.arf")
        if data.background is not None:
            spectrum_hdulist(data.background).writeto(folder / "fit.bkg")
            observed.background = str(folder / "fit.bkg")
        observed.ignore("bad")
        # XSPEC's names; cstat becomes W-stat by itself when a Poisson background is loaded.
        xspec.Fit.statMethod = {"chi2": "chi", "pgstat": "pgstat"}.get(data.statistic, "cstat")
        xspec.Fit.query = "yes"
        xspec.Fit.nIterations = 1000
        fitted = xspec.Model(expression)
        for index, name in enumerate(names, start=1):
            fitted(index).values = float(start[name])
        xspec.Fit.perform()
        xspec.Fit.error(f"1.0 1-{len(names)}")
        values, lower, upper = {}, {}, {}
        for index, name in enumerate(names, start=1):
            parameter = fitted(index)
            values[name] = float(parameter.values[0])
            low, high, flags = parameter.error
            # XSPEC's error status: characters 4 and 5 flag the hard lower/upper limit hit.
            if flags[:3] != "FFF":
                log.warning("XSPEC error on %s: status %s", name, flags)
            lower[name] = None if flags[3] == "T" else float(low - values[name])
            upper[name] = None if flags[4] == "T" else float(high - values[name])
        n = len(names)
        packed = list(xspec.Fit.covariance)
        covariance = np.zeros((n, n))
        covariance[np.tril_indices(n)] = packed[: n * (n + 1) // 2]
        covariance = covariance + np.tril(covariance, -1).T
        statistic = float(xspec.Fit.statistic)
        xspec.AllData.clear()
        xspec.AllModels.clear()
    return BackendResult(values=values, statistic=statistic, lower=lower, upper=upper,
                         covariance=covariance, backend="xspec")
