"""Screened event selections and the binning that applies them.

HXMTDAS's *screen tasks copy the events that pass into a new file. xoda stores the selection
instead, which is tiny whatever the number of events:

- the good-time intervals turned into row ranges of the (time-ordered) Level-1 event file,
  found by bisection on its memory-mapped time column;
- the detectors allowed (the user's screening list minus bad detectors);
- the event classes rejected, as a mask of `calib.FLAG_*` bits.

The binning steps apply it while they bin: for each chunk of rows inside the ranges they read
the calibrated columns (PI, DET_ID, FLAG: 4 bytes per event, memory-mapped), map (FLAG,
DET_ID) through one lookup table to a histogram row (or a discard row) and add PI with
`numpy.bincount`. A spectrum of every detector at once costs about one bincount per event.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from astropy.io import fits

from .calib import CHUNK_ROWS, open_calibrated
from .fitsio import FitsTable
from .instrument import format_id_list, parse_id_list

EXTNAME = "SELECT"


@dataclass
class Selection:
    exp_id: str
    payload: str
    rows: np.ndarray              # (n, 2) row ranges [start, stop) of the event file
    intervals: list[list[float]]  # the good-time intervals the ranges come from (MET s)
    detectors: tuple[int, ...]    # detectors allowed by the screening
    reject: int                   # FLAG bits of rejected events
    n_rows: int                   # rows of the Level-1 event file

    @property
    def n_events_in_ranges(self) -> int:
        return int(np.sum(self.rows[:, 1] - self.rows[:, 0])) if self.rows.size else 0

    def to_hdulist(self, cards: Sequence[tuple[str, Any, str]] = ()) -> fits.HDUList:
        rows = self.rows.reshape(-1, 2)
        starts = np.array([a for a, _ in self.intervals], float)
        stops = np.array([b for _, b in self.intervals], float)
        hdu = fits.BinTableHDU.from_columns([
            fits.Column("ROW_START", "1K", array=rows[:, 0]), fits.Column("ROW_STOP", "1K", array=rows[:, 1]),
            fits.Column("START", "1D", unit="s", array=starts), fits.Column("STOP", "1D", unit="s", array=stops)])
        header = hdu.header
        header["EXTNAME"] = (EXTNAME, "screened-event selection")
        header["EXP_ID"] = (self.exp_id, "exposure")
        header["INSTRUME"] = (self.payload, "payload")
        header["DETSEL"] = (format_id_list(self.detectors), "detectors allowed by the screening")
        header["FLAGREJ"] = (int(self.reject), "FLAG bits of rejected events")
        header["NROWS"] = (int(self.n_rows), "rows of the Level-1 event file")
        for key, value, comment in cards:
            header[key] = (value, comment)
        return fits.HDUList([fits.PrimaryHDU(), hdu])


def read_selection(path: str | Path) -> Selection:
    with fits.open(path, memmap=False) as hdul:
        hdu = hdul[EXTNAME]
        data, header = hdu.data, hdu.header
        rows = np.column_stack([np.asarray(data["ROW_START"], np.int64), np.asarray(data["ROW_STOP"], np.int64)])
        intervals = [[float(a), float(b)] for a, b in zip(data["START"], data["STOP"])]
        detectors = parse_id_list(header["DETSEL"]) if header["DETSEL"] else ()
        return Selection(header["EXP_ID"], header["INSTRUME"], rows.reshape(-1, 2), intervals, detectors,
                         int(header["FLAGREJ"]), int(header["NROWS"]))


def select_rows(event_table: FitsTable, time_column: str, intervals: Sequence[Sequence[float]]) -> np.ndarray:
    """Row ranges [start, stop) of the events with START <= time < STOP for each interval."""
    if not intervals:
        return np.zeros((0, 2), np.int64)
    bounds = [value for pair in intervals for value in pair]
    index = event_table.search_sorted(time_column, bounds, side="left")
    rows = index.reshape(-1, 2)
    return rows[rows[:, 1] > rows[:, 0]] if rows.size else rows


# One calibrated row (PI >i2, DET_ID u1, FLAG u1) read as one big-endian 32-bit word:
# PI = word >> 16, DET_ID = (word >> 8) & 0xFF, FLAG = word & 0xFF.
WORD = np.dtype(">u4")


def _chunks(selection: Selection) -> Iterator[tuple[int, int]]:
    for start, stop in selection.rows:
        for first in range(int(start), int(stop), CHUNK_ROWS):
            yield first, min(first + CHUNK_ROWS, int(stop))


def check_alignment(calibrated: FitsTable, selection: Selection) -> None:
    if calibrated.rows != selection.n_rows:
        raise ValueError(f"the calibrated columns have {calibrated.rows} rows but the event file screened "
                         f"had {selection.n_rows}: they do not belong together")
    names = tuple(name.upper() for name in calibrated.columns)
    if names != ("PI", "DET_ID", "FLAG") or calibrated.dtype.itemsize != WORD.itemsize:
        raise ValueError(f"unexpected calibrated columns {names}")


def detector_spectra(calibrated_path: str | Path, selection: Selection, n_detectors: int,
                     n_channels: int) -> np.ndarray:
    """Counts per (detector, PI channel) of the selected events (int64): for each chunk of
    rows, key = DET_ID x n_channels + PI of the kept events (a discard bin for rejected
    classes), one bincount; detectors the screening did not allow are zeroed afterwards."""
    discard = n_detectors * n_channels
    total = np.zeros(discard + 1, dtype=np.int64)
    reject = np.uint32(selection.reject)
    with open_calibrated(calibrated_path) as table:
        check_alignment(table, selection)
        for start, stop in _chunks(selection):
            word = table.read_records(WORD, start, stop)
            key = word >> 8
            key &= 0xFF
            key *= n_channels
            key += word >> 16
            key[(word & reject) != 0] = discard
            total += np.bincount(key, minlength=total.size)
    counts = total[:discard].reshape(n_detectors, n_channels)
    allowed = np.zeros(n_detectors, bool)
    allowed[[d for d in selection.detectors if 0 <= d < n_detectors]] = True
    counts[~allowed] = 0
    return counts


def channel_groups(n_channels: int, groups: Sequence[Sequence[tuple[Sequence[int], int, int]]]) -> np.ndarray:
    """The (DET_ID, PI) -> group table of `time_histogram`: group g counts, for each of its
    items (detectors, PI low, PI high), those detectors' events with PI in [low, high]; -1 is
    no group. Groups must not overlap; at most 127 (int8 keeps the lookups in cache)."""
    if len(groups) > 127:
        raise ValueError(f"{len(groups)} groups; at most 127")
    table = np.full((256, n_channels), -1, dtype=np.int8)
    for index, items in enumerate(groups):
        for detectors, low, high in items:
            table[np.asarray(list(detectors), dtype=np.intp)[:, None], np.arange(int(low), int(high) + 1)] = index
    return table


def time_histogram(calibrated_path: str | Path, event_path: str | Path, time_column: str,
                   selection: Selection, groups: np.ndarray, edges_start: float, bin_width: float,
                   n_bins: int) -> np.ndarray:
    """Counts of selected events per group of `groups` (a `channel_groups` table) in `n_bins`
    uniform bins starting at `edges_start`: shape (groups, n_bins). One pass over the events
    whatever the number of groups; detectors the screening did not allow count in none."""
    n_channels = groups.shape[1]
    # One more column for PI outside the channels (in no group); disallowed detectors in none.
    lookup = np.full((256, n_channels + 1), -1, dtype=np.int8)
    lookup[:, :n_channels] = groups
    allowed = np.zeros(256, bool)
    allowed[[d for d in selection.detectors if 0 <= d < 256]] = True
    lookup[~allowed] = -1
    lookup = lookup.ravel()
    n_groups = int(groups.max(initial=-1)) + 1
    reject = np.uint32(selection.reject)
    width = n_bins + 1                                     # per group, the last bin collects what falls outside
    total = np.zeros(max(n_groups, 1) * width, dtype=np.int64)
    with open_calibrated(calibrated_path) as table, FitsTable(event_path, 1) as events:
        check_alignment(table, selection)
        if events.rows != selection.n_rows:
            raise ValueError(f"{Path(event_path).name} has {events.rows} rows, the screening saw {selection.n_rows}")
        for start, stop in _chunks(selection):
            word = table.read_records(WORD, start, stop)
            pi = word >> 16
            np.minimum(pi, n_channels, out=pi)
            cell = (word >> 8) & 0xFF
            cell *= n_channels + 1
            cell += pi
            group = lookup[cell]
            group[(word & reject) != 0] = -1
            keep = group >= 0
            time = events.read([time_column], start, stop)[time_column][keep]
            index = np.floor((time - edges_start) / bin_width).astype(np.intp)
            index[(index < 0) | (index > n_bins)] = n_bins
            if n_groups > 1:
                index += group[keep].astype(np.intp) * width
            total += np.bincount(index, minlength=total.size)
    return total.reshape(-1, width)[:n_groups, :n_bins]
