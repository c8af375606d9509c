"""The HXMT instrument response model: one implementation for the simulator and for the
response generator (RMF/ARF) of the pipelines.

For a payload P, a detector d and a photon of true energy E arriving at offset (x, y) degrees
from the pointing (in the payload frame, see `offset_in_payload_frame`):

    effective area  A_d(E, x, y) = A_geo * eff(E) * T_d(x, y)
    eff(E)          = f_open * prod_w exp(-mu_w(E) rho_w t_w) * (1 - exp(-mu_a(E) rho_a t_a))
                      * 0.5 * (1 + erf((E - E_thr) / (sqrt(2) w_thr)))
    T_d(x, y)       = max(0, 1 - |p| / a_d) * max(0, 1 - |q| / b_d)      (triangular collimator)
                      p, q = offset along the detector's narrow / long FOV axis (rotated by the
                      detector's orientation), a_d, b_d = FWHM of the FOV (0 for blind detectors)
    redistribution  P(PI = j | E) = Phi((E_hi(j) - E) / s(E)) - Phi((E_lo(j) - E) / s(E))
                      s(E)^2 = sigma_res(E)^2 + g^2 / 12   (g = raw-channel width: the pical
                      dither spreads events uniformly over their raw channel)

The true-energy axis is a fixed grid per payload (`PayloadResponse.edges`); the photon
spectrum enters as its integral over each grid bin (`Spectrum.integrate`: the bin rule of
`dataserver.spectral_models`, which the fits use) and a photon of bin i has energy
E_mid(i) (the XSPEC convention: counts_j = sum_i ARF_i * integral_i F dE * RMF_ij). The
simulator draws events from exactly this discrete model, so a fit through the same RMF/ARF
recovers the injected parameters without model mismatch. Measured energies outside the PI
range are lost (not recorded), so RMF rows sum to less than one near the band edges.

Numbers (see `DETECTOR_MODELS`): detector materials and thicknesses are public design values
(HE 3.5 mm NaI; ME 1 mm Si-PIN; LE ~50 um depleted Si); windows, thresholds and the open
fraction f_open are xoda's choices, f_open set so that the simulated Crab reproduces the
in-flight count rates of the reference §10.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np
from scipy.special import ndtr

from dataserver import spectral_models

from . import materials
from .instrument import Payload, payload as payload_spec

RESPONSE_VERSION = 1


class PhotonSpectrum(Protocol):
    def integrate(self, edges: np.ndarray) -> np.ndarray:
        """Photon flux (ph / cm2 / s) in each bin between consecutive `edges` (keV)."""


@dataclass(frozen=True)
class DetectorModel:
    """Efficiency, resolution and true-energy grid of one payload's detectors."""

    windows: tuple[tuple[str, float], ...]     # (material, thickness cm) crossed before detection
    absorber: tuple[str, float]                # (material, thickness cm) where photons are detected
    threshold: float                           # keV, 50% point of the trigger efficiency
    threshold_width: float                     # keV, Gaussian width of the trigger turn-on
    open_fraction: float                       # collimator/support open fraction (calibrated)
    resolution: Callable[[np.ndarray], np.ndarray]    # FWHM (keV) at true energy E
    grid: tuple[float, float, float]           # true-energy grid: first edge, last edge, step (keV)


def _he_fwhm(energy: np.ndarray) -> np.ndarray:
    # NaI: 15% FWHM at 60 keV (in-flight value of the reference §9), scaling as sqrt(E).
    return 0.15 * 60.0 * np.sqrt(np.asarray(energy, dtype=float) / 60.0)


def _semiconductor_fwhm(noise_fwhm: float, w_ev: float, fano: float = 0.115):
    """FWHM^2 = noise^2 + 2.3548^2 * F * w * E: electronic noise plus Fano statistics."""
    fano_term = 2.3548 ** 2 * fano * w_ev * 1e-3

    def fwhm(energy: np.ndarray) -> np.ndarray:
        return np.sqrt(noise_fwhm ** 2 + fano_term * np.asarray(energy, dtype=float))

    return fwhm


