"""Simulate HXMT Level-1 exposures from a sky model, into the real 1L archive layout.

`simulate_archive(spec, root)` writes every exposure of a `skymodel.SimulationSpec`:

    root/<proposal>/<ObsID>/<ExpID>-<YYYYMMDD>-01-01/
        HE/ HXMT_<ExpID>_HE-{Evt,HV,DTime,PM,TH,InsStat}_FFFFFF_V1_L1P.FITS
        ME/ HXMT_<ExpID>_ME-{Evt,TH,InsStat}_FFFFFF_V1_L1P.FITS
        LE/ HXMT_<ExpID>_LE-{Evt,TH,InsStat}_FFFFFF_V1_L1P.FITS
        ACS/ HXMT_<ExpID>_{Att,Orbit}_FFFFFF_V1_L1P.FITS
        AUX/ HXMT_<ExpID>_EHK_FFFFFF_V1_L1P.FITS
        SIM/truth.json          (what was injected; the archive reader ignores SIM/)
        SIM/gti_{HE,ME,LE}.fits (the true good time under the default screening, GTI0 + GTIDesc)
    root/<proposal>/proposal.json   (type, PI, public dates: what real 1L trees lack)

Exposures are independent (own random generator from the master seed and the ExpID), so they
run in parallel processes and the result does not depend on the number of workers. Rows of
the housekeeping files are 1 s apart at integer MET T_k, each covering [T_k - 0.5, T_k + 0.5);
TSTART = T_0 - 0.5.
"""
from __future__ import annotations

import json
import logging
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from astropy.io import fits

from . import events as ev
from . import l1files
from .fitsio import StreamingTableWriter
from .instrument import PAYLOAD_SPECS
from .orbit import (Attitude, Orbit, conjunction_mask, criteria_masks, eci_to_ecef, ehk_columns, geodetic,
                    in_polygon, intervals_of, rigidity, saa_times, source_elevation, unit_vector, angle_between)
from .response import RESPONSE_VERSION, PayloadResponse, collimator_transmission, offset_in_payload_frame
from .skymodel import ExposurePlan, ObservationPlan, ProposalPlan, SimulationSpec, Source
from .timeconv import met_date_string, met_to_iso

log = logging.getLogger(__name__)

SIMULATOR_VERSION = 2      # 2: source spectra and the CXB integrated by dataserver.spectral_models
TRUTH_FORMAT = "xoda-hxmt-sim-truth/1"
PROPOSAL_FILE, PROPOSAL_FORMAT = l1files.PROPOSAL_FILE, l1files.PROPOSAL_FORMAT
TRUTH_DIR, TRUTH_FILE = l1files.TRUTH_DIR, l1files.TRUTH_FILE
SOURCE_SEARCH_RADIUS = 20.0      # deg: sources farther from the pointing cannot reach a collimator

# Rates per detector (counts/s) at the reference modulation. The real raw HE files hold ~600
# CsI/vetoed triggers per detector per second; xoda writes a scaled-down population (CsI,
# vetoed) and accounts for the rest as unrecorded triggers in the dead time, to keep archives
# small while keeping dead time realistic.
DEFAULT_OPTIONS: Mapping[str, Any] = {
    "background_scale": 1.0, "cxb": True,
    "he_csi_rate": 10.0, "he_veto_rate": 5.0, "he_calibration_rate": 1.5, "he_unrecorded_rate": 400.0,
    "me_calibration_rate": 1.0, "le_calibration_rate": 0.75, "le_forced_trigger_rate": 1.0,
    "jitter_deg": 0.006, "settle_offset_deg": 0.3, "max_events_per_chunk": 400_000,
}
FLUX_BANDS = ((1.0, 10.0), (2.0, 10.0), (10.0, 30.0), (20.0, 100.0), (27.0, 250.0), (5.0, 30.0))


def options_with_defaults(options: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = dict(DEFAULT_OPTIONS)
    merged.update(options or {})
    return merged


def exposure_generators(seed: int, exp_id: str) -> dict[str, np.random.Generator]:
    """Independent generators of one exposure: the attitude, each payload, housekeeping."""
    sequence = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(exp_id.encode()),))
    names = ("attitude", "HE", "ME", "LE", "housekeeping")
    return {name: np.random.default_rng(child) for name, child in zip(names, sequence.spawn(len(names)))}


