"""The good-time tasks of the chains: gtigen (all payloads), megrade's dead-time table, and
gticorr (ME: bad-detector status and particle flares; LE: particle flares by the small- vs
large-FOV comparison of legticorr). Each returns an HDUList and the metadata of the `gti`
output contract (`gti.report_meta`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from astropy.io import fits

from dataserver.steps import StepContext

from . import gti as gtimod
from .archive import Archive, Exposure
from .calib import CHUNK_ROWS, open_calibrated
from .fitsio import FitsTable
from .instrument import format_id_list, payload as payload_spec
from .livetime import ME_DEADTIME_EXTNAME, ME_FPGAS, me_dead_time, me_deadtime_columns, row_grid
from .selection import Selection, channel_groups, detector_spectra, select_rows, time_histogram
from .timeconv import TIME_KEYWORDS

STATUS_EXTNAME = "DETSTATUS"
FLARE_CRITERION = "gticorr: particle flares"
USER_CRITERION = "user intervals"


def exposure_at(context: StepContext, relative: str) -> Exposure:
    """The exposure directory `relative` to the archive root of this worker."""
    if context.archive_dir is None:
        raise RuntimeError("this worker has no archive directory configured")
    root = Path(context.archive_dir).resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise ValueError(f"exposure path {relative!r} leaves the archive")
    return Archive.load_exposure(path)


def product_cards(exposure: Exposure, payload: str) -> list[tuple[str, Any, str]]:
    facts = exposure.header_facts()
    cards = [("TELESCOP", "HXMT", "mission"), ("INSTRUME", payload, "payload"),
             ("EXP_ID", exposure.exp_id, "exposure"), ("OBS_ID", exposure.obs_id, "observation")]
    for key in ("OBJECT", "RA_OBJ", "DEC_OBJ", "TSTART", "TSTOP", "DATE-OBS", "DATE-END"):
        if key in facts:
            cards.append((key, facts[key], ""))
    return cards + [c for c in TIME_KEYWORDS if c[0] in ("TIMESYS", "MJDREFI", "MJDREFF", "TIMEUNIT")]


def span_of(exposure: Exposure) -> tuple[float, float]:
    facts = exposure.header_facts()
    return float(facts["TSTART"]), float(facts["TSTOP"])


# ---- gtigen --------------------------------------------------------------------------------
def gtigen(payload: str, exposure: Exposure, expression_text: str) -> tuple[fits.HDUList, dict]:
    """Screen the housekeeping rows with the expression; report the time each criterion removed."""
    expression = gtimod.parse_expression(payload, expression_text)
    columns = gtimod.housekeeping_columns(exposure, payload, expression.columns())
    gtimod.file_columns_check(expression, columns, f"{exposure.file('EHK').name} (or {payload}-PM)")
    tstart, tstop = span_of(exposure)
    on = gtimod.instrument_status(exposure, payload, columns["TIME"])
    screening = gtimod.screen_rows(expression, columns, tstart, tstop, on)
    cards = product_cards(exposure, payload) + [("GTIEXPR", str(expression), "")]   # long: CONTINUE cards
    meta = gtimod.report_meta(exposure.exp_id, payload, screening)
    return gtimod.gti_hdulist(screening.intervals, payload, cards), meta


def carried_extensions(path: str | Path) -> list[fits.BinTableHDU]:
    """Extensions of a GTI product beyond GTI0/GTIDesc (e.g. ME's detector status), copied."""
    with fits.open(path, memmap=False) as hdul:
        return [hdu.copy() for hdu in hdul[1:] if hdu.name.upper() not in ("GTI0", "GTIDESC")]


def gti_header_cards(path: str | Path) -> list[tuple[str, Any, str]]:
    with fits.open(path, memmap=False) as hdul:
        header = hdul["GTI0"].header
        keep = ("TELESCOP", "INSTRUME", "EXP_ID", "OBS_ID", "OBJECT", "RA_OBJ", "DEC_OBJ", "TSTART", "TSTOP",
                "DATE-OBS", "DATE-END", "GTIEXPR")
        return [(key, header[key], header.comments[key]) for key in keep if key in header]


def gtiselect(gti_path: str | Path, gti_meta: Mapping[str, Any], intervals: Sequence[Sequence[float]]
              ) -> tuple[fits.HDUList, dict]:
    """The user's intervals intersected with the screened GTI."""
    user = gtimod.normalise(intervals)
    before = gtimod.read_intervals(gti_path)
    after = gtimod.intersect(before, user)
    meta = dict(gti_meta)
    removed = dict(meta.get("removed_s", {}))
    tstart, tstop = float(meta["tstart"]), float(meta["tstop"])
    removed[USER_CRITERION] = (tstop - tstart) - gtimod.total(gtimod.intersect([[tstart, tstop]], user))
    meta.update(intervals=after, good_time_s=gtimod.total(after), removed_s=removed, user_intervals=user)
    cards = gti_header_cards(gti_path) + [("GTIUSER", len(user), "user intervals intersected")]
    return gtimod.gti_hdulist(after, meta["payload"], cards, carried_extensions(gti_path)), meta


# ---- ME: megrade's dead-time table ---------------------------------------------------------
def me_grade(exposure: Exposure, calibrated_path: str | Path) -> tuple[fits.HDUList, dict]:
    """Dead time of each FPGA per 1-s row: 250 us per recorded event (every event in the file
    kept its FPGA busy, whatever its class). All events are single-ASIC events in these
    Level-1 files (no pixel pattern to grade)."""
    spec = payload_spec("ME")
    tstart, tstop = span_of(exposure)
    rows = row_grid(tstart, tstop)
    counts = np.zeros((rows.size, ME_FPGAS))
    with open_calibrated(calibrated_path) as calibrated, exposure.events("ME") as events:
        if calibrated.rows != events.rows:
            raise ValueError("the pical product does not belong to this event file")
        for start in range(0, events.rows, CHUNK_ROWS):
            time = events.read(["Time"], start, start + CHUNK_ROWS)["Time"]
            det = calibrated.read(["DET_ID"], start, start + CHUNK_ROWS)["DET_ID"].astype(np.intp)
            me_dead_time(rows, time, det // 6, counts)
    dead = counts * spec.deadtime_per_event
    columns = me_deadtime_columns()
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(c.name, c.format, unit=c.unit, array=rows if c.name == "Time" else dead[:, i - 1])
         for i, c in enumerate(columns)])
    hdu.header["EXTNAME"] = (ME_DEADTIME_EXTNAME, "dead time per FPGA per bin")
    hdu.header["BINSIZE"] = (1.0, "[s] bin size")
    hdu.header["DEADPEV"] = (spec.deadtime_per_event, "[s] dead time per recorded event")
    for key, value, comment in product_cards(exposure, "ME"):
        hdu.header[key] = (value, comment)
    live = 1.0 - dead
    return fits.HDUList([fits.PrimaryHDU(), hdu]), {
        "exposure": exposure.exp_id, "payload": "ME", "rows": int(rows.size),
        "mean_live_fraction_per_fpga": [float(x) for x in live.mean(axis=0)]}


