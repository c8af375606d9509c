"""Photon spectra of the fit models, in one place for the fitter and the simulators.

Definitions are XSPEC's, so fitted values compare directly with XSPEC results:

- ``powerlaw``: A(E) = norm * E^-PhoIndex  [ph/cm2/s/keV; norm at 1 keV]
- ``cutoffpl``: A(E) = norm * E^-PhoIndex * exp(-E / HighECut)
- ``bbody``:    A(E) = norm * 8.0525 * E^2 / (kT^4 * (exp(E/kT) - 1)),
  norm = L39 / D10^2 (luminosity in 1e39 erg/s, distance in units of 10 kpc); the fits'
  black body
- ``bbodyrad``: A(E) = norm * 1.0344e-3 * E^2 / (exp(E/kT) - 1), norm = R_km^2 / D10^2
  (the same spectrum normalised by the emitting radius; bbody norm = bbodyrad norm *
  1.0344e-3 * kT^4 / 8.0525)
- absorption ``wabs``: M(E) = exp(-nH * sigma(E)), nH in 1e22 cm^-2, with the
  Morrison & McCammon (1983, ApJ 270, 119) cross-sections per hydrogen atom
  sigma(E) = (c0 + c1 E + c2 E^2) E^-3 * 1e-24 cm^2 in 14 ranges from 0.03 to 10 keV.
  Above 10 keV the cross-section continues as a pure E^-3 law from its 10 keV value
  (953.2 E^-3 * 1e-24 cm^2), below 0.03 keV as a pure E^-3 law from its 0.03 keV value, and
  there is no absorption below 0.0136 keV (the hydrogen edge): XSPEC's ``wabs`` extensions.

Everything works on bins: `photon_flux` returns the photon flux [ph/cm2/s] in each energy
bin [e_lo, e_hi]. Additive models are integrated over the bin (analytically for the power
law, by 8-point Gauss-Legendre quadrature otherwise, exact to rounding for bins narrower than
the spectral curvature); absorption multiplies them by its *bin-averaged* transmission (the
trapezoid rule at the bin edges and at the table's edges inside the bin), which is how XSPEC
combines a multiplicative with an additive component. A parameter set is a mapping of the
XSPEC parameter names; an absorbed model is one whose mapping holds ``nH``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

KEV_TO_ERG = 1.602176634e-9

# Morrison & McCammon (1983), Table 2: lower edge of each range [keV] and c0, c1, c2 such
# that sigma(E) = (c0 + c1 E + c2 E^2) E^-3 in 1e-24 cm^2 per hydrogen atom.
_MM83_EDGES = np.array([0.030, 0.100, 0.284, 0.400, 0.532, 0.707, 0.867, 1.303, 1.840,
                        2.471, 3.210, 4.038, 7.111, 8.331, 10.0])
_MM83_COEFFS = np.array([
    [17.3, 608.1, -2150.0],
    [34.6, 267.9, -476.1],
    [78.1, 18.8, 4.3],
    [71.4, 66.8, -51.4],
    [95.5, 145.8, -61.1],
    [308.9, -380.6, 294.0],
    [120.6, 169.3, -47.7],
    [141.3, 146.8, -31.5],
    [202.7, 104.7, -17.0],
    [342.7, 18.7, 0.0],
    [352.2, 18.7, 0.0],
    [433.9, -2.4, 0.75],
    [629.0, 30.9, 0.0],
    [701.2, 25.2, 0.0],
])
_MM83_EDGES.setflags(write=False)
_MM83_COEFFS.setflags(write=False)
_HYDROGEN_EDGE_KEV = 0.0136


@dataclass(frozen=True)
class ParamSpec:
    """One model parameter: XSPEC name, unit, starting value and hard limits."""

    name: str
    unit: str
    default: float
    minimum: float
    maximum: float
    description: str

    def limit_reached(self, value: float) -> str | None:
        """"lower" or "upper" when `value` sits on that hard limit (where an optimiser stops
        a parameter the data do not constrain, e.g. a cut-off beyond the band), else None."""
        for side, bound in (("lower", self.minimum), ("upper", self.maximum)):
            if abs(value - bound) <= 1e-4 * abs(bound) + 1e-8:
                return side
        return None


@dataclass(frozen=True)
class SpectralModel:
    """An additive photon spectrum: density A(E) and its integral over energy bins."""

    name: str
    xspec: str
    title: str
    params: tuple[ParamSpec, ...]
    density: Callable[..., np.ndarray]       # (energy, *values) -> ph/cm2/s/keV
    integrate: Callable[..., np.ndarray]     # (e_lo, e_hi, *values) -> ph/cm2/s per bin

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


NH = ParamSpec("nH", "1e22 cm^-2", 0.1, 0.0, 1.0e5, "Equivalent hydrogen column (wabs)")


@functools.lru_cache(maxsize=4)
def _gauss_legendre(order: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(order)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


def _quadrature(density: Callable[[np.ndarray], np.ndarray], e_lo: np.ndarray,
                e_hi: np.ndarray, order: int = 8) -> np.ndarray:
    """Integral of `density` over each bin by Gauss-Legendre quadrature."""
    nodes, weights = _gauss_legendre(order)
    half = 0.5 * (e_hi - e_lo)
    centre = 0.5 * (e_hi + e_lo)
    energy = centre[:, None] + half[:, None] * nodes[None, :]
    return half * (density(energy) @ weights)


def integrate_density(density: Callable[[np.ndarray], np.ndarray], e_lo, e_hi) -> np.ndarray:
    """Integral over each bin [e_lo, e_hi] (keV) of a density that is not one of the models
    (e.g. a background spectrum), by the models' rule: 8-point Gauss-Legendre quadrature."""
    return _quadrature(density, np.asarray(e_lo, dtype=float), np.asarray(e_hi, dtype=float))


