"""Event generation for one payload of one simulated exposure, in time slices.

Each component of the data - a sky source, the cosmic X-ray background, the particle
background, calibration sources, and (HE) CsI and vetoed events - has an expected number of
events per 1-s row and per detector (`Component.mu`). A slice of rows draws Poisson counts,
uniform times inside each row (thinned by the variability for variable sources), energies,
then applies dead time, converts energies to raw channels through the gain tables of
`instrument`, sorts by time and hands the slice to the writer. Memory is bounded by the
slice size, whatever the exposure length.

Rows: row k has TIME T_k (integer MET) and covers [T_k - 0.5, T_k + 0.5); housekeeping
(EHK, pointing, temperature, high voltage) is constant within a row.

Background model (model; documented in the README):
- particle background, per detector and the same in open and blind detectors, with rate
  `PARTICLE_BACKGROUND[p].rate` at the reference modulation, times
  m(t) = (COR / 10 GV)^-1 * (1 + 0.5 exp(-T_SAA / 300 s)); no events inside the SAA, where
  the detectors' high voltage is off.
- the cosmic X-ray background (Gruber et al. 1999) through each open collimator (solid angle
  a*b), blocked progressively as the pointing approaches the Earth limb.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from .instrument import (HE_EVENT_CALIBRATION, HE_EVENT_NORMAL, LE_EVENT_FORCED, LE_EVENT_XRAY, Payload,
                         payload as payload_spec)
from .response import PayloadResponse, intrinsic_sigma_kev

COR_REFERENCE = 10.0         # GV
COR_INDEX = 1.0
SAA_AFTERGLOW = 0.5          # relative excess at SAA exit
SAA_AFTERGLOW_TIME = 300.0   # s


@dataclass(frozen=True)
class ParticleSpectrum:
    """Measured-energy spectrum of the particle background of one detector: a power law
    E^-index over the PI range, optional lines (energy keV, fraction of the rate) broadened by
    the resolution, optional rise (E0, scale, A): x (1 + A exp((E - E0) / scale))."""

    rate: float                                   # counts/s per detector in the PI range at m = 1
    index: float
    lines: tuple[tuple[float, float], ...] = ()
    rising: tuple[float, float, float] | None = None


# Rates from the real data of the reference §10 (screened events of blind detectors):
# HE 27.7 cts/s per detector, ME 5.8 cts/s per ASIC, LE ~0.15 cts/s per CCD; HE activation
# lines at 31, 56, 67 and 191 keV (those used for the HE energy-scale calibration).
PARTICLE_BACKGROUND: Mapping[str, ParticleSpectrum] = {
    "HE": ParticleSpectrum(27.7, 1.3, lines=((31.0, 0.03), (56.0, 0.015), (67.0, 0.04), (191.0, 0.03))),
    "ME": ParticleSpectrum(5.8, 0.3),
    "LE": ParticleSpectrum(0.15, 0.0, rising=(11.0, 0.8, 1.0)),
}


def modulation(cor: np.ndarray, t_saa: np.ndarray) -> np.ndarray:
    """Particle-background modulation m(t) by the cut-off rigidity and the SAA afterglow."""
    cor = np.maximum(np.asarray(cor, dtype=float), 0.5)
    return (cor / COR_REFERENCE) ** -COR_INDEX * (1.0 + SAA_AFTERGLOW * np.exp(-np.asarray(t_saa) / SAA_AFTERGLOW_TIME))


class TabulatedSampler:
    """Draw values from a density tabulated on bins (uniform within a bin)."""

    def __init__(self, edges: np.ndarray, density_per_bin: np.ndarray):
        weights = np.clip(np.asarray(density_per_bin, dtype=float), 0.0, None)
        total = weights.sum()
        if total <= 0:
            raise ValueError("empty spectrum")
        self.edges = np.asarray(edges, dtype=float)
        self.cdf = np.cumsum(weights) / total
        self.cdf[-1] = 1.0

    def bins(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.minimum(np.searchsorted(self.cdf, rng.random(n), side="right"), self.cdf.size - 1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        index = self.bins(n, rng)
        lo, hi = self.edges[index], self.edges[index + 1]
        return lo + (hi - lo) * rng.random(n)


def particle_sampler(payload: Payload, spectrum: ParticleSpectrum) -> TabulatedSampler:
    lo, hi = payload.pi.edges()[[0, -1]]
    edges = np.linspace(lo, hi, 8193)
    mid = 0.5 * (edges[:-1] + edges[1:])
    width = np.diff(edges)
    density = mid ** -spectrum.index
    if spectrum.rising:
        e0, scale, amplitude = spectrum.rising
        density = density * (1.0 + amplitude * np.exp((mid - e0) / scale))
    continuum = density * width
    weights = continuum / continuum.sum() * (1.0 - sum(f for _, f in spectrum.lines))
    for energy, fraction in spectrum.lines:
        sigma = float(intrinsic_sigma_kev(payload.name, energy))
        line = np.exp(-0.5 * ((mid - energy) / sigma) ** 2) * width
        weights = weights + fraction * line / line.sum()
    return TabulatedSampler(edges, weights)


@dataclass
class Component:
    """One population of events of a payload."""

    name: str
    kind: int                                      # payload-specific event class (fields)
    mu: np.ndarray                                 # (rows, detectors) expected events (bound if thinned)
    energy: Callable[[np.ndarray, np.random.Generator], np.ndarray]   # det ids -> measured keV
    accept: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None  # (times, rows) -> probability
    truth: dict = field(default_factory=dict)


def source_energy_sampler(response: PayloadResponse, photon_rates: np.ndarray):
    """True energies from the discrete response grid (bin midpoints, weights ARF x photon
    flux), smeared by the intrinsic resolution: the model `response` folds exactly."""
    sampler = TabulatedSampler(response.edges, photon_rates)
    sigma = intrinsic_sigma_kev(response.name, response.e_mid)

    def draw(det: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        index = sampler.bins(det.size, rng)
        return response.e_mid[index] + sigma[index] * rng.standard_normal(det.size)

    return draw


def line_sampler(payload: Payload, lines: Sequence[tuple[float, float]]):
    energies = np.array([e for e, _ in lines])
    fractions = np.array([f for _, f in lines], dtype=float)
    cdf = np.cumsum(fractions / fractions.sum())
    sigma = intrinsic_sigma_kev(payload.name, energies)

    def draw(det: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        which = np.minimum(np.searchsorted(cdf, rng.random(det.size), side="right"), energies.size - 1)
        return energies[which] + sigma[which] * rng.standard_normal(det.size)

    return draw


@dataclass
class SliceEvents:
    time: np.ndarray
    det: np.ndarray
    energy: np.ndarray
    kind: np.ndarray
    row: np.ndarray
    component: np.ndarray


def draw_slice(components: Sequence[Component], rows: slice, row_times: np.ndarray,
               rng: np.random.Generator) -> SliceEvents:
    """Poisson events of every component for rows `rows`, not yet dead-time thinned."""
    parts = []
    for index, component in enumerate(components):
        mu = component.mu[rows]
        counts = rng.poisson(mu)
        total = int(counts.sum())
        if total == 0:
            continue
        flat = np.repeat(np.arange(counts.size), counts.ravel())
        row_local, det = np.divmod(flat, counts.shape[1])
        row = row_local + rows.start
        time = row_times[row] - 0.5 + rng.random(total)
        if component.accept is not None:
            keep = rng.random(total) < component.accept(time, row)
            row, det, time = row[keep], det[keep], time[keep]
        energy = component.energy(det, rng)
        parts.append((time, det, energy, np.full(det.size, component.kind, dtype=np.int16), row,
                      np.full(det.size, index, dtype=np.int16)))
    if not parts:
        empty = np.zeros(0)
        return SliceEvents(empty, empty.astype(np.int64), empty, empty.astype(np.int16),
                           empty.astype(np.int64), empty.astype(np.int16))
    columns = [np.concatenate(c) for c in zip(*parts)]
    return SliceEvents(*columns)


def dead_time_keep(events: SliceEvents, unit: np.ndarray, n_units: int, rows: slice, tau: float,
                   extra_triggers: np.ndarray | None, rng: np.random.Generator):
    """Non-paralysable dead time per (row, unit): each trigger survives with probability
    1 / (1 + n tau), n the triggers of its row and unit. Returns (keep mask, recorded triggers
    per (row, unit) including the unrecorded extra triggers that survived)."""
    n_rows = rows.stop - rows.start
    key = (events.row - rows.start) * n_units + unit
    triggers = np.bincount(key, minlength=n_rows * n_units).reshape(n_rows, n_units).astype(float)
    if extra_triggers is not None:
        triggers += extra_triggers
    survive = 1.0 / (1.0 + triggers * tau)
    keep = rng.random(key.size) < survive.ravel()[key]
    recorded = np.bincount(key[keep], minlength=n_rows * n_units).reshape(n_rows, n_units).astype(float)
    if extra_triggers is not None:
        recorded += rng.binomial(extra_triggers.astype(np.int64), survive)
    return keep, recorded


def sky_components(response: PayloadResponse, sources: Sequence[dict], cxb_visibility: np.ndarray | None,
                   on: np.ndarray) -> list[Component]:
    """Components of the sky seen by a payload: each source (with its per-row transmission,
    visibility and variability bound precomputed in `sources`) and the CXB."""
    spec = response.spec
    components = []
    for info in sources:
        rates = response.photon_rates(info["source"].spectrum)
        rate = float(rates.sum())
        mu = rate * info["transmission"][spec.name] * (info["visible"] & on)[:, None] * info["bound"][:, None]
        components.append(Component(info["source"].name, 0, mu, source_energy_sampler(response, rates),
                                    info["accept"], {"rate_per_detector_on_axis": rate}))
    if cxb_visibility is not None:
        from .response import solid_angle_sr
        rates = response.cxb_photon_rates()
        omega = solid_angle_sr(spec.name, np.arange(spec.n_detectors))
        mu = float(rates.sum()) * omega[None, :] * (cxb_visibility * on)[:, None]
        components.append(Component("CXB", 0, mu, source_energy_sampler(response, rates),
                                    None, {"model": "Gruber et al. 1999"}))
    return components


def instrumental_components(spec: Payload, modulation_: np.ndarray, on: np.ndarray,
                            options: Mapping[str, float], scale: float) -> list[Component]:
    """Particle background (all detectors), calibration sources and, for HE, CsI and vetoed
    events; kinds: HE 0 normal, 1 vetoed, 2 CsI, 3 calibration; LE 0 X-ray; ME 0."""
    n_det = spec.n_detectors
    background = PARTICLE_BACKGROUND[spec.name]
    sampler = particle_sampler(spec, background)
    flux = (modulation_ * on)[:, None] * np.ones((1, n_det))
    comps = [Component("particle", 0, background.rate * scale * flux,
                       lambda det, rng: sampler.sample(det.size, rng), None,
                       {"rate_per_detector": background.rate * scale})]
    if spec.name == "HE":
        comps.append(Component("vetoed", 1, options["he_veto_rate"] * scale * flux,
                               lambda det, rng: sampler.sample(det.size, rng)))
        csi = particle_sampler(spec, ParticleSpectrum(1.0, 1.0))
        comps.append(Component("csi", 2, options["he_csi_rate"] * scale * flux,
                               lambda det, rng: csi.sample(det.size, rng)))
    rate_key = {"HE": "he_calibration_rate", "ME": "me_calibration_rate", "LE": "le_calibration_rate"}[spec.name]
    if spec.calibration_lines and options[rate_key] > 0:
        cal_dets = np.array(sorted(spec.calibration_lines))
        mask = np.zeros(n_det)
        mask[cal_dets] = 1.0
        lines = spec.calibration_lines[int(cal_dets[0])]
        comps.append(Component("calibration", 3 if spec.name == "HE" else 0,
                               options[rate_key] * on[:, None] * mask[None, :], line_sampler(spec, lines),
                               None, {"lines_keV": [e for e, _ in lines], "detectors": cal_dets.tolist()}))
    return comps


def forced_triggers(spec: Payload, rows: slice, row_times: np.ndarray, on: np.ndarray, rate: float,
                    rng: np.random.Generator) -> SliceEvents:
    """LE forced-trigger events: periodic at `rate` Hz per CCD (fixed phase per CCD), in rows
    where the detectors are on; energies are the pedestal noise around 0 keV."""
    if rate <= 0:
        empty = np.zeros(0)
        return SliceEvents(empty, empty.astype(np.int64), empty, empty.astype(np.int16),
                           empty.astype(np.int64), empty.astype(np.int16))
    t_lo = row_times[rows.start] - 0.5
    t_hi = row_times[rows.stop - 1] + 0.5
    period = 1.0 / rate
    phase = (np.arange(spec.n_detectors) * 0.618034) % 1.0 * period
    first = np.floor((t_lo - phase) / period)
    count = int(np.ceil((t_hi - t_lo) / period)) + 1
    times = (first[:, None] + np.arange(count)[None, :]) * period + phase[:, None]
    det = np.broadcast_to(np.arange(spec.n_detectors)[:, None], times.shape)
    inside = (times >= t_lo) & (times < t_hi)
    times, det = times[inside], det[inside]
    row = np.clip(np.floor(times - row_times[0] + 0.5).astype(np.int64), rows.start, rows.stop - 1)
    keep = on[row]
    times, det, row = times[keep], det[keep], row[keep]
    noise = float(intrinsic_sigma_kev(spec.name, 0.0))
    return SliceEvents(times, det.astype(np.int64), noise * rng.standard_normal(times.size),
                       np.full(times.size, LE_EVENT_FORCED, dtype=np.int16), row,
                       np.full(times.size, -1, dtype=np.int16))


def concatenate(a: SliceEvents, b: SliceEvents) -> SliceEvents:
    return SliceEvents(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in
                         ("time", "det", "energy", "kind", "row", "component")))


def select(events: SliceEvents, mask: np.ndarray) -> SliceEvents:
    return SliceEvents(*(getattr(events, f)[mask] for f in ("time", "det", "energy", "kind", "row", "component")))


def he_fields(events: SliceEvents, channel: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = events.time.size
    nai_width = np.clip(np.rint(62.0 + 2.5 * rng.standard_normal(n)), 55, 69)
    csi_width = rng.integers(80, 121, n)
    acd = np.zeros((n, 3), dtype=np.uint8)
    vetoed = np.flatnonzero(events.kind == 1)
    if vetoed.size:
        bits = np.zeros((vetoed.size, 24), dtype=bool)
        n_bits = rng.integers(1, 4, vetoed.size)
        for j in range(3):           # one to three random veto modules of the 18 (may repeat)
            chosen = rng.integers(0, 18, vetoed.size)
            bits[np.arange(vetoed.size)[n_bits > j], chosen[n_bits > j]] = True
        acd[vetoed] = np.packbits(bits, axis=1)[:, :3]
    return {"Time": events.time, "Det_ID": events.det, "Channel": channel,
            "Pulse_Width": np.where(events.kind == 2, csi_width, nai_width),
            "ACD": acd,
            "Event_Type": np.where(events.kind == 3, HE_EVENT_CALIBRATION, HE_EVENT_NORMAL),
            "Flag": np.zeros(n, dtype=np.uint8)}


def me_fields(events: SliceEvents, channel: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    fpga, asic = np.divmod(events.det, 6)
    return {"Time": events.time, "FPGA_ID": fpga, "ASIC_ID": asic, "Channel": channel,
            "Event_Type": np.zeros(events.time.size, dtype=np.uint8)}


def le_fields(events: SliceEvents, channel: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"TIME": events.time, "Det_ID": events.det, "Channel": channel,
            "Event_Type": np.where(events.kind == LE_EVENT_FORCED, LE_EVENT_FORCED, LE_EVENT_XRAY),
            "DetBox": events.det // 32}


FIELD_BUILDERS = {"HE": he_fields, "ME": me_fields, "LE": le_fields}


def plan_slices(expected_per_row: np.ndarray, max_events: int) -> list[slice]:
    """Consecutive row slices of at most ~max_events expected events (at least one row)."""
    slices, start, total = [], 0, 0.0
    for k, value in enumerate(expected_per_row):
        if k > start and total + value > max_events:
            slices.append(slice(start, k))
            start, total = k, 0.0
        total += value
    if start < expected_per_row.size:
        slices.append(slice(start, expected_per_row.size))
    return slices


def generate(payload: str, components: Sequence[Component], row_times: np.ndarray, on: np.ndarray,
             temperature: np.ndarray | None, options: Mapping[str, float], unrecorded_rate: np.ndarray | None,
             rng: np.random.Generator, write: Callable[[dict[str, np.ndarray]], int]) -> dict:
    """Generate, dead-time thin, digitise and write all events of one payload, slice by slice.

    `temperature` is (rows, units) where a unit is an FPGA (ME) or a box (LE), or None;
    `unrecorded_rate` (rows, detectors) is the HE trigger rate that is never written but
    causes dead time. Returns counts per component, recorded triggers per (row, detector) for
    HE (the DTime content) and the number of events written."""
    spec = payload_spec(payload)
    n_rows, n_det = row_times.size, spec.n_detectors
    expected = sum(c.mu.sum(axis=1) for c in components) if components else np.zeros(n_rows)
    slices = plan_slices(np.asarray(expected), int(options["max_events_per_chunk"]))
    written_by_component = np.zeros(len(components), dtype=np.int64)
    forced_written = 0
    recorded_triggers = np.zeros((n_rows, n_det)) if payload == "HE" else None
    written = 0
    for rows in slices:
        events = draw_slice(components, rows, row_times, rng)
        if payload == "LE":
            events = concatenate(events, forced_triggers(spec, rows, row_times, on,
                                                         options["le_forced_trigger_rate"], rng))
        unit_temp = None
        if temperature is not None:
            unit = events.det // 6 if payload == "ME" else events.det // 32
            unit_temp = temperature[events.row, unit]
        channel = spec.energy_to_channel(events.energy, events.det, unit_temp)
        in_range = (channel >= 0) & (channel <= spec.gain.max_channel)
        if payload == "HE":
            # Every trigger, even outside the ADC range, costs dead time (per detector).
            extra = rng.poisson(unrecorded_rate[rows]).astype(float)
            keep, recorded = dead_time_keep(events, events.det, n_det, rows, spec.deadtime_per_event, extra, rng)
            recorded_triggers[rows] = recorded
            keep &= in_range
        elif payload == "ME":
            events, channel = select(events, in_range), channel[in_range]
            keep, _ = dead_time_keep(events, events.det // 6, 9, rows, spec.deadtime_per_event, None, rng)
        else:
            keep = in_range
        events, channel = select(events, keep), channel[keep]
        if payload == "LE":
            # CCD frames: every event of a frame carries the frame time (1/1024 s).
            events.time = np.floor(events.time / spec.time_resolution) * spec.time_resolution
        order = np.argsort(events.time, kind="stable")
        events, channel = select(events, order), channel[order]
        written += write(FIELD_BUILDERS[payload](events, channel, rng))
        real = events.component >= 0
        written_by_component += np.bincount(events.component[real], minlength=len(components))
        forced_written += int((~real).sum())
    by_component = {c.name: int(n) for c, n in zip(components, written_by_component)}
    if payload == "LE":
        by_component["forced_trigger"] = forced_written
    return {"written": written, "by_component": by_component, "recorded_triggers": recorded_triggers,
            "slices": len(slices)}


def cxb_visibility(elv: np.ndarray, fov_extent: float) -> np.ndarray:
    """Unblocked fraction of a FOV of full extent `fov_extent` (deg) whose centre is `elv`
    above the Earth limb (linear blocking across the FOV)."""
    return np.clip(0.5 + np.asarray(elv, dtype=float) / fov_extent, 0.0, 1.0)

