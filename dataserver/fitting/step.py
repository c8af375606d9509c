"""The spectral fit as a cached engine step.

Inputs: `spectrum` (a product holding a PHA), `response` (products holding the RMF and,
unless the matrix includes the area, the ARF: one product may hold both) and `background`
(zero or one product holding the background PHA). The output product holds the fit
(`FIT`, `CHANNELS`, `PLOT`, `COVARIANCE`; see `FitResult.to_hdulist`) and its metadata the
same numbers as JSON.
"""
from __future__ import annotations

from typing import Any, Sequence

from .. import ogip, spectral_models
from ..steps import Output, step
from .backends import BACKENDS
from .data import STATISTICS, FitInputError
from .fit import fit_spectrum

_ENERGY = {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1.0e5, "default": None,
           "unit": "keV"}

FIT_PARAMETERS: dict[str, dict[str, Any]] = {
    "model": {"type": "string", "enum": list(spectral_models.MODELS), "default": "powerlaw",
              "description": "Spectral model (XSPEC definitions): powerlaw, cutoffpl, bbody"},
    "absorbed": {"type": "boolean", "default": False,
                 "description": "Multiply by photo-electric absorption (wabs, nH in 1e22 cm^-2)"},
    "stat": {"type": "string", "enum": list(STATISTICS), "default": "auto",
             "description": "auto: C-stat (W-stat, or PG-stat for a background with errors) "
                            "for counts, chi-square for rates with errors"},
    "emin": {**_ENERGY, "description": "Lower edge of the fit band (null: all channels)"},
    "emax": {**_ENERGY, "description": "Upper edge of the fit band (null: all channels)"},
    "flux_emin": {**_ENERGY, "description": "Lower edge of the energy-flux band (null: fit band)"},
    "flux_emax": {**_ENERGY, "description": "Upper edge of the energy-flux band (null: fit band)"},
    "group_min_counts": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000000,
                         "default": None,
                         "description": "Group fitted channels to this many counts "
                                        "(null: none for C-stat, 20 for chi-square on counts)"},
    "plot_min_snr": {"type": "number", "minimum": 0, "maximum": 1000, "default": 5.0,
                     "description": "Minimum signal-to-noise of the groups shown in plots"},
    "backend": {"type": "string", "enum": list(BACKENDS), "default": "auto",
                "description": "sherpa, xspec (pyxspec) or auto (xspec when importable)"},
}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def load_inputs(spectrum: Any, response: Sequence[Any] | Any, background: Sequence[Any] | Any):
    """Read the spectrum, the RMF, the optional ARF and the optional background from
    products (or paths/HDULists); FitInputError naming the input when one is missing."""
    try:
        source = ogip.read_spectrum(spectrum)
    except ogip.OgipFormatError as exc:
        raise FitInputError("spectrum", str(exc)) from None
    rmfs, arfs = [], []
    for product in _as_list(response):
        if ogip.has_extension(product, "rmf"):
            rmfs.append(ogip.read_rmf(product))
        if ogip.has_extension(product, "arf"):
            arfs.append(ogip.read_arf(product))
    if len(rmfs) != 1:
        raise FitInputError("response", f"expected one response matrix among the response "
                            f"products, found {len(rmfs)}")
    if len(arfs) > 1:
        raise FitInputError("response", f"expected at most one ARF, found {len(arfs)}")
    backgrounds = _as_list(background)
    if len(backgrounds) > 1:
        raise FitInputError("background", f"expected at most one background, got "
                            f"{len(backgrounds)}")
    try:
        bkg = ogip.read_spectrum(backgrounds[0]) if backgrounds else None
    except ogip.OgipFormatError as exc:
        raise FitInputError("background", str(exc)) from None
    return source, rmfs[0], (arfs[0] if arfs else None), bkg


# Version 2: parameters on a hard limit are flagged (LIMIT column) and have no covariance error.
# Version 3: no covariance errors (nor flux error) from a matrix that is not positive definite.
@step(version=3, name="fitting.fit_spectrum", inputs=["spectrum", "response", "background"],
      params=FIT_PARAMETERS)
def fit_step(spectrum, response, background, model: str, absorbed: bool, stat: str,
             emin, emax, flux_emin, flux_emax, group_min_counts, plot_min_snr: float,
             backend: str, context) -> Output:
    """Fit a spectral model to a spectrum through its response."""
    source, rmf, arf, bkg = load_inputs(spectrum, response, background)
    result = fit_spectrum(source, rmf, arf, bkg, model=model, absorbed=absorbed, stat=stat,
                          emin=emin, emax=emax, flux_emin=flux_emin, flux_emax=flux_emax,
                          group_min_counts=group_min_counts, plot_min_snr=plot_min_snr,
                          backend=backend)
    context.log.info("fitted %s: %s = %.4g for %d dof", model, result.statistic, result.stat,
                     result.dof)
    return Output(result.to_hdulist(), result.to_meta())
