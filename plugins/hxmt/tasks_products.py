"""The product tasks of the chains: screen, specgen, lcgen, the responses and bkgmap (spectrum
and light curve). Payload-independent; the payload plugins' steps call them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from astropy.io import fits

from dataserver import ogip

from . import background as bkg
from . import gti as gtimod
from .archive import Exposure
from .calib import FLAG_BAD_PI, FLAG_CALIBRATION, FLAG_CSI, FLAG_FORCED, FLAG_OFF, FLAG_VETO, TIME_COLUMN
from .instrument import format_id_list, parse_id_list, payload as payload_spec
from .livetime import LiveTable, bin_exposure, exposure_per_detector, integrate_rows
from .rsp import arf_for
from .selection import Selection, channel_groups, detector_spectra, read_selection, select_rows, time_histogram
from .tasks_gti import STATUS_EXTNAME, product_cards, span_of

DETECTORS_EXTNAME = "DETECTORS"
MAX_LIGHTCURVE_BINS = 5_000_000


class NoGoodTime(ValueError):
    """An exposure has no good time left for the requested product."""


def obs_keywords(exposure: Exposure, payload: str) -> ogip.ObsKeywords:
    """Observation keywords of the exposure's products: TSTART/TSTOP and DATE-OBS/DATE-END of
    the exposure (as the real HXMTDAS products carry them), OBJECT and its position."""
    facts = exposure.header_facts()
    ra, dec = facts.get("RA_OBJ"), facts.get("DEC_OBJ")
    return ogip.ObsKeywords.hxmt(payload, object=str(facts.get("OBJECT", "")).strip() or None, obs_mode="Pointing",
                                 ra_obj=None if ra is None else float(ra), dec_obj=None if dec is None else float(dec),
                                 tstart=float(facts["TSTART"]), tstop=float(facts["TSTOP"]),
                                 date_obs=facts.get("DATE-OBS"), date_end=facts.get("DATE-END"))


def reject_mask(payload: str, anticoincidence: bool = True, exclude_calibration: bool = True) -> int:
    """FLAG bits the screening rejects: HE keeps NaI events (hepical's pulse-width window),
    without ACD veto (anticoincidence=yes) and not tagged calibration events (eventtype);
    LE drops forced triggers and events of a box that was off; events outside the PI range
    are never kept."""
    mask = FLAG_BAD_PI
    if payload == "HE":
        mask |= FLAG_CSI | (FLAG_VETO if anticoincidence else 0) | (FLAG_CALIBRATION if exclude_calibration else 0)
    if payload == "LE":
        mask |= FLAG_FORCED | FLAG_OFF
    return mask


# ---- screen --------------------------------------------------------------------------------
def screen(payload: str, exposure: Exposure, gti_path: str | Path | None, detectors: str,
           reject: int) -> tuple[fits.HDUList, dict]:
    """The selection of one exposure's events: row ranges of the good time (the whole exposure
    without a GTI: the raw selection), detectors minus bad ones, rejected event classes."""
    spec = payload_spec(payload)
    allowed = list(spec.parse_detectors(detectors))
    bad: list[int] = []
    if gti_path is not None:
        intervals = gtimod.read_intervals(gti_path)
        if not intervals:
            raise NoGoodTime(f"exposure {exposure.exp_id}: the good-time intervals are empty (nothing passes "
                             "the screening expression and intervals): no events to extract")
        with fits.open(gti_path, memmap=False) as hdul:
            if STATUS_EXTNAME in hdul:
                status = hdul[STATUS_EXTNAME].data
                bad = [int(d) for d, s in zip(status["DET_ID"], status["STATUS"]) if s]
    else:
        intervals = [list(span_of(exposure))]
    allowed = [d for d in allowed if d not in bad]
    with exposure.events(payload) as events:
        rows = select_rows(events, TIME_COLUMN[payload], intervals)
        n_rows = events.rows
    selection = Selection(exposure.exp_id, payload, rows, intervals, tuple(allowed), reject, n_rows)
    cards = product_cards(exposure, payload) + [("RAWSEL", gti_path is None, "no GTI applied (raw selection)")]
    meta = {"exposure": exposure.exp_id, "payload": payload, "good_time_s": gtimod.total(intervals),
            "rows_in_good_time": selection.n_events_in_ranges, "rows": n_rows,
            "detectors": format_id_list(allowed), "bad_detectors": bad, "raw": gti_path is None}
    return selection.to_hdulist(cards), meta


def selected_detectors(payload: str, selection: Selection, detectors: str, what: str) -> list[int]:
    wanted = payload_spec(payload).parse_detectors(detectors)
    chosen = [d for d in wanted if d in set(selection.detectors)]
    if not chosen:
        raise ValueError(f"exposure {selection.exp_id}: none of the {what} detectors {format_id_list(wanted)} "
                         f"passed the screening (allowed: {format_id_list(selection.detectors) or 'none'})")
    return chosen


# ---- specgen -------------------------------------------------------------------------------
def specgen(payload: str, exposure: Exposure, calibrated: str | Path, selection_path: str | Path,
            live: LiveTable, detectors: str, files: dict[str, str]) -> tuple[fits.HDUList, dict]:
    """Spectrum of the selected detectors (counts per PI channel) with the dead-time-corrected
    exposure (mean live exposure of the detectors), plus the spectrum of every screened
    detector in a DETECTORS extension (for the background and for users)."""
    spec = payload_spec(payload)
    selection = read_selection(selection_path)
    chosen = selected_detectors(payload, selection, detectors, "spectrum")
    per_detector = detector_spectra(calibrated, selection, spec.n_detectors, spec.pi.nchan)
    live_exposure = exposure_per_detector(live, selection.intervals)
    exposure_s = float(live_exposure[chosen].mean())
    good = gtimod.total(selection.intervals)
    if exposure_s <= 0:
        raise NoGoodTime(f"exposure {exposure.exp_id}: no live time in the good-time intervals")
    counts = per_detector[chosen].sum(axis=0)
    spectrum = ogip.Spectrum(
        channel=np.arange(spec.pi.nchan), counts=counts, exposure=exposure_s, backfile=files.get("backfile", "NONE"),
        respfile=files.get("respfile", "NONE"), ancrfile=files.get("ancrfile", "NONE"),
        obs=obs_keywords(exposure, payload),
        keywords={"EXP_ID": exposure.exp_id, "DETNAM": format_id_list(chosen), "LIVETIME": exposure_s,
                  "ONTIME": good, "DEADC": exposure_s / good if good > 0 else 1.0})
    hdul = ogip.spectrum_hdulist(spectrum)
    table = fits.BinTableHDU.from_columns([
        fits.Column("DET_ID", "1I", array=np.arange(spec.n_detectors, dtype=np.int16)),
        fits.Column("COUNTS", f"{spec.pi.nchan}J", unit="count", array=per_detector.astype(np.int32)),
        fits.Column("EXPOSURE", "1D", unit="s", array=live_exposure),
        fits.Column("SCREENED", "1L", array=np.isin(np.arange(spec.n_detectors), selection.detectors))])
    table.header["EXTNAME"] = (DETECTORS_EXTNAME, "spectrum and live time per detector")
    hdul.append(table)
    meta = {"exposure": exposure.exp_id, "payload": payload, "exposure_s": exposure_s, "good_time_s": good,
            "counts": int(counts.sum()), "channels": spec.pi.nchan, "detectors": format_id_list(chosen),
            "counts_per_detector": {str(d): int(per_detector[d].sum()) for d in selection.detectors}}
    return hdul, meta


# ---- lcgen ---------------------------------------------------------------------------------
def bin_edges(intervals, bin_width: float) -> np.ndarray:
    first, last = float(intervals[0][0]), float(intervals[-1][1])
    n_bins = int(np.ceil((last - first) / bin_width - 1e-9))
    if n_bins > MAX_LIGHTCURVE_BINS:
        raise ValueError(f"time bin {bin_width} s gives {n_bins} bins; at most {MAX_LIGHTCURVE_BINS} per exposure")
    return first + bin_width * np.arange(max(n_bins, 1) + 1)


def lc_meta(role: str, exposure_id: str, payload: str, bin_width: float, pi_range, n_bins: int, **more) -> dict:
    scale = payload_spec(payload).pi
    return {"role": role, "exposure": exposure_id, "payload": payload, "timedel_s": bin_width,
            "emin_keV": float(scale.energy_lo(pi_range[0])), "emax_keV": float(scale.energy_hi(pi_range[1])),
            "pi_min": int(pi_range[0]), "pi_max": int(pi_range[1]), "n_bins": int(n_bins),
            "mjdref": gtimod.MJDREF, "time_format": "hxmt_met", **more}


def lcgen(payload: str, exposure: Exposure, calibrated: str | Path, selection_path: str | Path, live: LiveTable,
          detectors: str, pi_range: tuple[int, int], bin_width: float, deadcorr: bool, role: str
          ) -> tuple[fits.HDUList, dict]:
    """Light curve of the selected detectors in a PI range: counts per bin over the live good
    time in the bin (dead-time corrected rates), FRACEXP the good-time fraction of the bin.
    Only bins with good time are written, as the HXMTDAS light curves."""
    selection = read_selection(selection_path)
    chosen = selected_detectors(payload, selection, detectors, "light-curve")
    edges = bin_edges(selection.intervals, bin_width)
    groups = channel_groups(payload_spec(payload).pi.nchan, [[(chosen, *pi_range)]])
    counts = time_histogram(calibrated, exposure.file(f"{payload}-Evt"), TIME_COLUMN[payload], selection, groups,
                            float(edges[0]), bin_width, edges.size - 1)[0]
    good, live_good = bin_exposure(live, selection.intervals, chosen, edges)
    effective = live_good if deadcorr else good
    keep = good > 1e-9
    rate = counts[keep] / effective[keep]
    error = np.sqrt(np.maximum(counts[keep], 1)) / effective[keep]
    lc = ogip.LightCurve(time=0.5 * (edges[:-1] + edges[1:])[keep], rate=rate, error=error, timedel=bin_width,
                         fracexp=good[keep] / bin_width, kind="TOTAL",
                         obs=obs_keywords(exposure, payload),
                         keywords={"EXP_ID": exposure.exp_id, "DETNAM": format_id_list(chosen),
                                   "MINPI": int(pi_range[0]), "MAXPI": int(pi_range[1]), "DEADCORR": bool(deadcorr),
                                   "ROLE": role})
    meta = lc_meta(role, exposure.exp_id, payload, bin_width, pi_range, int(keep.sum()),
                   counts=int(counts.sum()), exposure_s=float(effective.sum()),
                   mean_rate=float(counts.sum() / effective.sum()) if effective.sum() > 0 else 0.0,
                   detectors=format_id_list(chosen))
    return ogip.lightcurve_hdulist(lc), meta


# ---- responses -----------------------------------------------------------------------------
def arfgen(payload: str, exposure: Exposure, selection_path: str | Path, live: LiveTable, ra: float, dec: float,
           detectors: str) -> tuple[fits.HDUList, dict]:
    selection = read_selection(selection_path)
    chosen = selected_detectors(payload, selection, detectors, "response")
    obs = obs_keywords(exposure, payload)
    arf, info = arf_for(payload, exposure, ra, dec, chosen, selection.intervals, live, obs)
    return ogip.arf_hdulist(arf), {"exposure": exposure.exp_id, "payload": payload, "ra": ra, "dec": dec,
                                   "channels": int(arf.specresp.size), **info}


# ---- bkgmap --------------------------------------------------------------------------------
def _ehk_elv(exposure: Exposure) -> tuple[np.ndarray, np.ndarray]:
    with exposure.table("EHK") as table:
        data = table.read(["TIME", "ELV"])
    return data["TIME"], data["ELV"]


def bkgmap_spec(payload: str, exposure: Exposure, spectrum_path: str | Path, selection_path: str | Path
                ) -> tuple[fits.HDUList, dict]:
    """Background spectrum of the detectors of a specgen product (see `background`)."""
    spec = payload_spec(payload)
    selection = read_selection(selection_path)
    source = ogip.read_spectrum(spectrum_path)
    with fits.open(spectrum_path, memmap=False) as hdul:
        table = hdul[DETECTORS_EXTNAME].data
        counts = np.asarray(table["COUNTS"], dtype=float)
        live_exposure = np.asarray(table["EXPOSURE"], dtype=float)
        chosen = list(parse_id_list(hdul["SPECTRUM"].header["DETNAM"]))
    allowed = set(selection.detectors)
    if not [d for d, _ in bkg.blind_members(payload) if d in allowed]:
        raise ValueError(f"exposure {exposure.exp_id}: every blind detector is excluded; no background")
    if payload == "HE":
        particle, particle_err, notes = bkg.blind_scaled(counts, live_exposure, spec.groups["blind"], len(chosen),
                                                         bkg.VARIANCE_SMOOTHING[payload])
    else:
        particle, particle_err, notes = bkg.particle_from_model(payload, counts, live_exposure, allowed, chosen)
    time, elv = _ehk_elv(exposure)
    visibility = bkg.mean_visibility(time, elv, payload, selection.intervals)
    cxb = bkg.cxb_rate(payload, chosen) * visibility
    rate, variance = particle + cxb, particle_err ** 2
    components = {"particle": float(particle.sum()), "cxb": float(cxb.sum())}
    # ME/LE: the particle model's normalisation (blind counts) is one number for every channel;
    # its relative error is a correlated systematic the per-channel errors do not show.
    notes["particle_norm_rel_error"] = (0.0 if payload == "HE"
                                        else 1.0 / np.sqrt(max(notes["blind_counts"], 1.0)))
    if payload == "ME":
        lines, lines_err, info = bkg.me_calibration_lines(counts, live_exposure, chosen, allowed)
        rate, variance = rate + lines, variance + lines_err ** 2
        components["calibration_lines"] = float(lines.sum())
        notes.update(info)
    spectrum = ogip.Spectrum(channel=np.arange(spec.pi.nchan), rate=rate, stat_err=np.sqrt(variance),
                             exposure=source.exposure, kind="BKG", poisserr=False, obs=source.obs,
                             keywords={"EXP_ID": exposure.exp_id, "DETNAM": format_id_list(chosen),
                                       "CXBVIS": visibility, "BKGNERR": notes["particle_norm_rel_error"],
                                       "BKGMODEL": "xoda blind-detector + CXB"})
    meta = {"exposure": exposure.exp_id, "payload": payload, "exposure_s": source.exposure,
            "counts": float(rate.sum() * source.exposure), "channels": spec.pi.nchan,
            "rate_components": components, "cxb_visibility": visibility, **notes}
    return ogip.spectrum_hdulist(spectrum), meta


def _blind_rows(payload: str, exposure: Exposure, calibrated, selection: Selection, live: LiveTable,
                pi_range, chosen: Sequence[int], smooth_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row centres, particle rate of the selected detectors in the PI range, its error) per
    1-s row, the blind detectors' counts averaged over `smooth_s` of good time. HE: the blind
    detector's counts in the band, times the number of selected detectors; ME/LE: all the
    blind counts (outside calibration lines) carried to the band by the particle model."""
    spec = payload_spec(payload)
    tstart, tstop = span_of(exposure)
    edges = tstart + np.arange(int(round(tstop - tstart)) + 1, dtype=float)
    rows = 0.5 * (edges[:-1] + edges[1:])
    covered = gtimod.coverage(selection.intervals, edges[:-1], edges[1:])
    event_file = exposure.file(f"{payload}-Evt")
    allowed = set(selection.detectors)
    exposure_rows = np.zeros(rows.size)
    row_live = live.live[live.rows_of(rows)]
    band = slice(pi_range[0], pi_range[1] + 1)
    if payload == "HE":
        members = [(d, [pi_range], 1.0) for d in spec.groups["blind"]]
        scale = float(len(chosen))
    else:
        members = []
        for det, excluded in bkg.blind_members(payload):
            shape = bkg.particle_shape(payload, det)
            kept = np.ones(shape.size, bool) if excluded is None else ~excluded
            steps = np.diff(np.concatenate([[0], kept.astype(int), [0]]))
            runs = list(zip(np.flatnonzero(steps == 1), np.flatnonzero(steps == -1) - 1))
            members.append((det, runs, float(shape[kept].sum())))
        scale = float(bkg.selection_shape(payload, chosen)[band].sum())
    members = [m for m in members if m[0] in allowed]
    for det, _, recorded_fraction in members:
        exposure_rows += covered * row_live[:, det] * recorded_fraction
    if exposure_rows.sum() <= 0:
        raise ValueError(f"exposure {exposure.exp_id}: the blind detectors have no live time in the good time")
    # Every blind detector and PI range in one group: one pass over the events.
    groups = channel_groups(spec.pi.nchan, [[([det], low, high) for det, ranges, _ in members for low, high in ranges]])
    counts = time_histogram(calibrated, event_file, TIME_COLUMN[payload], selection, groups, float(edges[0]), 1.0,
                            rows.size)[0]
    kernel = np.ones(max(int(round(smooth_s)), 1))
    c = np.convolve(counts, kernel, "same")
    e = np.convolve(exposure_rows, kernel, "same")
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(e > 0, c / e, counts.sum() / exposure_rows.sum())
        error = np.where(e > 0, np.sqrt(np.maximum(c, 1.0)) / e, 0.0)
    return rows, rate * scale, error * scale