# ---- gticorr -------------------------------------------------------------------------------
def _rows_in(intervals, tstart: float, tstop: float, bin_width: float) -> tuple[np.ndarray, np.ndarray]:
    edges = np.arange(tstart, tstop + bin_width, bin_width)
    edges = edges[edges <= tstop + 1e-9]
    return edges, gtimod.coverage(intervals, edges[:-1], edges[1:])


def _counts(calibrated_path, event_path, time_column, intervals, groups, reject, n_channels, edges) -> np.ndarray:
    """Counts per bin of `edges` (rows) for each group (detectors, PI low, PI high) of events
    with no `reject` flag, in one pass over the events."""
    with FitsTable(event_path, 1) as events:
        n_rows = events.rows
        rows = select_rows(events, time_column, intervals)
    detectors = tuple(sorted({d for members, _, _ in groups for d in members}))
    selection = Selection("", "", rows, list(intervals), detectors, reject, n_rows)
    return time_histogram(calibrated_path, event_path, time_column, selection,
                          channel_groups(n_channels, [[group] for group in groups]),
                          float(edges[0]), float(edges[1] - edges[0]), edges.size - 1)


def running_median(values: np.ndarray, half_width: int) -> np.ndarray:
    out = np.empty_like(values, dtype=float)
    for i in range(values.size):
        window = values[max(0, i - half_width): i + half_width + 1]
        window = window[np.isfinite(window)]
        out[i] = np.median(window) if window.size else np.nan
    return out