def exposure_dir_name(exp_id: str, tstart: float) -> str:
    return f"{exp_id}-{met_date_string(tstart + 0.5)}-01-01"


def choose_start(orbit: Orbit, ra: float, dec: float, start: float, duration: float, fraction: float,
                 search: float = 86400.0, step: float = 20.0) -> float:
    """First start >= `start` (60 s steps, within `search` s) where at least `fraction` of
    [start, start + duration] passes the default HE screening (pointing jitter ignored)."""
    grid = np.arange(start - 86400.0, start + search + duration + 86400.0, step)
    position = orbit.eci(grid)[0]
    fixed = eci_to_ecef(grid, position)
    lon, lat, _ = geodetic(fixed)
    cor = rigidity(fixed)[0]
    flag = in_polygon(lon, lat)
    t_saa, tn_saa = saa_times(flag, step, 86400.0)
    elv = source_elevation(grid, orbit, ra, dec, position)
    good = (elv > 10) & (cor > 8) & ~flag & (t_saa > 300) & (tn_saa > 300)
    first = int(np.searchsorted(grid, start))
    window = max(int(duration / step), 1)
    sums = np.concatenate([[0], np.cumsum(good)])
    best, best_start = -1.0, start
    for index in range(first, first + int(search / step), int(60 / step)):
        value = (sums[index + window] - sums[index]) / window
        if value >= fraction:
            return float(np.round(grid[index]))
        if value > best:
            best, best_start = value, float(np.round(grid[index]))
    log.warning("no start within %.0f s of MET %.0f reaches a good fraction of %.2f; using %.2f",
                search, start, fraction, best)
    return best_start


def _temperatures(time: np.ndarray, period: float, units: int, mean: float, swing: float) -> np.ndarray:
    phase = 2 * np.pi * time[:, None] / period + 0.7 * np.arange(units)[None, :]
    return mean + swing * np.sin(phase)


def _prepare_sources(sources: Sequence[Source], time: np.ndarray, ra_p: np.ndarray, dec_p: np.ndarray,
                     roll: float, orbit: Orbit, position: np.ndarray, payloads: Sequence[str],
                     target: tuple[float, float]) -> list[dict]:
    from .orbit import barycentric_met

    prepared = []
    target_vector = unit_vector(*target)
    for source in sources:
        separation = float(angle_between(unit_vector(source.ra, source.dec), target_vector))
        if separation > SOURCE_SEARCH_RADIUS:
            continue
        x, y = offset_in_payload_frame(source.ra, source.dec, ra_p, dec_p, roll)
        transmission = {p: collimator_transmission(p, np.arange(PAYLOAD_SPECS[p].n_detectors), x, y)
                        for p in payloads}
        visible = source_elevation(time, orbit, source.ra, source.dec, position) > 0
        info = {"source": source, "transmission": transmission, "visible": visible, "separation": separation,
                "bound": np.ones(time.size), "accept": None}
        if not source.variability.constant:
            extended = np.concatenate([[time[0] - 1.0], time, [time[-1] + 1.0]])
            bary = barycentric_met(extended, orbit, source.ra, source.dec)
            lo, hi = np.interp(time - 0.5, extended, bary), np.interp(time + 0.5, extended, bary)
            bound = np.maximum(source.variability.bound(lo, hi), 1e-300)
            variability = source.variability

            def accept(t, row, _v=variability, _x=extended, _b=bary, _bound=bound):
                return _v.factor(np.interp(t, _x, _b)) / _bound[row]

            info.update(bound=bound, accept=accept, barycentric=bary[1:-1])
        prepared.append(info)
    return prepared