def _calibration_lines_in_band(payload: str, calibrated, selection: Selection, live: LiveTable,
                               chosen: Sequence[int], pi_range) -> tuple[float, float]:
    """ME: rate (and error) of the selected calibration ASICs' Am-241 lines in the PI range."""
    spec = payload_spec(payload)
    if payload != "ME" or not set(chosen) & set(spec.groups["calibration"]):
        return 0.0, 0.0
    counts = detector_spectra(calibrated, selection, spec.n_detectors, spec.pi.nchan).astype(float)
    lines, error, _ = bkg.me_calibration_lines(counts, exposure_per_detector(live, selection.intervals), chosen,
                                               selection.detectors)
    band = slice(pi_range[0], pi_range[1] + 1)
    return float(lines[band].sum()), float(error[band].sum())


def bkgmap_lc(payload: str, exposure: Exposure, lc_path: str | Path, calibrated, selection_path, live: LiveTable,
              detectors: str, pi_range: tuple[int, int], smooth_s: float) -> tuple[fits.HDUList, dict]:
    """Background light curve on the bins of a source light curve: the blind detectors'
    particle rate (smoothed over `smooth_s`), scaled to the selected detectors, plus the CXB
    in the band times its visibility."""
    selection = read_selection(selection_path)
    chosen = selected_detectors(payload, selection, detectors, "light-curve")
    source = ogip.read_lightcurve(lc_path)
    rows, rate, error = _blind_rows(payload, exposure, calibrated, selection, live, pi_range, chosen, smooth_s)
    time, elv = _ehk_elv(exposure)
    visibility = bkg.visibility_rows(elv, payload)
    cxb_band = float(bkg.cxb_rate(payload, chosen)[pi_range[0]:pi_range[1] + 1].sum())
    half = source.timedel / 2
    edges = np.empty(2 * source.time.size)
    edges[0::2], edges[1::2] = source.time - half, source.time + half
    good = integrate_rows(rows, np.ones(rows.size), selection.intervals, edges)[0::2]
    particle = integrate_rows(rows, rate, selection.intervals, edges)[0::2]
    particle_err = integrate_rows(rows, error, selection.intervals, edges)[0::2]
    cxb = integrate_rows(time, visibility, selection.intervals, edges)[0::2]
    safe = np.where(good > 0, good, 1.0)
    lines, lines_err = _calibration_lines_in_band(payload, calibrated, selection, live, chosen, pi_range)
    lc = ogip.LightCurve(time=source.time, rate=(particle + cxb * cxb_band) / safe + lines,
                         error=np.hypot(particle_err / safe, lines_err),
                         timedel=source.timedel, fracexp=source.fracexp, kind="BKG", obs=source.obs,
                         keywords={"EXP_ID": exposure.exp_id, "DETNAM": format_id_list(chosen),
                                   "MINPI": int(pi_range[0]), "MAXPI": int(pi_range[1]), "ROLE": "background",
                                   "BKGSMOO": smooth_s})
    meta = lc_meta("background", exposure.exp_id, payload, source.timedel, pi_range, source.time.size,
                   mean_rate=float(np.mean(lc.rate)) if lc.rate.size else 0.0, detectors=format_id_list(chosen),
                   cxb_rate=cxb_band, calibration_line_rate=lines, smooth_s=smooth_s)
    return ogip.lightcurve_hdulist(lc), meta