def flare_intervals(counts: np.ndarray, exposure: np.ndarray, edges: np.ndarray, sigma: float,
                    baseline_bins: int, min_exposure: float) -> list[list[float]]:
    """Bins whose counts exceed the running median rate by more than `sigma` sigma."""
    usable = exposure >= min_exposure
    rate = np.where(usable, counts / np.where(usable, exposure, 1.0), np.nan)
    baseline = running_median(rate, baseline_bins)
    expected = baseline * exposure
    with np.errstate(invalid="ignore"):
        flare = usable & (counts - expected > sigma * np.sqrt(np.maximum(expected, 1.0)))
    return gtimod.normalise([[edges[i], edges[i + 1]] for i in np.flatnonzero(flare)])


def me_gticorr(exposure: Exposure, calibrated_path, gti_path, gti_meta, deadtime_path, *, sigma: float,
               flare_bin_s: float, status_band_keV: tuple[float, float], status_sigma: float,
               status_tolerance: float) -> tuple[fits.HDUList, dict]:
    """ME: (1) bad-detector status: an ASIC whose counts in a particle-dominated band differ from
    the median of its FOV group (small, large, blind, calibration) by more than `status_sigma`
    sigma plus `status_tolerance` is marked bad for the exposure; (2) 10-s bins where the blind
    ASICs' rate jumps above its running median by `sigma` sigma are removed (particle flares)."""
    from .calib import FLAG_BAD_PI
    from .livetime import exposure_per_detector, me_live_table

    spec = payload_spec("ME")
    intervals = gtimod.read_intervals(gti_path)
    tstart, tstop = float(gti_meta["tstart"]), float(gti_meta["tstop"])
    event_path = exposure.file("ME-Evt")
    live = me_live_table(deadtime_path)
    # (1) detector status
    band = tuple(int(x) for x in spec.pi.band_to_pi(*status_band_keV))
    band = (max(band[0], 0), min(band[1], spec.pi.nchan - 1))
    counts = np.zeros(spec.n_detectors)
    if intervals:
        with FitsTable(event_path, 1) as events:
            rows = select_rows(events, "Time", intervals)
            n_rows = events.rows
        selection = Selection(exposure.exp_id, "ME", rows, intervals, tuple(range(spec.n_detectors)),
                              FLAG_BAD_PI, n_rows)
        counts = detector_spectra(calibrated_path, selection, spec.n_detectors, spec.pi.nchan)[:, band[0]:band[1] + 1].sum(1)
    det_exposure = exposure_per_detector(live, intervals)
    expected = np.zeros(spec.n_detectors)
    status = np.zeros(spec.n_detectors, dtype=np.uint8)
    for group in ("small", "large", "blind", "calibration"):
        members = list(spec.groups[group])
        rates = counts[members] / np.where(det_exposure[members] > 0, det_exposure[members], np.inf)
        expected[members] = np.median(rates) * det_exposure[members]
    deviation = np.abs(counts - expected)
    status[(deviation > status_sigma * np.sqrt(np.maximum(expected, 1.0)) + status_tolerance * expected)
           & (det_exposure > 0)] = 1
    bad = [int(d) for d in np.flatnonzero(status)]
    # (2) flares seen by the good blind ASICs
    blind = [d for d in spec.groups["blind"] if d not in bad]
    flares: list[list[float]] = []
    if intervals and blind:
        edges, covered = _rows_in(intervals, tstart, tstop, flare_bin_s)
        blind_counts = _counts(calibrated_path, event_path, "Time", intervals, [(blind, 0, spec.pi.nchan - 1)],
                               FLAG_BAD_PI, spec.pi.nchan, edges)[0]
        flares = flare_intervals(blind_counts, covered * len(blind), edges, sigma, 15,
                                 0.5 * flare_bin_s * len(blind))
    kept = gtimod.subtract(intervals, flares)
    status_hdu = fits.BinTableHDU.from_columns([
        fits.Column("DET_ID", "1I", array=np.arange(spec.n_detectors, dtype=np.int16)),
        fits.Column("STATUS", "1B", array=status), fits.Column("COUNTS", "1D", array=counts),
        fits.Column("EXPECTED", "1D", array=expected)])
    status_hdu.header["EXTNAME"] = (STATUS_EXTNAME, "ASIC status: 0 good, 1 bad")
    status_hdu.header["BADDETS"] = (format_id_list(bad) or "none", "bad ASICs")
    meta = dict(gti_meta)
    meta["removed_s"] = {**gti_meta.get("removed_s", {}), FLARE_CRITERION: gtimod.total(intervals) - gtimod.total(kept)}
    meta.update(intervals=kept, good_time_s=gtimod.total(kept), bad_detectors=bad)
    cards = gti_header_cards(gti_path)
    return gtimod.gti_hdulist(kept, "ME", cards, [status_hdu]), meta