def simulate_exposure(root: Path, proposal: ProposalPlan, observation: ObservationPlan, exposure: ExposurePlan,
                      sources: Sequence[Source], orbit: Orbit, options: Mapping[str, Any], seed: int,
                      version: int = 1) -> dict[str, Any]:
    """Write one exposure (all its payloads, ACS, AUX, truth); return the truth record."""
    options = options_with_defaults(options)
    start = float(np.floor(exposure.start + 1e-3))     # integer MET rows (ISO parsing leaves ~1e-7 s)
    if exposure.min_good_fraction:
        start = choose_start(orbit, observation.ra, observation.dec, start, exposure.duration,
                             exposure.min_good_fraction)
    n_rows = max(int(round(exposure.duration)), 1)
    time = start + np.arange(n_rows, dtype=float)
    tstart, tstop = start - 0.5, start + n_rows - 0.5
    rngs = exposure_generators(seed, exposure.exp_id)
    dir_name = exposure_dir_name(exposure.exp_id, tstart)
    exposure_dir = Path(root) / proposal.proposal_id / observation.obs_id / dir_name
    exposure_dir.mkdir(parents=True, exist_ok=True)
    header = l1files.ExposureHeader(proposal.proposal_id, observation.obs_id, exposure.exp_id, dir_name,
                                    observation.target, observation.ra, observation.dec, observation.roll,
                                    tstart, tstop, seed)

    attitude = Attitude(observation.ra, observation.dec, observation.roll, float(options["jitter_deg"]),
                        float(options["settle_offset_deg"]))
    ra_p, dec_p = attitude.pointing(time, rngs["attitude"])
    ehk = ehk_columns(time, orbit, attitude, ra_p, dec_p)
    on = ehk["SAA_FLAG"] == 0
    modulation = ev.modulation(ehk["COR"], ehk["T_SAA"])
    position, velocity = orbit.eci(time)
    prepared = _prepare_sources(sources, time, ra_p, dec_p, observation.roll, orbit, position,
                                exposure.payloads, (observation.ra, observation.dec))
    scale = float(options["background_scale"])
    period = orbit.period
    temperatures = {"HE": _temperatures(time, period, 18, 18.0, 1.0),
                    "ME": _temperatures(time, period, 9, -10.0, 2.0),
                    "LE": _temperatures(time, period, 3, -50.0, 1.5)}

    good_time: dict[str, Any] = {}
    events_truth: dict[str, Any] = {}
    for payload in exposure.payloads:
        spec = PAYLOAD_SPECS[payload]
        response = PayloadResponse(payload)
        extent = max(f[1] for f in spec.fov.values() if f)
        cxb = ev.cxb_visibility(ehk["ELV"], extent) if options["cxb"] else None
        components = ev.sky_components(response, prepared, cxb, on) + ev.instrumental_components(
            spec, modulation, on, options, scale)
        unrecorded = None
        if payload == "HE":
            unrecorded = (options["he_unrecorded_rate"] * scale * modulation * on)[:, None] * np.ones((1, 18))
        path = l1files.file_path(exposure_dir, exposure.exp_id, f"{payload}-Evt", version)
        path.parent.mkdir(parents=True, exist_ok=True)
        with StreamingTableWriter(path, l1files.EVENT_COLUMNS[payload], l1files.EVENT_EXTNAME,
                                  l1files.event_header_cards(payload, header), header.primary(payload)) as writer:
            summary = ev.generate(payload, components, time, on, None if payload == "HE" else temperatures[payload],
                                  options, unrecorded, rngs[payload], writer.write)
        events_truth[payload] = {"file": path.name, "written": summary["written"],
                                 "by_component": summary["by_component"], "slices": summary["slices"]}
        status = on.astype(np.uint8)
        if payload == "HE":
            dead_us = summary["recorded_triggers"] * spec.deadtime_per_event * 1e6
            hv = np.where(on[:, None], 1100.0 + 20.0 * np.sin(np.arange(18))[None, :], 0.0)
            pm_rate = np.where(on, 12.0 * modulation, 900.0)
            pm = rngs["housekeeping"].poisson(pm_rate[:, None] * np.ones((1, 3))).astype(np.int32)
            l1files.write_he_housekeeping(exposure_dir, header, time, version, dead_time_us=dead_us, hv=hv, pm=pm,
                                          temperature=temperatures["HE"], status=status)
        elif payload == "ME":
            l1files.write_me_temperature(exposure_dir, header, time, temperatures["ME"], version)
            l1files.write_status(exposure_dir, header, "ME", time, status, version)
        else:
            l1files.write_le_temperature(exposure_dir, header, time, temperatures["LE"], version)
            l1files.write_status(exposure_dir, header, "LE", time, status, version)
        good_time[payload] = _good_time(ehk, spec.screening_expression, time, tstart, tstop)
        if payload == "HE":
            live = 1.0 - dead_us / 1e6
            mask = conjunction_mask(ehk, spec.screening_expression)
            good_time[payload]["mean_live_fraction"] = float(live[mask].mean()) if mask.any() else None
        for info in prepared:
            info.setdefault("payloads", {})[payload] = _source_payload_truth(info, payload, response, ehk, spec)

    fixed, fixed_velocity = eci_to_ecef(time, position, velocity)
    lon, lat, alt = geodetic(fixed)
    l1files.write_attitude(exposure_dir, header, time, ra_p, dec_p, observation.roll, version)
    l1files.write_orbit(exposure_dir, header, time, fixed, fixed_velocity, lon, lat, alt, version)
    l1files.write_ehk(exposure_dir, header, ehk, version)

    truth = {
        "format": TRUTH_FORMAT, "simulator_version": SIMULATOR_VERSION, "response_version": RESPONSE_VERSION,
        "seed": seed, "proposal": proposal.proposal_id, "proposal_type": proposal.type, "pi": proposal.pi,
        "obs_id": observation.obs_id, "exp_id": exposure.exp_id, "exposure_dir": dir_name,
        "public_date": observation.public_date,
        "tstart": tstart, "tstop": tstop, "duration": tstop - tstart,
        "date_obs": met_to_iso(tstart), "date_end": met_to_iso(tstop),
        "row_convention": "housekeeping/EHK row at TIME covers [TIME-0.5, TIME+0.5); MET in TT seconds",
        "target": {"name": observation.target, "ra": observation.ra, "dec": observation.dec, "roll": observation.roll},
        "orbit": orbit.to_dict(), "options": dict(options),
        "intervals": {
            "saa": intervals_of(ehk["SAA_FLAG"] == 1, time, clip=(tstart, tstop)),
            "earth_occultation": intervals_of(ehk["ELV"] <= 0, time, clip=(tstart, tstop)),
            "elv_below_10": intervals_of(ehk["ELV"] <= 10, time, clip=(tstart, tstop)),
            "cor_below_8": intervals_of(ehk["COR"] <= 8, time, clip=(tstart, tstop)),
            "ang_dist_above_0.04": intervals_of(ehk["ANG_DIST"] > 0.04, time, clip=(tstart, tstop)),
        },
        "good_time": good_time,
        "sources": [_source_truth(info) for info in prepared],
        "background": {
            "particle": {p: {"rate_per_detector": ev.PARTICLE_BACKGROUND[p].rate * scale,
                             "index": ev.PARTICLE_BACKGROUND[p].index,
                             "lines": ev.PARTICLE_BACKGROUND[p].lines} for p in exposure.payloads},
            "modulation": f"(COR/{ev.COR_REFERENCE} GV)^-{ev.COR_INDEX} * (1 + {ev.SAA_AFTERGLOW} "
                          f"exp(-T_SAA/{ev.SAA_AFTERGLOW_TIME} s)); none in the SAA",
            "cxb": "Gruber et al. 1999 through each open collimator" if options["cxb"] else None,
        },
        "events": events_truth,
    }
    truth_dir = exposure_dir / TRUTH_DIR
    truth_dir.mkdir(exist_ok=True)
    for payload, entry in good_time.items():
        # The true good time under the default screening, as an HXMTDAS-style GTI file.
        fits.HDUList([fits.PrimaryHDU(), *l1files.gti_hdus(entry["intervals"], payload, header.cards(payload))]
                     ).writeto(truth_dir / f"gti_{payload}.fits", overwrite=True)
    (truth_dir / TRUTH_FILE).write_text(json.dumps(truth, indent=1, default=_json_default))
    log.debug("simulated %s: %s", dir_name, ", ".join(f"{p} {v['written']} events" for p, v in events_truth.items()))
    return truth