DETECTOR_MODELS: dict[str, DetectorModel] = {
    "HE": DetectorModel(windows=(("Be", 0.15), ("Al", 0.1)), absorber=("NaI", 0.35),
                        threshold=20.0, threshold_width=2.0, open_fraction=0.755,
                        resolution=_he_fwhm, grid=(12.0, 400.0, 0.25)),
    # ME: 3 keV FWHM at 17.8 keV (reference §9), noise-dominated.
    "ME": DetectorModel(windows=(("Be", 0.01),), absorber=("Si", 0.1),
                        threshold=5.5, threshold_width=1.0, open_fraction=0.39,
                        resolution=_semiconductor_fwhm(2.993, 3.62), grid=(2.0, 80.0, 0.05)),
    # LE: 140 eV FWHM at 5.9 keV (reference §9).
    "LE": DetectorModel(windows=(("Al", 3e-5), ("Si", 2e-5)), absorber=("Si", 0.005),
                        threshold=0.3, threshold_width=0.05, open_fraction=0.515,
                        resolution=_semiconductor_fwhm(0.0766, 3.65), grid=(0.1, 15.0, 0.01)),
}


def efficiency(payload: str, energy_kev: np.ndarray | float) -> np.ndarray:
    """Detection efficiency eff(E) of one detector on axis (includes the open fraction)."""
    model = DETECTOR_MODELS[payload_spec(payload).name]
    energy = np.asarray(energy_kev, dtype=float)
    value = np.full_like(energy, model.open_fraction)
    for material, thickness in model.windows:
        value = value * materials.transmission(material, thickness, energy)
    value = value * materials.absorption_probability(*model.absorber, energy)
    value = value * ndtr((energy - model.threshold) / model.threshold_width)
    return value


def intrinsic_sigma_kev(payload: str, energy_kev: np.ndarray | float) -> np.ndarray:
    """Gaussian sigma (keV) of the deposited-energy measurement (the detector resolution
    alone, before the raw-channel quantisation)."""
    spec = payload_spec(payload)
    return DETECTOR_MODELS[spec.name].resolution(np.asarray(energy_kev, dtype=float)) / 2.3548200450309493


def sigma_kev(payload: str, energy_kev: np.ndarray | float) -> np.ndarray:
    """Gaussian sigma (keV) of the measured PI energy for true energy E, including the
    raw-channel quantisation that the pical dither turns into a uniform spread."""
    spec = payload_spec(payload)
    fwhm = DETECTOR_MODELS[spec.name].resolution(np.asarray(energy_kev, dtype=float))
    return np.sqrt((fwhm / 2.3548200450309493) ** 2 + spec.gain.nominal_gain ** 2 / 12.0)


