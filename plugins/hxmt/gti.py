"""Good-time intervals: interval arithmetic, the screening of housekeeping rows (what the
*gtigen tasks do) and the GTI files of the pipeline.

Housekeeping (EHK, InsStat, HE-PM) has one row per second; row k at TIME T_k covers
[T_k - 0.5, T_k + 0.5) (the simulator's convention, and HXMTDAS's 1-s sampling). A row is
good when the screening expression holds and the instrument is on (InsStat: every box
observing, i.e. high voltage on); good rows merge into intervals clipped to [TSTART, TSTOP].
For the report, each top-level `&&` criterion of the expression is also evaluated alone: the
time it removes is the span minus the time it passes, as the simulator's truth counts it.

Intervals are lists of [start, stop] in MET seconds, sorted and disjoint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from astropy.io import fits

from . import gtiexpr
from .fitsio import FitsTable
from .l1files import EHK_COLUMNS, gti_hdus
from .orbit import intervals_of
from .timeconv import MJDREFF, MJDREFI

PM_COLUMNS = ("Cnt_PM_0", "Cnt_PM_1", "Cnt_PM_2")
INSTRUMENT_ON = "InsStat"        # name of the implicit criterion in the report
MJDREF = MJDREFI + MJDREFF


def known_columns(payload: str) -> tuple[str, ...]:
    """Columns a screening expression may use: the EHK columns, and for HE the particle
    monitor counts of HE-PM (hegtigen's `pmexpr`)."""
    return tuple(EHK_COLUMNS) + (PM_COLUMNS if payload == "HE" else ())


def parse_expression(payload: str, text: str) -> gtiexpr.Expression:
    return gtiexpr.parse(text, known_columns(payload))


# ---- interval arithmetic -------------------------------------------------------------------
def normalise(pairs: Iterable[Sequence[float]]) -> list[list[float]]:
    """Sorted, merged intervals; ValueError for a pair that is not [start < stop]."""
    cleaned = []
    for index, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"interval {index} is not a [start, stop] pair")
        start, stop = float(pair[0]), float(pair[1])
        if not (np.isfinite(start) and np.isfinite(stop)) or stop <= start:
            raise ValueError(f"interval {index} [{start}, {stop}] does not have start < stop")
        cleaned.append([start, stop])
    cleaned.sort()
    merged: list[list[float]] = []
    for start, stop in cleaned:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return merged


