"""Background models of the *bkgmap tasks: particles measured by the blind detectors, the
cosmic X-ray background (CXB) through the collimators from the response model, and (ME) the
Am-241 lines of the calibration ASICs.

The particle background is the same in every detector of a payload at any moment (xoda's
model, the hypothesis behind HXMTDAS's blind-detector scaling); it is measured in the same
good time by detectors that see no sky:

- HE: the blind detector 16. Its dead-time-corrected spectrum, times the number of selected
  detectors, is the particle spectrum of the selection.
- ME: the blind ASICs 10, 28 and 46 normalise the particle spectrum's shape of the instrument
  background model (the model the simulator draws from, as the response is shared), each
  detector's within its ADC range; their ~6 counts/s each make a normalisation good to ~1 %
  in 10 minutes, where a per-channel spectrum of 1024 channels would be far noisier.
- LE: likewise with the six blind CCDs (13, 45, 77, and 21, 53, 85 outside their Fe-55
  lines), ~0.15 counts/s each, as lebkgmap scales its model by the blind CCDs.

The CXB (Gruber et al. 1999) is folded through each selected detector's collimator solid
angle (`PayloadResponse.cxb_expected_counts`), times its mean visibility over the good time:
the Earth blocks the FOV progressively within one FOV extent of the limb (ELV in the EHK).
ME's calibration ASICs (6, 11, 24, 29, 42, 47) see the sky plus Am-241 lines: each one's line
rate is fitted to its excess over the small-FOV ASICs of the same box (same collimator
orientation), so selections that include them (the HXMTDAS standard) subtract the lines too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import gti as gtimod
from .events import PARTICLE_BACKGROUND, cxb_visibility, particle_sampler
from .instrument import payload as payload_spec
from .response import PayloadResponse, sigma_kev

LINE_WINDOW_SIGMA = 3.0


@dataclass
class BackgroundSpectrum:
    """Background rate (counts/s per channel, summed over the selected detectors) with its
    statistical error, and its components."""

    rate: np.ndarray
    error: np.ndarray
    components: dict[str, np.ndarray] = field(default_factory=dict)
    notes: dict[str, float] = field(default_factory=dict)


def fov_extent(payload: str) -> float:
    spec = payload_spec(payload)
    return max(max(f) for f in spec.fov.values() if f)


def visibility_rows(elv: np.ndarray, payload: str) -> np.ndarray:
    """Unblocked fraction of the FOV at each EHK row (the simulator's Earth-blocking model)."""
    return cxb_visibility(elv, fov_extent(payload))


def mean_visibility(ehk_time: np.ndarray, elv: np.ndarray, payload: str, intervals) -> float:
    covered = gtimod.coverage(intervals, ehk_time - 0.5, ehk_time + 0.5)
    if covered.sum() <= 0:
        return 0.0
    return float(np.sum(covered * visibility_rows(elv, payload)) / covered.sum())


def cxb_rate(payload: str, detectors: Sequence[int]) -> np.ndarray:
    """CXB counts/s per PI channel in `detectors` with the whole FOV unblocked."""
    return PayloadResponse(payload).cxb_expected_counts(list(detectors), 1.0)


def line_window(payload: str, lines: Sequence[tuple[float, float]]) -> np.ndarray:
    """Channels within LINE_WINDOW_SIGMA sigma of any of the lines' energies."""
    spec = payload_spec(payload)
    edges = spec.pi.edges()
    centre = 0.5 * (edges[:-1] + edges[1:])
    inside = np.zeros(spec.pi.nchan, dtype=bool)
    for energy, _ in lines:
        width = LINE_WINDOW_SIGMA * float(sigma_kev(payload, energy))
        inside |= np.abs(centre - energy) <= width
    return inside


def adc_range(payload: str, detector: int) -> tuple[float, float]:
    """Energies (keV) a detector's ADC records at the reference temperature: from its lowest
    to past its highest raw channel. Per-detector gains put the top of some ADCs below the top
    of the PI range (e.g. ME ASIC 10 stops at 62.2 keV), which the model must follow."""
    spec = payload_spec(payload)
    low, high = spec.channel_to_energy(np.array([0, spec.gain.max_channel + 1]), np.array([detector, detector]),
                                       spec.gain.temp_ref if spec.gain.temp_coeff else None)
    return float(low), float(high)


def particle_shape(payload: str, detector: int | None = None) -> np.ndarray:
    """Particle background per PI channel (the instrument's model) as a fraction of the whole
    PI range; for `detector`, only what its ADC records (so the sum may be below 1)."""
    spec = payload_spec(payload)
    sampler = particle_sampler(spec, PARTICLE_BACKGROUND[payload])
    cdf = np.concatenate([[0.0], sampler.cdf])
    edges = spec.pi.edges()
    if detector is not None:
        edges = np.clip(edges, *adc_range(payload, detector))
    return np.diff(np.interp(edges, sampler.edges, cdf))


def selection_shape(payload: str, detectors: Sequence[int]) -> np.ndarray:
    """Sum over `detectors` of their particle shapes."""
    return sum(particle_shape(payload, d) for d in detectors)


# Half-width (channels) of the running mean that estimates the variance of blind counts:
# well below the resolution (HE FWHM >= 4 channels, ME >= 40), wide enough to decouple a
# channel's error from its own fluctuation.
VARIANCE_SMOOTHING = {"HE": 5, "ME": 10, "LE": 20}


def smoothed_variance(counts: np.ndarray, half_width: int) -> np.ndarray:
    """Poisson variance of each channel estimated from the mean of its neighbours, never
    below one count. Errors taken from each channel's own count (sqrt(n)) would make channels
    that fluctuated low look more precise, which biases a fit towards a low background (a
    harder spectrum); the local mean does not."""
    kernel = np.ones(2 * half_width + 1)
    mean = np.convolve(counts, kernel, "same") / np.convolve(np.ones_like(counts), kernel, "same")
    return np.maximum(mean, 1.0)


def blind_scaled(counts: np.ndarray, exposure: np.ndarray, blind: Sequence[int],
                 n_selected: int, half_width: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """HE/ME: the blind detectors' mean spectrum per detector (counts / live exposure),
    times the number of selected detectors, with errors from `smoothed_variance`."""
    blind = list(blind)
    live = float(np.sum(exposure[blind]))
    if live <= 0:
        raise ValueError("the blind detectors have no live exposure in the good time")
    summed = counts[blind].sum(axis=0).astype(float)
    rate = summed / live * n_selected
    error = np.sqrt(smoothed_variance(summed, half_width)) / live * n_selected
    return rate, error, {"blind_counts": float(summed.sum()), "blind_exposure_s": live,
                         "blind_rate_per_detector": float(summed.sum() / live)}


def blind_members(payload: str) -> list[tuple[int, np.ndarray | None]]:
    """The blind detectors of a payload, each with the channels to leave out (the lines of
    its calibration source) or None."""
    spec = payload_spec(payload)
    members: list[tuple[int, np.ndarray | None]] = [(d, None) for d in spec.groups["blind"]]
    for det in spec.groups.get("blind_calibration", ()):
        members.append((det, line_window(payload, spec.calibration_lines[det])))
    return members


def particle_from_model(payload: str, counts: np.ndarray, exposure: np.ndarray, allowed: Sequence[int],
                        selected: Sequence[int]) -> tuple[np.ndarray, np.ndarray, dict]:
    """ME/LE: the particle model's shape, normalised by the counts of the blind detectors
    (outside their calibration lines), summed over the selected detectors, each within its
    ADC range. The error is that of the normalisation (the blind counts), the same fraction in
    every channel."""
    allowed = set(allowed)
    observed, expected_per_rate = 0.0, 0.0
    for det, excluded in blind_members(payload):
        if det not in allowed:
            continue
        shape = particle_shape(payload, det)
        keep = np.ones(shape.size, bool) if excluded is None else ~excluded
        observed += float(counts[det][keep].sum())
        expected_per_rate += float(exposure[det]) * float(shape[keep].sum())
    if expected_per_rate <= 0:
        raise ValueError("the blind detectors have no live exposure in the good time")
    per_detector = observed / expected_per_rate
    rate = per_detector * selection_shape(payload, selected)
    relative = 1.0 / np.sqrt(max(observed, 1.0))
    return rate, rate * relative, {"blind_counts": observed, "blind_rate_per_detector": per_detector}


def line_profile(payload: str, lines: Sequence[tuple[float, float]]) -> np.ndarray:
    """Counts per PI channel of a source of unit rate emitting `lines` (energy, fraction):
    each line through the redistribution of the response model."""
    response = PayloadResponse(payload)
    fractions = np.array([f for _, f in lines], float)
    rows = np.searchsorted(response.edges, [e for e, _ in lines], side="right") - 1
    return (fractions / fractions.sum()) @ response.rmf(rows)


def me_calibration_lines(counts: np.ndarray, exposure: np.ndarray, selected: Sequence[int],
                         allowed: Sequence[int]) -> tuple[np.ndarray, np.ndarray, dict]:
    """ME: the Am-241 lines of the selected calibration ASICs. Each one's line rate is fitted
    (weighted least squares over the line channels) to its excess over the small-FOV ASICs of
    its box, with the line profile of the response model; the background adds that rate
    times the profile."""
    spec = payload_spec("ME")
    allowed = set(allowed)
    calibration = [d for d in spec.groups["calibration"] if d in set(selected)]
    reference_pool = [d for d in spec.groups["small"] if d in allowed]
    rate, variance, fitted = np.zeros(spec.pi.nchan), np.zeros(spec.pi.nchan), {}
    for det in calibration:
        profile = line_profile("ME", spec.calibration_lines[det])
        window = profile > 1e-3 * profile.max()
        box = spec.detector_box[det]
        reference = [d for d in reference_pool if spec.detector_box[d] == box and exposure[d] > 0]
        if not reference or exposure[det] <= 0:
            raise ValueError(f"ME ASIC {det}: no small-FOV ASIC of box {box} to measure its calibration lines")
        ref_counts = counts[reference].sum(axis=0).astype(float)
        ref_live = float(exposure[reference].sum())
        excess = counts[det] / exposure[det] - ref_counts / ref_live
        noise = (smoothed_variance(counts[det].astype(float), VARIANCE_SMOOTHING["ME"]) / exposure[det] ** 2
                 + smoothed_variance(ref_counts, VARIANCE_SMOOTHING["ME"]) / ref_live ** 2)
        weight = np.where(window, 1.0 / noise, 0.0)
        information = float(np.sum(weight * profile ** 2))
        amplitude = float(np.sum(weight * excess * profile)) / information
        rate += amplitude * profile
        variance += profile ** 2 / information
        fitted[str(det)] = amplitude
    return rate, np.sqrt(variance), {"calibration_asics": calibration, "calibration_line_rates": fitted,
                                     "line_rate": float(rate.sum())}