def _good_time(ehk: Mapping[str, np.ndarray], expression: str, time: np.ndarray, tstart: float,
               tstop: float) -> dict[str, Any]:
    mask = conjunction_mask(ehk, expression)
    intervals = intervals_of(mask, time, clip=(tstart, tstop))
    duration = tstop - tstart
    removed = {term: duration - sum(b - a for a, b in intervals_of(m, time, clip=(tstart, tstop)))
               for term, m in criteria_masks(ehk, expression).items()}
    return {"expression": expression, "intervals": intervals, "total": float(sum(b - a for a, b in intervals)),
            "removed_by_criterion": removed}


def _source_payload_truth(info: dict, payload: str, response: PayloadResponse, ehk: Mapping[str, np.ndarray],
                          spec) -> dict[str, Any]:
    good = conjunction_mask(ehk, spec.screening_expression)
    transmission = info["transmission"][payload]
    rate = float((response.photon_rates(info["source"].spectrum) * response.detected_fraction()).sum())
    groups = {}
    for group in ("small", "large"):
        dets = list(spec.groups[group])
        groups[group] = float(transmission[good][:, dets].mean()) if good.any() else None
    variability = None
    if "barycentric" in info and good.any():
        variability = float(info["source"].variability.factor(info["barycentric"][good]).mean())
    return {"rate_per_detector_on_axis": rate, "mean_transmission_good_time": groups,
            "mean_variability_good_time": variability if variability is not None else 1.0}


