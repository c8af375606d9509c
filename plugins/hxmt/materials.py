"""X-ray physics the response model needs: attenuation in detector materials and the cosmic
X-ray background spectrum. (Interstellar absorption is a property of the source spectrum:
`wabs` in `dataserver.spectral_models`, shared with the fits.)

Mass attenuation coefficients (cm2/g, total with coherent scattering) are tabulated at a few
energies from NIST XCOM and interpolated log-log, separately on each side of an absorption
edge, so edges stay sharp. The tables are rounded approximations (a few per cent), good for a
physically shaped effective area, not for calibration work.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

# (edge energy in keV or None, [(E keV, mu/rho cm2/g) below edge], [(E, mu/rho) above edge])
_TABLES: dict[str, tuple[float | None, Sequence[tuple[float, float]], Sequence[tuple[float, float]]]] = {
    "Be": (None, (), (
        (0.5, 4179.0), (1.0, 604.1), (1.5, 179.7), (2.0, 74.69), (3.0, 21.92), (4.0, 9.683),
        (5.0, 5.161), (6.0, 3.179), (8.0, 1.617), (10.0, 0.9), (15.0, 0.40), (20.0, 0.26),
        (30.0, 0.19), (40.0, 0.168), (50.0, 0.156), (60.0, 0.149), (80.0, 0.140), (100.0, 0.133),
        (150.0, 0.119), (200.0, 0.109), (300.0, 0.0946), (500.0, 0.0757))),
    "Al": (1.5596, (
        (0.5, 3864.0), (1.0, 1185.0), (1.5, 402.2), (1.5596, 362.1)), (
        (1.5596, 3957.0), (2.0, 2263.0), (3.0, 788.0), (4.0, 360.5), (5.0, 193.4), (6.0, 115.3),
        (8.0, 50.33), (10.0, 26.23), (15.0, 7.955), (20.0, 3.441), (30.0, 1.128), (40.0, 0.5685),
        (50.0, 0.3681), (60.0, 0.2778), (80.0, 0.2018), (100.0, 0.1704), (150.0, 0.1378),
        (200.0, 0.1223), (300.0, 0.1042), (500.0, 0.08445))),
    "Si": (1.8389, (
        (0.5, 4779.0), (1.0, 1570.0), (1.5, 535.5), (1.8389, 309.2)), (
        (1.8389, 3192.0), (2.0, 2777.0), (3.0, 978.4), (4.0, 452.9), (5.0, 245.0), (6.0, 147.0),
        (8.0, 64.68), (10.0, 33.89), (15.0, 10.34), (20.0, 4.464), (30.0, 1.436), (40.0, 0.7012),
        (50.0, 0.4385), (60.0, 0.3207), (80.0, 0.2228), (100.0, 0.1835), (150.0, 0.1448),
        (200.0, 0.1275), (300.0, 0.1082), (500.0, 0.0870))),
    # Iodine dominates NaI above a few keV; its K edge is at 33.17 keV.
    "NaI": (33.169, (
        (1.0, 8000.0), (5.0, 700.0), (10.0, 140.0), (15.0, 51.6), (20.0, 23.7), (30.0, 7.8),
        (33.169, 6.0)), (
        (33.169, 34.4), (40.0, 21.0), (50.0, 11.7), (60.0, 7.2), (80.0, 3.3), (100.0, 1.85),
        (150.0, 0.65), (200.0, 0.34), (300.0, 0.165), (400.0, 0.115), (500.0, 0.093))),
}

DENSITY = {"Be": 1.848, "Al": 2.699, "Si": 2.33, "NaI": 3.667}   # g/cm3


def _loglog(table: Sequence[tuple[float, float]], energy: np.ndarray) -> np.ndarray:
    e = np.array([row[0] for row in table])
    mu = np.array([row[1] for row in table])
    slope_lo = np.log(mu[1] / mu[0]) / np.log(e[1] / e[0])
    slope_hi = np.log(mu[-1] / mu[-2]) / np.log(e[-1] / e[-2])
    log_e = np.log(energy)
    out = np.interp(log_e, np.log(e), np.log(mu))
    # Extend with the end slopes (power laws) outside the table.
    out = np.where(energy < e[0], np.log(mu[0]) + slope_lo * (log_e - np.log(e[0])), out)
    out = np.where(energy > e[-1], np.log(mu[-1]) + slope_hi * (log_e - np.log(e[-1])), out)
    return np.exp(out)


def mass_attenuation(material: str, energy_kev: np.ndarray | float) -> np.ndarray:
    """mu/rho in cm2/g of `material` ('Be', 'Al', 'Si', 'NaI') at `energy_kev`."""
    edge, below, above = _TABLES[material]
    energy = np.asarray(energy_kev, dtype=float)
    if edge is None:
        return _loglog(above, energy)
    return np.where(energy < edge, _loglog(below, energy), _loglog(above, energy))


def transmission(material: str, thickness_cm: float, energy_kev: np.ndarray | float) -> np.ndarray:
    """Fraction of photons crossing `thickness_cm` of `material` unabsorbed."""
    return np.exp(-mass_attenuation(material, energy_kev) * DENSITY[material] * thickness_cm)


def absorption_probability(material: str, thickness_cm: float, energy_kev: np.ndarray | float) -> np.ndarray:
    """Fraction of photons interacting in `thickness_cm` of `material` (detection efficiency)."""
    return -np.expm1(-mass_attenuation(material, energy_kev) * DENSITY[material] * thickness_cm)


def cxb_photon_intensity(energy_kev: np.ndarray | float) -> np.ndarray:
    """Cosmic X-ray background photon intensity, ph / (cm2 s sr keV), after Gruber et al.
    (1999, ApJ 520, 124): 7.877 E^-1.29 exp(-E/41.13) below 60 keV and
    0.0259 (E/60)^-5.5 + 0.504 (E/60)^-1.58 + 0.0288 (E/60)^-1.05 above (in keV/keV units,
    divided by E for photons)."""
    energy = np.asarray(energy_kev, dtype=float)
    low = 7.877 * energy ** -0.29 * np.exp(-energy / 41.13)
    x = energy / 60.0
    high = 0.0259 * x ** -5.5 + 0.504 * x ** -1.58 + 0.0288 * x ** -1.05
    return np.where(energy <= 60.0, low, high) / energy