def _powerlaw_density(energy, index, norm):
    return norm * np.power(energy, -index)


def _powerlaw_integral(e_lo, e_hi, index, norm):
    if abs(1.0 - index) < 1e-6:
        return norm * np.log(e_hi / e_lo)
    slope = 1.0 - index
    return norm * (np.power(e_hi, slope) - np.power(e_lo, slope)) / slope


def _cutoffpl_density(energy, index, cutoff, norm):
    return norm * np.power(energy, -index) * np.exp(-energy / cutoff)


def _cutoffpl_integral(e_lo, e_hi, index, cutoff, norm):
    return _quadrature(lambda e: _cutoffpl_density(e, index, cutoff, norm), e_lo, e_hi)


def _bbody_density(energy, kt, norm):
    x = energy / kt
    with np.errstate(over="ignore"):
        # exp overflow for E >> kT means no photons there; expm1 keeps E << kT accurate.
        occupation = 1.0 / np.expm1(np.minimum(x, 700.0))
    occupation = np.where(x >= 700.0, 0.0, occupation)
    return norm * 8.0525 * energy**2 * occupation / kt**4


def _bbody_integral(e_lo, e_hi, kt, norm):
    return _quadrature(lambda e: _bbody_density(e, kt, norm), e_lo, e_hi)


def _bbodyrad_density(energy, kt, norm):
    return _bbody_density(energy, kt, norm * 1.0344e-3 * kt**4 / 8.0525)


def _bbodyrad_integral(e_lo, e_hi, kt, norm):
    return _quadrature(lambda e: _bbodyrad_density(e, kt, norm), e_lo, e_hi)


_INDEX = ParamSpec("PhoIndex", "", 2.0, -3.0, 10.0, "Photon index")
_KT = ParamSpec("kT", "keV", 1.0, 1.0e-4, 200.0, "Temperature")
_NORM_PL = ParamSpec("norm", "ph/cm2/s/keV at 1 keV", 1.0, 0.0, 1.0e24,
                     "Photon flux density at 1 keV")