def _source_truth(info: dict) -> dict[str, Any]:
    source: Source = info["source"]
    spectrum = source.spectrum
    return {**source.to_dict(), "separation_deg": info["separation"],
            "energy_flux_erg_cm2_s": {f"{a:g}-{b:g}": spectrum.energy_flux(a, b) for a, b in FLUX_BANDS},
            "photon_flux_cm2_s": {f"{a:g}-{b:g}": spectrum.photon_flux(a, b) for a, b in FLUX_BANDS},
            "payloads": info.get("payloads", {})}


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _run_job(job: tuple) -> dict[str, Any]:
    return simulate_exposure(*job)


def simulate_archive(spec: SimulationSpec, root: str | Path, workers: int = 1, version: int = 1,
                     on_exposure: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Write every exposure of `spec` under `root` plus each proposal's proposal.json."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    orbit = Orbit.from_spec(spec.orbit)
    options = options_with_defaults(spec.options)
    jobs = [(root, proposal, observation, exposure, spec.sources, orbit, options, spec.seed, version)
            for proposal in spec.proposals for observation in proposal.observations
            for exposure in observation.exposures]
    results: list[dict[str, Any]] = []
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            for truth in pool.map(_run_job, jobs):
                results.append(truth)
                if on_exposure:
                    on_exposure(truth)
    else:
        for job in jobs:
            truth = _run_job(job)
            results.append(truth)
            if on_exposure:
                on_exposure(truth)
    for proposal in spec.proposals:
        write_proposal_file(root, proposal, [t for t in results if t["proposal"] == proposal.proposal_id])
    return results


def write_proposal_file(root: Path, proposal: ProposalPlan, truths: Sequence[Mapping[str, Any]]) -> Path:
    """<root>/<proposal>/proposal.json: number, type, PI, title and, per ObsID, the target and
    public date. Existing entries for other observations are kept."""
    path = Path(root) / proposal.proposal_id / PROPOSAL_FILE
    document: dict[str, Any] = {}
    if path.exists():
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("replacing unreadable %s", path)
    observations = dict(document.get("observations", {}))
    for observation in proposal.observations:
        observations[observation.obs_id] = {
            "target": observation.target, "ra": observation.ra, "dec": observation.dec,
            "public_date": observation.public_date, "pi": proposal.pi,
            "exposures": sorted(t["exp_id"] for t in truths if t["obs_id"] == observation.obs_id)}
    document.update({"format": PROPOSAL_FORMAT, "proposal": proposal.proposal_id, "type": proposal.type,
                     "pi": proposal.pi, "pi_name": proposal.pi_name, "title": proposal.title,
                     "observations": observations})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1))
    return path
