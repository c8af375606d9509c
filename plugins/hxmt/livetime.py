"""Dead time and live exposure per detector.

- HE: the HE-DTime file gives the dead time of each detector per 1-s bin in microseconds
  (`DeadTime_PHODet_d`) and each box's cycle length (`Cycle_Box`, us): live = 1 - dead / cycle.
- ME: the dead time is rebuilt from the events, as megrade does: every recorded event keeps
  its FPGA busy for 250 us, so an FPGA's live fraction in a 1-s bin is 1 - 250 us x (events of
  that FPGA in the bin). Valid for a non-paralysable dead time, where that is exactly the
  probability that an arriving event is recorded.
- LE: no dead time (CCD frames; forced triggers are not counted as X-rays).

`LiveTable` holds the live fraction per 1-s row and detector; `exposure_per_detector` and
`bin_exposure` integrate it over good-time intervals exactly (piecewise constant per row).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import gti as gtimod
from .fitsio import ColumnSpec, FitsTable
from .instrument import payload as payload_spec

ME_FPGAS = 9
ME_DEAD_COLUMNS = tuple(f"DeadTime_FPGA_{i}" for i in range(ME_FPGAS))
ME_DEADTIME_EXTNAME = "DeadTime"


@dataclass
class LiveTable:
    """Live fraction per 1-s row (centre `time`, covering time +- 0.5 s) and detector."""

    time: np.ndarray          # (rows,)
    live: np.ndarray          # (rows, n_detectors)

    def rows_of(self, t: np.ndarray) -> np.ndarray:
        return gtimod.row_lookup(np.asarray(t, dtype=float), self.time)

    def mean_live(self, detectors: Sequence[int]) -> np.ndarray:
        """Live fraction per row averaged over `detectors`."""
        return self.live[:, list(detectors)].mean(axis=1)


def he_live_table(exposure) -> LiveTable:
    with exposure.table("HE-DTime") as table:
        names = [f"DeadTime_PHODet_{d}" for d in range(18)]
        data = table.read(["Time", "Cycle_Box", *names])
    cycle = np.asarray(data["Cycle_Box"], dtype=float).reshape(data["Time"].size, -1)
    cycle = np.where(cycle > 0, cycle, 1e6)
    box = np.arange(18) // 6
    dead = np.column_stack([data[n] for n in names]) / cycle[:, box]
    return LiveTable(np.asarray(data["Time"], dtype=float), np.clip(1.0 - dead, 0.0, 1.0))


def row_grid(tstart: float, tstop: float) -> np.ndarray:
    """Centres of the 1-s housekeeping rows of an exposure starting at TSTART (= T_0 - 0.5)."""
    n = max(int(round(tstop - tstart)), 1)
    return tstart + 0.5 + np.arange(n, dtype=float)


def me_dead_time(time_of_rows: np.ndarray, event_time: np.ndarray, fpga: np.ndarray,
                 counts: np.ndarray | None = None) -> np.ndarray:
    """Add the events of one chunk to `counts` (rows, 9) and return it."""
    if counts is None:
        counts = np.zeros((time_of_rows.size, ME_FPGAS))
    edges = np.concatenate([time_of_rows - 0.5, [time_of_rows[-1] + 0.5]])
    row = np.searchsorted(edges, event_time, side="right") - 1
    inside = (row >= 0) & (row < time_of_rows.size) & (fpga < ME_FPGAS)
    key = row[inside] * ME_FPGAS + fpga[inside]
    counts += np.bincount(key, minlength=counts.size).reshape(counts.shape)
    return counts


def me_deadtime_columns() -> list[ColumnSpec]:
    return [ColumnSpec("Time", "1D", "s")] + [ColumnSpec(n, "1D", "s") for n in ME_DEAD_COLUMNS]


def me_live_table(path: str | Path) -> LiveTable:
    """ME live fractions per ASIC from the grade step's dead-time table."""
    with FitsTable(path, ME_DEADTIME_EXTNAME) as table:
        data = table.read(["Time", *ME_DEAD_COLUMNS])
    dead = np.column_stack([data[n] for n in ME_DEAD_COLUMNS])          # s per 1-s row
    asic_fpga = np.arange(54) // 6
    return LiveTable(np.asarray(data["Time"], dtype=float), np.clip(1.0 - dead[:, asic_fpga], 0.0, 1.0))


def unit_live_table(payload: str, tstart: float, tstop: float) -> LiveTable:
    """Live fraction 1 everywhere (LE)."""
    time = row_grid(tstart, tstop)
    return LiveTable(time, np.ones((time.size, payload_spec(payload).n_detectors)))


def exposure_per_detector(table: LiveTable, intervals: Sequence[Sequence[float]]) -> np.ndarray:
    """Live exposure (s) of every detector over the intervals."""
    covered = gtimod.coverage(intervals, table.time - 0.5, table.time + 0.5)
    return covered @ table.live


def integrate_rows(row_time: np.ndarray, values: np.ndarray, intervals, edges: np.ndarray) -> np.ndarray:
    """For each bin between consecutive `edges`: the integral over its good time of a function
    constant on each 1-s row (`values` at rows centred on `row_time`; 1 outside the rows)."""
    row_time = np.asarray(row_time, dtype=float)
    intervals = np.asarray(intervals, dtype=float).reshape(-1, 2)
    row_edges = np.concatenate([row_time - 0.5, [row_time[-1] + 0.5]]) if row_time.size else np.zeros(0)
    knots = np.unique(np.concatenate([row_edges, intervals.ravel(), [edges[0], edges[-1]]]))
    mid = 0.5 * (knots[:-1] + knots[1:])
    width = gtimod.coverage(intervals, knots[:-1], knots[1:])
    weight = np.ones(mid.size)
    if row_time.size:
        row = np.clip(np.searchsorted(row_edges, mid, side="right") - 1, 0, row_time.size - 1)
        inside = (mid >= row_edges[0]) & (mid < row_edges[-1])
        weight = np.where(inside, np.asarray(values, dtype=float)[row], 1.0)
    cumulative = np.concatenate([[0.0], np.cumsum(width * weight)])
    return np.diff(np.interp(edges, knots, cumulative))


def bin_exposure(table: LiveTable, intervals, detectors: Sequence[int],
                 edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For bins with `edges`: (good time in each bin, live-time-weighted good time), exact."""
    good = integrate_rows(table.time, np.ones(table.time.size), intervals, edges)
    return good, integrate_rows(table.time, table.mean_live(detectors), intervals, edges)