MODELS: Mapping[str, SpectralModel] = MappingProxyType({
    "powerlaw": SpectralModel(
        "powerlaw", "powerlaw", "Power law: norm * E^-PhoIndex",
        (_INDEX, _NORM_PL), _powerlaw_density, _powerlaw_integral),
    "cutoffpl": SpectralModel(
        "cutoffpl", "cutoffpl", "Cut-off power law: norm * E^-PhoIndex * exp(-E/HighECut)",
        (_INDEX, ParamSpec("HighECut", "keV", 100.0, 0.01, 1.0e6, "e-folding energy"),
         _NORM_PL), _cutoffpl_density, _cutoffpl_integral),
    "bbody": SpectralModel(
        "bbody", "bbody", "Black body: norm * 8.0525 E^2 / (kT^4 (exp(E/kT) - 1))",
        (_KT, ParamSpec("norm", "L39/D10^2", 1.0, 0.0, 1.0e24,
                        "Luminosity in 1e39 erg/s over the squared distance in 10 kpc")),
        _bbody_density, _bbody_integral),
    "bbodyrad": SpectralModel(
        "bbodyrad", "bbodyrad", "Black body: norm * 1.0344e-3 E^2 / (exp(E/kT) - 1)",
        (_KT, ParamSpec("norm", "R_km^2/D10^2", 1.0, 0.0, 1.0e24,
                        "Squared radius in km over the squared distance in 10 kpc")),
        _bbodyrad_density, _bbodyrad_integral),
})