def offset_in_payload_frame(ra: np.ndarray | float, dec: np.ndarray | float,
                            ra_pnt: np.ndarray | float, dec_pnt: np.ndarray | float,
                            roll: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Offset (x, y) in degrees of a sky position from the pointing, projected on the payload
    axes: X at position angle `roll` (deg, north through east), Y at roll + 90 deg. Each
    component is the angle of the projection on that axis (what a slat collimator sees).
    Positions more than 90 deg away get +inf."""
    ra, dec, ra0, dec0, roll = (np.radians(np.asarray(v, dtype=float)) for v in (ra, dec, ra_pnt, dec_pnt, roll))
    cos_c = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
    xi = np.cos(dec) * np.sin(ra - ra0)                                      # east
    eta = np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra - ra0)   # north
    x_t = eta * np.cos(roll) + xi * np.sin(roll)
    y_t = -eta * np.sin(roll) + xi * np.cos(roll)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.degrees(np.arctan2(x_t, cos_c))
        y = np.degrees(np.arctan2(y_t, cos_c))
    behind = cos_c <= 0
    return np.where(behind, np.inf, x), np.where(behind, np.inf, y)


def collimator_transmission(payload: str, det_ids: Sequence[int] | np.ndarray,
                            x_deg: np.ndarray | float, y_deg: np.ndarray | float) -> np.ndarray:
    """Transmission T_d(x, y) for each offset (rows) and detector (columns); 0 for blind
    detectors. Shape: broadcast(x, y).shape + (len(det_ids),)."""
    spec = payload_spec(payload)
    det = np.asarray(det_ids, dtype=np.int64)
    angle = np.radians(np.asarray(spec.detector_orientation)[det])
    fovs = spec.fov_of(det)
    narrow = np.array([f[0] if f else 0.0 for f in fovs])
    wide = np.array([f[1] if f else 0.0 for f in fovs])
    x = np.asarray(x_deg, dtype=float)[..., None]
    y = np.asarray(y_deg, dtype=float)[..., None]
    with np.errstate(invalid="ignore"):
        p = x * np.cos(angle) + y * np.sin(angle)
        q = -x * np.sin(angle) + y * np.cos(angle)
        open_ = narrow > 0
        tp = np.clip(1.0 - np.abs(p) / np.where(open_, narrow, 1.0), 0.0, 1.0)
        tq = np.clip(1.0 - np.abs(q) / np.where(open_, wide, 1.0), 0.0, 1.0)
    result = np.where(open_, tp * tq, 0.0)
    return np.nan_to_num(result, nan=0.0)


def solid_angle_sr(payload: str, det_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Transmission-weighted solid angle of each detector's FOV (sr): the integral of the
    triangular response, a * b for FWHMs a, b (0 for blind detectors)."""
    spec = payload_spec(payload)
    fovs = spec.fov_of(np.asarray(det_ids, dtype=np.int64))
    return np.array([(f[0] * f[1] if f else 0.0) for f in fovs]) * (np.pi / 180.0) ** 2


class PayloadResponse:
    """The response of one payload on its true-energy grid.

    Attributes: `edges` (keV, n+1), `e_mid` (n), `area` (cm2 per detector on axis, n),
    `sigma` (keV, n), `pi_edges` (keV, nchan+1).
    """

    def __init__(self, payload: str):
        self.spec: Payload = payload_spec(payload)
        self.name = self.spec.name
        self.model = DETECTOR_MODELS[self.name]
        first, last, step = self.model.grid
        n = int(round((last - first) / step))
        self.edges = first + step * np.arange(n + 1)
        self.e_mid = 0.5 * (self.edges[:-1] + self.edges[1:])
        self.area = self.spec.geometric_area * efficiency(self.name, self.e_mid)
        self.sigma = sigma_kev(self.name, self.e_mid)
        self.pi_edges = self.spec.pi.edges()

    # --- redistribution ------------------------------------------------------------------
    def detected_fraction(self) -> np.ndarray:
        """P(measured energy inside the PI range | E) for each grid energy."""
        lo, hi = self.pi_edges[0], self.pi_edges[-1]
        return ndtr((hi - self.e_mid) / self.sigma) - ndtr((lo - self.e_mid) / self.sigma)

    def rmf(self, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Redistribution matrix P(PI = j | E_i), shape (n_energies, nchan), float64."""
        e = self.e_mid if rows is None else self.e_mid[rows]
        s = self.sigma if rows is None else self.sigma[rows]
        cdf = ndtr((self.pi_edges[None, :] - e[:, None]) / s[:, None])
        return np.diff(cdf, axis=1)

    # --- effective area ------------------------------------------------------------------
    def arf(self, det_ids: Sequence[int] | np.ndarray, x_deg: float = 0.0, y_deg: float = 0.0) -> np.ndarray:
        """Effective area (cm2) per grid bin summed over `det_ids` for a source at (x, y)."""
        transmission = collimator_transmission(self.name, det_ids, x_deg, y_deg)
        return self.area * float(np.sum(transmission))

    def photon_rates(self, spectrum: PhotonSpectrum) -> np.ndarray:
        """Detected photons per second per grid bin for ONE detector on axis (T = 1)."""
        return self.area * spectrum.integrate(self.edges)

    def expected_counts(self, spectrum: PhotonSpectrum, det_ids: Sequence[int] | np.ndarray,
                        exposure: float, x_deg: float = 0.0, y_deg: float = 0.0) -> np.ndarray:
        """Expected counts per PI channel: exposure * (ARF * photon flux) @ RMF."""
        weights = self.arf(det_ids, x_deg, y_deg) * spectrum.integrate(self.edges) * exposure
        return self._fold(weights)

    def _fold(self, weights: np.ndarray) -> np.ndarray:
        out = np.zeros(self.spec.pi.nchan)
        keep = np.nonzero(weights > 0)[0]
        for start in range(0, keep.size, 256):     # bounded memory for the LE matrix
            rows = keep[start:start + 256]
            out += weights[rows] @ self.rmf(rows)
        return out

    # --- cosmic X-ray background ----------------------------------------------------------
    def cxb_photon_rates(self) -> np.ndarray:
        """CXB photons per second per grid bin for ONE detector of unit solid angle (1 sr)."""
        return self.area * spectral_models.integrate_density(materials.cxb_photon_intensity, self.edges[:-1],
                                                             self.edges[1:])

    def cxb_expected_counts(self, det_ids: Sequence[int] | np.ndarray, exposure: float) -> np.ndarray:
        """Expected CXB counts per PI channel in `det_ids` (unocculted sky)."""
        omega = float(np.sum(solid_angle_sr(self.name, det_ids)))
        return self._fold(self.cxb_photon_rates() * omega * exposure)