def le_gticorr(exposure: Exposure, calibrated_path, gti_path, gti_meta, *, sigma: float, smooth_s: float,
               band_keV: tuple[float, float], edge_trim_s: float) -> tuple[fits.HDUList, dict]:
    """LE (legticorr): 1-s rates per CCD of small- and large-FOV CCDs in a particle-dominated
    band (default 10-13 keV), their difference smoothed over `smooth_s`; seconds where the
    small-FOV excess exceeds `sigma` times its error are removed, then `edge_trim_s` from each
    end of every remaining interval (legti trims 120 s; xoda's default trims nothing)."""
    from .calib import FLAG_BAD_PI, FLAG_FORCED, FLAG_OFF

    spec = payload_spec("LE")
    intervals = gtimod.read_intervals(gti_path)
    tstart, tstop = float(gti_meta["tstart"]), float(gti_meta["tstop"])
    band = spec.pi.band_to_pi(*band_keV)
    band = (max(int(band[0]), 0), min(int(band[1]), spec.pi.nchan - 1))
    kept = intervals
    if intervals:
        edges, covered = _rows_in(intervals, tstart, tstop, 1.0)
        event_path = exposure.file("LE-Evt")
        reject = FLAG_BAD_PI | FLAG_FORCED | FLAG_OFF
        small = list(spec.groups["small"])
        large = list(spec.groups["large"])
        c_small, c_large = _counts(calibrated_path, event_path, "TIME", intervals,
                                   [(small, *band), (large, *band)], reject, spec.pi.nchan, edges)
        kernel = np.ones(max(int(round(smooth_s)), 1))
        exposure_sum = np.convolve(covered, kernel, "same")
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.convolve(c_small, kernel, "same") / (exposure_sum * len(small))
            lg = np.convolve(c_large, kernel, "same") / (exposure_sum * len(large))
            error = np.sqrt(s / (exposure_sum * len(small)) + lg / (exposure_sum * len(large)))
            bad = (covered > 0) & (s - lg > sigma * np.maximum(error, 1e-12))
        flares = gtimod.normalise([[edges[i], edges[i + 1]] for i in np.flatnonzero(bad)])
        kept = gtimod.subtract(intervals, flares)
        if edge_trim_s > 0:
            kept = [[a + edge_trim_s, b - edge_trim_s] for a, b in kept if b - a > 2 * edge_trim_s]
    meta = dict(gti_meta)
    meta["removed_s"] = {**gti_meta.get("removed_s", {}), FLARE_CRITERION: gtimod.total(intervals) - gtimod.total(kept)}
    meta.update(intervals=kept, good_time_s=gtimod.total(kept))
    return gtimod.gti_hdulist(kept, "LE", gti_header_cards(gti_path)), meta