def intersect(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> list[list[float]]:
    """Intersection of two sorted disjoint interval lists."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, stop = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if stop > start:
            out.append([float(start), float(stop)])
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> list[list[float]]:
    """Parts of `a` outside `b` (both sorted and disjoint)."""
    out = []
    for start, stop in a:
        cursor = start
        for b_start, b_stop in b:
            if b_stop <= cursor or b_start >= stop:
                continue
            if b_start > cursor:
                out.append([float(cursor), float(b_start)])
            cursor = max(cursor, b_stop)
        if cursor < stop:
            out.append([float(cursor), float(stop)])
    return out


def total(intervals: Sequence[Sequence[float]]) -> float:
    return float(sum(stop - start for start, stop in intervals))


def coverage(intervals: Sequence[Sequence[float]], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Seconds of [lo_i, hi_i) inside the intervals, for each i (vectorised)."""
    edges = np.asarray(intervals, dtype=float).reshape(-1, 2)
    if not edges.size:
        return np.zeros(np.shape(lo))
    # Cumulative good time as a piecewise-linear function of time, evaluated at lo and hi.
    knots = edges.ravel()
    cumulative = np.concatenate([[0.0], np.cumsum(np.diff(knots) * np.tile([1.0, 0.0], edges.shape[0])[:-1])])
    return np.interp(hi, knots, cumulative) - np.interp(lo, knots, cumulative)


# ---- screening of housekeeping rows --------------------------------------------------------
@dataclass
class Screening:
    """The good time of one exposure under one expression, with its report."""

    expression: str
    intervals: list[list[float]]
    tstart: float
    tstop: float
    removed_s: dict[str, float] = field(default_factory=dict)

    @property
    def good_time_s(self) -> float:
        return total(self.intervals)

    @property
    def span_s(self) -> float:
        return self.tstop - self.tstart


def screen_rows(expression: gtiexpr.Expression, columns: Mapping[str, np.ndarray], tstart: float,
                tstop: float, instrument_on: np.ndarray | None = None) -> Screening:
    """Good time of rows at `columns['TIME']` passing `expression` (and `instrument_on`)."""
    time = np.asarray(columns["TIME"], dtype=float)
    clip = (tstart, tstop)
    span = tstop - tstart

    def passing(mask: np.ndarray) -> float:
        return total(intervals_of(mask, time, 0.5, clip))

    good = expression.evaluate(columns)
    removed = {text: span - passing(np.broadcast_to(term.evaluate(columns), time.shape))
               for text, term in expression.criteria()}
    if instrument_on is not None:
        removed[INSTRUMENT_ON] = span - passing(instrument_on)
        good = good & instrument_on
    return Screening(str(expression), intervals_of(good, time, 0.5, clip), tstart, tstop, removed)


def row_lookup(target_time: np.ndarray, source_time: np.ndarray) -> np.ndarray:
    """Index of the source row nearest to each target time (housekeeping files of one
    exposure share the 1-s grid, but nothing requires it)."""
    source_time = np.asarray(source_time, dtype=float)
    if source_time.size == 0:
        raise ValueError("the housekeeping file has no rows")
    right = np.clip(np.searchsorted(source_time, target_time), 1, max(source_time.size - 1, 1))
    left = right - 1
    if source_time.size == 1:
        return np.zeros(np.shape(target_time), dtype=np.int64)
    nearer_left = np.abs(target_time - source_time[left]) <= np.abs(source_time[right] - target_time)
    return np.where(nearer_left, left, right)


def housekeeping_columns(exposure, payload: str, needed: Iterable[str]) -> dict[str, np.ndarray]:
    """EHK columns (all of them, on the EHK rows) plus, for HE, the HE-PM columns an expression
    uses, mapped onto the EHK rows."""
    with exposure.table("EHK") as table:
        columns = table.read(list(table.columns))
    upper = {name.upper(): name for name in columns}
    out = {name: columns[name] for name in columns}
    if "TIME" not in upper:
        raise ValueError(f"{exposure.file('EHK').name} has no TIME column")
    out["TIME"] = np.asarray(columns[upper["TIME"]], dtype=float)
    wanted_pm = [c for c in PM_COLUMNS if c in set(needed)]
    if wanted_pm:
        with exposure.table(f"{payload}-PM") as table:
            pm = table.read(["Time", *wanted_pm])
        rows = row_lookup(out["TIME"], pm["Time"])
        for name in wanted_pm:
            out[name] = pm[name][rows]
    return out


def instrument_status(exposure, payload: str, time: np.ndarray) -> np.ndarray:
    """True where every box of the payload is observing (InsStat; high voltage on)."""
    with exposure.table(f"{payload}-InsStat") as table:
        names = [c for c in table.columns if c.lower().startswith("status_box")]
        data = table.read(["Time", *names])
    on = np.ones(data["Time"].size, dtype=bool)
    for name in names:
        on &= data[name] != 0
    return on[row_lookup(time, data["Time"])]


def file_columns_check(expression: gtiexpr.Expression, available: Iterable[str], file_label: str) -> None:
    """Refuse an expression naming a column the exposure's files do not have."""
    have = {name.upper() for name in available}
    missing = sorted(name for name in expression.columns() if name.upper() not in have)
    if missing:
        raise gtiexpr.ExpressionError(f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)} of the "
                                      f"expression {str(expression)!r} not in {file_label}")


# ---- GTI files -----------------------------------------------------------------------------
def gti_hdulist(intervals: Sequence[Sequence[float]], payload: str, cards: Sequence[tuple[str, Any, str]],
                extra: Sequence[fits.BinTableHDU] = ()) -> fits.HDUList:
    """GTI file in the layout of the real HXMTDAS *gtigen output (GTI0 + GTIDesc), with the
    OGIP class and time keywords the real file lacks so standard tools recognise it."""
    hdus = gti_hdus(intervals, payload, cards)
    for hdu in hdus:
        hdu.header["MJDREFI"] = (MJDREFI, "MJD reference day (integer part)")
        hdu.header["MJDREFF"] = (MJDREFF, "MJD reference day (fractional part)")
        hdu.header["TIMESYS"] = ("TT", "time system")
        hdu.header["TIMEUNIT"] = ("s", "unit of time keywords and columns")
    hdus[0].header["ONTIME"] = (total(intervals), "[s] sum of the good-time intervals")
    return fits.HDUList([fits.PrimaryHDU(), *hdus, *extra])


def read_intervals(path: str | Path) -> list[list[float]]:
    """The GTI0 intervals of a GTI product."""
    with FitsTable(path, "GTI0") as table:
        data = table.read(["START", "STOP"])
    return [[float(a), float(b)] for a, b in zip(data["START"], data["STOP"])]


def report_meta(exp_id: str, payload: str, screening: Screening, extra_removed: Mapping[str, float] = (),
                **more: Any) -> dict[str, Any]:
    """The `gti` output contract: intervals (MET s), good/span time, time removed by each
    criterion, the expression and the time reference."""
    removed = dict(screening.removed_s)
    removed.update(dict(extra_removed))
    return {"exposure": exp_id, "payload": payload, "intervals": screening.intervals,
            "good_time_s": screening.good_time_s, "span_s": screening.span_s,
            "removed_s": removed, "expression": screening.expression, "time_format": "hxmt_met",
            "mjdref": MJDREF, "tstart": screening.tstart, "tstop": screening.tstop, **more}