def get_model(name: str) -> SpectralModel:
    """The model called `name`; ValueError listing the known ones otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown spectral model {name!r}; known: {', '.join(MODELS)}") from None


def parameter_specs(name: str, absorbed: bool) -> tuple[ParamSpec, ...]:
    """Parameters of `name`, preceded by nH when absorbed (XSPEC order: wabs*model)."""
    return ((NH,) if absorbed else ()) + get_model(name).params


def _values(model: SpectralModel, params: Mapping[str, float]) -> tuple[float, ...]:
    missing = [p for p in model.param_names if p not in params]
    if missing:
        raise ValueError(f"model {model.name}: missing parameter(s) {', '.join(missing)}")
    return tuple(float(params[p]) for p in model.param_names)


def wabs_cross_section(energy) -> np.ndarray:
    """Photo-absorption cross-section per hydrogen atom [cm^2] (Morrison & McCammon 1983)."""
    energy = np.asarray(energy, dtype=float)
    return _cross_section_in_range(energy, _range_index(energy))


def _range_index(energy: np.ndarray) -> np.ndarray:
    """Index of the table range holding each energy: -1 below 0.03 keV, 14 above 10 keV."""
    return np.searchsorted(_MM83_EDGES, energy, side="right") - 1


def _continuation(energy: float, coefficients: np.ndarray) -> list[float]:
    """Coefficients of the pure E^-3 law matching the table at `energy`."""
    c0, c1, c2 = coefficients
    return [c0 + c1 * energy + c2 * energy**2, 0.0, 0.0]


# The table with its two continuations: row 0 below 0.03 keV, the last row above 10 keV.
_COEFFS_EXTENDED = np.array([_continuation(_MM83_EDGES[0], _MM83_COEFFS[0]), *_MM83_COEFFS,
                             _continuation(_MM83_EDGES[-1], _MM83_COEFFS[-1])])
_COEFFS_EXTENDED.setflags(write=False)


def _cross_section_in_range(energy: np.ndarray, index: np.ndarray) -> np.ndarray:
    """sigma(E) [cm^2] using the coefficients of range `index` (one-sided limits at edges)."""
    c0, c1, c2 = _COEFFS_EXTENDED[index + 1].T
    safe = np.where(energy > 0, energy, 1.0)
    sigma = (c0 + safe * (c1 + safe * c2)) / safe**3
    return np.where(energy < _HYDROGEN_EDGE_KEV, 0.0, sigma * 1e-24)


def wabs_transmission(energy, nh: float) -> np.ndarray:
    """Transmission exp(-nH sigma(E)) at `energy` [keV]; nH in 1e22 cm^-2."""
    return np.exp(-nh * 1e22 * wabs_cross_section(energy))


def wabs_bin_transmission(e_lo, e_hi, nh: float) -> np.ndarray:
    """Transmission averaged over each bin, XSPEC's way: the trapezoid rule over the bin
    edges and every table edge inside the bin, with one-sided limits at the edges."""
    e_lo = np.asarray(e_lo, dtype=float)
    e_hi = np.asarray(e_hi, dtype=float)
    table_edges = np.concatenate([[_HYDROGEN_EDGE_KEV], _MM83_EDGES])
    inner = table_edges[(table_edges > e_lo.min()) & (table_edges < e_hi.max())]
    points = np.unique(np.concatenate([e_lo, e_hi, inner]))
    left, right = points[:-1], points[1:]
    middle = 0.5 * (left + right)
    segment_range = _range_index(middle)
    below_edge = middle < _HYDROGEN_EDGE_KEV

    def transmission(energy):
        sigma = _cross_section_in_range(energy, segment_range)
        return np.where(below_edge, 1.0, np.exp(-nh * 1e22 * sigma))

    area = 0.5 * (right - left) * (transmission(left) + transmission(right))
    cumulative = np.concatenate([[0.0], np.cumsum(area)])
    position = np.searchsorted(points, np.stack([e_lo, e_hi]))
    width = e_hi - e_lo
    integral = cumulative[position[1]] - cumulative[position[0]]
    if np.all(width > 0):
        return integral / width
    return np.where(width > 0, integral / np.where(width > 0, width, 1.0),
                    wabs_transmission(e_lo, nh))


def photon_flux(name: str, params: Mapping[str, float], e_lo, e_hi) -> np.ndarray:
    """Photon flux [ph/cm2/s] of model `name` in each bin [e_lo, e_hi] (keV); absorbed by
    wabs when `params` holds ``nH``."""
    model = get_model(name)
    e_lo = np.asarray(e_lo, dtype=float)
    e_hi = np.asarray(e_hi, dtype=float)
    flux = model.integrate(e_lo, e_hi, *_values(model, params))
    if "nH" in params:
        flux = flux * wabs_bin_transmission(e_lo, e_hi, float(params["nH"]))
    return flux


def photon_spectrum(name: str, params: Mapping[str, float], energy) -> np.ndarray:
    """Photon flux density [ph/cm2/s/keV] at `energy` (keV), absorbed if ``nH`` is given."""
    model = get_model(name)
    energy = np.asarray(energy, dtype=float)
    density = model.density(energy, *_values(model, params))
    if "nH" in params:
        density = density * wabs_transmission(energy, float(params["nH"]))
    return density


def _band_nodes(emin: float, emax: float, bins: int = 512, order: int = 8):
    """Quadrature nodes and weights over [emin, emax] on log-spaced sub-bins."""
    if not (0 < emin < emax):
        raise ValueError(f"energy band must satisfy 0 < emin < emax, got {emin}-{emax} keV")
    edges = np.geomspace(emin, emax, bins + 1)
    # Split at the absorption table's edges so that no sub-bin straddles a discontinuity.
    inner = _MM83_EDGES[(_MM83_EDGES > emin) & (_MM83_EDGES < emax)]
    edges = np.unique(np.concatenate([edges, inner]))
    nodes, weights = _gauss_legendre(order)
    half = 0.5 * np.diff(edges)
    centre = 0.5 * (edges[1:] + edges[:-1])
    energy = centre[:, None] + half[:, None] * nodes[None, :]
    return energy.ravel(), (half[:, None] * weights[None, :]).ravel()


def energy_flux(name: str, params: Mapping[str, float], emin: float, emax: float) -> float:
    """Energy flux [erg/cm2/s] between emin and emax (keV): the integral of E A(E) M(E)."""
    energy, weight = _band_nodes(emin, emax)
    return float(np.sum(weight * energy * photon_spectrum(name, params, energy)) * KEV_TO_ERG)


def band_photon_flux(name: str, params: Mapping[str, float], emin: float, emax: float) -> float:
    """Photon flux [ph/cm2/s] between emin and emax (keV)."""
    energy, weight = _band_nodes(emin, emax)
    return float(np.sum(weight * photon_spectrum(name, params, energy)))
