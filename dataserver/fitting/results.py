"""What a fit returns, as Python objects, a FITS product and JSON metadata (null, never NaN)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits

from ..ogip.keywords import CREATOR, ObsKeywords, set_cards


@dataclass
class ParameterResult:
    """A fitted parameter: best value, 1-sigma confidence interval (error_lower <= 0 <=
    error_upper; None where the interval reached a hard limit or was not found), the
    1-sigma error from the covariance matrix, and `limit` ("lower"/"upper") when the best
    value sits on that hard limit: the data constrain the parameter on one side only, and
    the other side of its interval is a one-sided 1-sigma limit."""

    name: str
    unit: str
    value: float
    error_lower: float | None
    error_upper: float | None
    sigma: float | None
    limit: str | None = None

    @property
    def error(self) -> float | None:
        """Symmetric 1-sigma error: the mean of the confidence interval's half-widths, or the
        covariance error when the interval is open."""
        if self.error_lower is not None and self.error_upper is not None:
            return 0.5 * (self.error_upper - self.error_lower)
        return self.sigma


@dataclass
class Flux:
    """Energy flux [erg/cm2/s] in a band, observed (absorbed) and intrinsic."""

    emin: float
    emax: float
    value: float
    error: float | None
    unabsorbed: float
    unabsorbed_error: float | None


@dataclass
class PlotTable:
    """Fitted channels grouped for display, in counts/s/keV (net of background)."""

    e_min: np.ndarray
    e_max: np.ndarray
    data: np.ndarray
    data_error: np.ndarray
    model: np.ndarray
    background: np.ndarray
    residual: np.ndarray      # (data - model) / data_error
    ratio: np.ndarray         # data / model
    channel_first: np.ndarray
    channel_last: np.ndarray


@dataclass
class ChannelTable:
    """Every fitted channel, in counts: data, scaled background and folded model."""

    channel: np.ndarray
    e_min: np.ndarray
    e_max: np.ndarray
    counts: np.ndarray
    background: np.ndarray
    model: np.ndarray
    variance: np.ndarray
    fit_group: np.ndarray
    plot_group: np.ndarray


@dataclass
class FitResult:
    model: str
    absorbed: bool
    statistic: str
    backend: str
    parameters: list[ParameterResult]
    stat: float
    dof: int
    n_bins: int
    goodness: dict[str, Any]
    flux: Flux
    covariance: np.ndarray | None
    fit_band: tuple[float, float]
    exposure: float
    channels: ChannelTable
    plot: PlotTable
    obs: ObsKeywords = field(default_factory=ObsKeywords)
    error_method: str = "confidence: profile of the statistic, delta = 1 (1 sigma, one parameter)"

    def parameter(self, name: str) -> ParameterResult:
        for par in self.parameters:
            if par.name == name:
                return par
        raise KeyError(f"no parameter {name!r}; have {', '.join(p.name for p in self.parameters)}")

    @property
    def values(self) -> dict[str, float]:
        return {p.name: p.value for p in self.parameters}

    def to_meta(self) -> dict[str, Any]:
        """JSON-able summary with the same numbers as the FITS product (None for NaN)."""
        return _clean({
            "model": self.model, "absorbed": self.absorbed, "statistic": self.statistic,
            "backend": self.backend, "error_method": self.error_method,
            "parameters": [{"name": p.name, "unit": p.unit, "value": p.value,
                            "error_lower": p.error_lower, "error_upper": p.error_upper,
                            "sigma": p.sigma, "limit": p.limit} for p in self.parameters],
            "stat": self.stat, "dof": self.dof, "bins": self.n_bins, "goodness": self.goodness,
            "flux": vars(self.flux), "fit_band": list(self.fit_band), "exposure": self.exposure,
            "object": self.obs.object, "telescope": self.obs.telescop,
            "instrument": self.obs.instrume,
            "plot": {name: getattr(self.plot, name).tolist() for name in
                     ("e_min", "e_max", "data", "data_error", "model", "background", "residual",
                      "ratio")},
        })

    def to_hdulist(self) -> fits.HDUList:
        """FITS product: FIT (parameters; statistic, goodness and flux in the header),
        CHANNELS (per fitted channel), PLOT (grouped for display), COVARIANCE (image)."""
        names = [p.name for p in self.parameters]
        width = max(len(n) for n in names)
        table = fits.BinTableHDU.from_columns([
            fits.Column(name="PARAMETER", format=f"{width}A", array=names),
            fits.Column(name="UNIT", format="24A", array=[p.unit for p in self.parameters]),
            fits.Column(name="VALUE", format="D", array=[p.value for p in self.parameters]),
            fits.Column(name="ERR_LOW", format="D",
                        array=[_nan(p.error_lower) for p in self.parameters]),
            fits.Column(name="ERR_HIGH", format="D",
                        array=[_nan(p.error_upper) for p in self.parameters]),
            fits.Column(name="SIGMA", format="D", array=[_nan(p.sigma) for p in self.parameters]),
            # "lower"/"upper": the best value is on that hard limit of the parameter.
            fits.Column(name="LIMIT", format="5A", array=[p.limit or "" for p in self.parameters]),
        ], name="FIT")
        good = self.goodness
        set_cards(table.header, [
            ("CREATOR", CREATOR, "software that made this file"),
            *self.obs.cards(),
            ("MODEL", self.model, "spectral model (XSPEC definition)"),
            ("ABSORBED", self.absorbed, "multiplied by wabs (Morrison & McCammon 1983)"),
            ("STAT", self.statistic, "fit statistic"),
            ("STATVAL", self.stat, "statistic at the best fit"),
            ("DOF", self.dof, "degrees of freedom"),
            ("NBINS", self.n_bins, "number of fitted bins"),
            ("BACKEND", self.backend, "fitting backend"),
            ("ERRMETH", "confidence", "1-sigma intervals, delta statistic = 1"),
            ("GOODMETH", good.get("method"), "goodness-of-fit method"),
            ("GOODPVAL", _card(good.get("p_value")), "goodness-of-fit p-value"),
            ("GOODRCHI", _card(good.get("reduced")), "reduced chi-square (chi2 only)"),
            ("GOODZ", _card(good.get("z")), "z-score of the statistic (cstat/wstat/pgstat)"),
            ("FIT_EMIN", self.fit_band[0], "[keV] fit band"),
            ("FIT_EMAX", self.fit_band[1], "[keV] fit band"),
            ("EXPOSURE", self.exposure, "[s] exposure of the fitted spectrum"),
            ("FLUXEMIN", self.flux.emin, "[keV] energy-flux band"),
            ("FLUXEMAX", self.flux.emax, "[keV] energy-flux band"),
            ("FLUX", self.flux.value, "[erg/cm2/s] observed energy flux"),
            ("FLUXERR", _card(self.flux.error), "[erg/cm2/s] 1-sigma error"),
            ("UFLUX", self.flux.unabsorbed, "[erg/cm2/s] unabsorbed energy flux"),
            ("UFLUXERR", _card(self.flux.unabsorbed_error), "[erg/cm2/s] 1-sigma error"),
        ])
        c = self.channels
        channels = fits.BinTableHDU.from_columns([
            fits.Column(name="CHANNEL", format="J", array=c.channel),
            fits.Column(name="E_MIN", format="D", unit="keV", array=c.e_min),
            fits.Column(name="E_MAX", format="D", unit="keV", array=c.e_max),
            fits.Column(name="COUNTS", format="D", unit="count", array=c.counts),
            fits.Column(name="BACKGROUND", format="D", unit="count", array=c.background),
            fits.Column(name="MODEL", format="D", unit="count", array=c.model),
            fits.Column(name="VARIANCE", format="D", unit="count**2", array=c.variance),
            fits.Column(name="FIT_GROUP", format="J", array=c.fit_group),
            fits.Column(name="PLOT_GROUP", format="J", array=c.plot_group),
        ], name="CHANNELS")
        p = self.plot
        rate = "count/s/keV"
        plot = fits.BinTableHDU.from_columns([
            fits.Column(name="E_MIN", format="D", unit="keV", array=p.e_min),
            fits.Column(name="E_MAX", format="D", unit="keV", array=p.e_max),
            fits.Column(name="DATA", format="D", unit=rate, array=p.data),
            fits.Column(name="DATA_ERR", format="D", unit=rate, array=p.data_error),
            fits.Column(name="MODEL", format="D", unit=rate, array=p.model),
            fits.Column(name="BACKGROUND", format="D", unit=rate, array=p.background),
            fits.Column(name="RESIDUAL", format="D", unit="sigma", array=p.residual),
            fits.Column(name="RATIO", format="D", array=p.ratio),
            fits.Column(name="CHAN_LO", format="J", array=p.channel_first),
            fits.Column(name="CHAN_HI", format="J", array=p.channel_last),
        ], name="PLOT")
        hdus = [fits.PrimaryHDU(), table, channels, plot]
        if self.covariance is not None:
            covariance = fits.ImageHDU(np.asarray(self.covariance, float), name="COVARIANCE")
            for i, name in enumerate(names, start=1):
                covariance.header[f"PARNAM{i}"] = name
            hdus.append(covariance)
        return fits.HDUList(hdus)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _card(value: float | None) -> float | None:
    """A header value: None (an undefined FITS value) for missing or non-finite numbers."""
    return None if value is None or not math.isfinite(value) else float(value)


def _clean(value: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, recursively."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
