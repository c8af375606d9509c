"""Calibrated event columns: what pical (and LE recon) add to a Level-1 event file.

HXMTDAS's pical writes a full copy of the event file with a PI column. xoda keeps only what
calibration adds, row by row aligned with the Level-1 event file (which stays in the archive,
memory-mapped): `PI` (int16), `DET_ID` (uint8: HE Det_ID, ME FPGA_ID * 6 + ASIC_ID, LE
Det_ID) and `FLAG` (uint8 bits saying why an event is not a good X-ray event). That is 4 bytes
per event instead of 16-24, so the binning steps read little and run at bincount speed.

Channel -> PI follows `instrument.Payload.channel_to_energy` (the gains the simulator uses;
the CALDB gain analogue), with a uniform dither inside the raw channel as hepical's `seed`
does, from a generator seeded by the exposure ID (the product is reproducible), and the exact
HXMTDAS PI relations. ME and LE gains follow the temperature of their FPGA / CCD box in the TH
file at the event's 1-s row.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .fitsio import ColumnSpec, FitsTable, StreamingTableWriter
from .gti import row_lookup
from .instrument import HE_EVENT_CALIBRATION, LE_EVENT_FORCED, Payload, me_detector, payload as payload_spec
from .timeconv import TIME_KEYWORDS

log = logging.getLogger(__name__)

EXTNAME = "CALEVT"
FLAG_BAD_PI = 1          # PI outside the payload's channels
FLAG_CSI = 2             # HE: pulse width outside the NaI window (CsI or unknown event)
FLAG_VETO = 4            # HE: anti-coincidence (ACD) bit set
FLAG_CALIBRATION = 8     # HE: tagged Am-241 calibration event (Event_Type 1)
FLAG_FORCED = 16         # LE: forced-trigger event (Event_Type 1), not an X-ray
FLAG_OFF = 32            # LE: recorded while the box status says it was not observing
FLAG_NAMES = {FLAG_BAD_PI: "bad_pi", FLAG_CSI: "csi", FLAG_VETO: "veto", FLAG_CALIBRATION: "calibration",
              FLAG_FORCED: "forced_trigger", FLAG_OFF: "instrument_off"}
CALIBRATED_COLUMNS = (ColumnSpec("PI", "1I"), ColumnSpec("DET_ID", "1B"), ColumnSpec("FLAG", "1B"))
TIME_COLUMN = {"HE": "Time", "ME": "Time", "LE": "TIME"}
CHUNK_ROWS = 1 << 20


class EventOrderError(ValueError):
    """The Level-1 event file is not time-ordered (the pipeline relies on it)."""


def dither_generator(exp_id: str, payload: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{exp_id}/{payload}/pical".encode()))


def pi_from_channel(spec: Payload, channel: np.ndarray, det: np.ndarray, dither: np.ndarray,
                    temperature: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(PI int16, bad mask): E = offset_d + gain_d(T) (channel + u); PI = floor(N (E - E0) / span),
    i.e. PI = floor(a_d (T) (channel + u) + b_d) with per-detector coefficients, in float32
    (exact to ~1e-4 of a channel, far below the dither). Detector numbers beyond the payload's
    get the last detector's coefficients (their events are flagged by the callers)."""
    scale = spec.pi.nchan / spec.pi.span
    gain, offset = spec.gain.table(spec.n_detectors)
    # Tables covering every uint8 detector number: indexing needs no clipping.
    pad = max(256 - spec.n_detectors, 0)
    slope_of = np.pad(gain * scale, (0, pad), mode="edge").astype(np.float32)
    intercept_of = np.pad((offset - spec.pi.e_min) * scale, (0, pad), mode="edge").astype(np.float32)
    det = np.asarray(det)
    if det.dtype != np.uint8:
        det = np.clip(det, 0, slope_of.size - 1)
    slope = slope_of[det]
    if temperature is not None and spec.gain.temp_coeff:
        slope *= (1.0 + spec.gain.temp_coeff * (np.asarray(temperature, dtype=np.float32) - spec.gain.temp_ref))
    value = np.asarray(channel).astype(np.float32)
    value += dither
    value *= slope
    value += intercept_of[det]
    np.floor(value, out=value)
    np.clip(value, -1, spec.pi.nchan, out=value)          # keeps the int16 conversion exact
    pi = value.astype(np.int16)
    bad = pi.view(np.uint16) >= spec.pi.nchan              # negative PIs wrap above nchan
    pi[bad] = 0
    return pi, bad


@dataclass
class PicalSummary:
    rows: int = 0
    flagged: dict[str, int] = field(default_factory=dict)

    def count(self, flags: np.ndarray) -> None:
        self.rows += flags.size
        for bit, name in FLAG_NAMES.items():
            hits = int(np.count_nonzero(flags & bit))
            if hits:
                self.flagged[name] = self.flagged.get(name, 0) + hits


def _check_order(time: np.ndarray, previous: float, start_row: int, path: Path) -> float:
    if time.size == 0:
        return previous
    steps = np.diff(time)
    if time[0] < previous or (steps.size and steps.min() < 0):
        where = start_row + (0 if time[0] < previous else int(np.argmin(steps)) + 1)
        raise EventOrderError(f"{path.name}: events are not in time order at row {where}; "
                              "the pipeline needs time-ordered Level-1 event files")
    return float(time[-1])


def _temperature_table(exposure, kind: str, hdu: int | str, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """(Time, temperatures (rows, units)) of the TH columns starting with `prefix`."""
    with exposure.table(kind, hdu) as table:
        names = sorted((c for c in table.columns if c.lower().startswith(prefix.lower())),
                       key=lambda c: int("".join(ch for ch in c[len(prefix):] if ch.isdigit()) or 0))
        data = table.read(["Time", *names])
    return data["Time"], np.column_stack([data[n] for n in names])


def _events(exposure, payload: str, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    with exposure.events(payload) as table:
        for start in range(0, table.rows, CHUNK_ROWS):
            yield start, table.read(columns, start, start + CHUNK_ROWS)


def calibrated_cards(exp_id: str, payload: str, stage: str, event_file: str) -> list[tuple[str, Any, str]]:
    return [("TELESCOP", "HXMT", "mission"), ("INSTRUME", payload, "payload"),
            ("EXP_ID", exp_id, "exposure"), ("STAGE", stage, "pipeline step that wrote the columns"),
            ("EVTFILE", event_file, "rows align with it"), *TIME_KEYWORDS,
            *[(f"FLAGBIT{bit.bit_length() - 1}", name, "FLAG bit meaning") for bit, name in FLAG_NAMES.items()]]


# The HE-Evt row (l1files.EVENT_COLUMNS["HE"]): Time (>f8) then eight single bytes: Det_ID,
# Channel, Pulse_Width, ACD (3 bytes), Event_Type, Flag.
HE_ROW = (("Time", ">f8"), ("Det_ID", "u1"), ("Channel", "u1"), ("Pulse_Width", "u1"), ("ACD", ("u1", (3,))),
          ("Event_Type", "u1"), ("Flag", "u1"))


def _he_chunks(table) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """HE event columns by chunk; for the standard row layout, sliced out of one copy of the
    rows' bytes instead of one strided copy per column out of the memory map."""
    if table.dtype != np.dtype(list(HE_ROW)):
        columns = ["Time", "Det_ID", "Channel", "Pulse_Width", "ACD", "Event_Type"]
        for start in range(0, table.rows, CHUNK_ROWS):
            chunk = table.read(columns, start, start + CHUNK_ROWS)
            acd = chunk["ACD"].reshape(chunk["Time"].size, -1)
            veto = acd[:, 0].copy()
            for byte in range(1, acd.shape[1]):
                veto |= acd[:, byte]
            chunk["veto"] = veto != 0
            yield start, chunk
        return
    for start in range(0, table.rows, CHUNK_ROWS):
        row = table.read_records("u1", start, start + CHUNK_ROWS)          # (rows, 16) bytes
        yield start, {"Time": row.view(">f8")[:, 0].astype(np.float64),
                      "Det_ID": row[:, 8].copy(), "Channel": row[:, 9].copy(), "Pulse_Width": row[:, 10].copy(),
                      "veto": (row[:, 11] | row[:, 12] | row[:, 13]) != 0, "Event_Type": row[:, 14].copy()}


def he_pical(exposure, output: Path, min_pulse_width: int, max_pulse_width: int) -> PicalSummary:
    """HE: Channel -> PI per detector, NaI pulse-width window, ACD veto and calibration tags."""
    spec = payload_spec("HE")
    rng = dither_generator(exposure.exp_id, "HE")
    summary, last = PicalSummary(), -np.inf
    cards = calibrated_cards(exposure.exp_id, "HE", "pical", exposure.file("HE-Evt").name)
    with StreamingTableWriter(output, CALIBRATED_COLUMNS, EXTNAME, cards) as writer, exposure.events("HE") as table:
        for start, chunk in _he_chunks(table):
            last = _check_order(chunk["Time"], last, start, exposure.file("HE-Evt"))
            det = chunk["Det_ID"]
            pi, bad = pi_from_channel(spec, chunk["Channel"], det, rng.random(det.size, dtype=np.float32), None)
            pulse = chunk["Pulse_Width"]
            # Comparisons on the uint8 columns, turned into flag bits: faster than lookups.
            flags = ((pulse < min_pulse_width) | (pulse > max_pulse_width)).view(np.uint8) * np.uint8(FLAG_CSI)
            flags |= (chunk["Event_Type"] == HE_EVENT_CALIBRATION).view(np.uint8) * np.uint8(FLAG_CALIBRATION)
            flags |= chunk["veto"].view(np.uint8) * np.uint8(FLAG_VETO)
            flags |= (bad | (det >= spec.n_detectors)).view(np.uint8) * np.uint8(FLAG_BAD_PI)
            writer.write({"PI": pi, "DET_ID": det, "FLAG": flags})
            summary.count(flags)
    return summary


# ME and LE gains follow the temperature of a unit of detectors: its (TH HDU, column prefix).
_TEMPERATURE_UNITS = {"ME": (2, "Temp_fpga"), "LE": (1, "Temp_CCD_Box_")}


def _temperature_pical(exposure, output: Path, payload: str, columns: Sequence[str],
                       locate: Callable[[dict[str, np.ndarray]], tuple[np.ndarray, np.ndarray, np.ndarray]],
                       row_of: Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, np.ndarray]],
                       column_specs: Sequence[ColumnSpec]) -> PicalSummary:
    """ME and LE: ADC channel -> PI with the gain at the temperature of the event's unit in the
    TH row of its second; PI outside the channels flagged. `locate(chunk)` gives, per event,
    the detector, its unit (ME: FPGA, LE: CCD box) and the detector whose gain applies;
    `row_of(pi, detector, flags)` the columns written."""
    spec = payload_spec(payload)
    rng = dither_generator(exposure.exp_id, payload)
    th_time, temperature = _temperature_table(exposure, f"{payload}-TH", *_TEMPERATURE_UNITS[payload])
    time_column, event_file = TIME_COLUMN[payload], exposure.file(f"{payload}-Evt")
    summary, last = PicalSummary(), -np.inf
    cards = calibrated_cards(exposure.exp_id, payload, "pical", event_file.name)
    with StreamingTableWriter(output, column_specs, EXTNAME, cards) as writer:
        for start, chunk in _events(exposure, payload, [time_column, *columns, "Channel"]):
            last = _check_order(chunk[time_column], last, start, event_file)
            det, unit, gain_det = locate(chunk)
            temp = temperature[row_lookup(chunk[time_column], th_time), np.clip(unit, 0, temperature.shape[1] - 1)]
            pi, bad = pi_from_channel(spec, chunk["Channel"], gain_det, rng.random(det.size, dtype=np.float32), temp)
            flags = np.where(bad | (det >= spec.n_detectors), FLAG_BAD_PI, 0).astype(np.uint8)
            writer.write(row_of(pi, det, flags))
            summary.count(flags)
    return summary


def me_pical(exposure, output: Path) -> PicalSummary:
    """ME: pre-PI ADC channel -> PI per ASIC, the gain following its FPGA's temperature."""
    def locate(chunk):
        fpga = chunk["FPGA_ID"].astype(np.int64)
        det = me_detector(fpga, chunk["ASIC_ID"])
        return det, fpga, det

    def row_of(pi, det, flags):
        return {"PI": pi, "DET_ID": np.clip(det, 0, 255).astype(np.uint8), "FLAG": flags}

    return _temperature_pical(exposure, output, "ME", ["FPGA_ID", "ASIC_ID"], locate, row_of, CALIBRATED_COLUMNS)


LE_PICAL_COLUMNS = (ColumnSpec("PI", "1I"), ColumnSpec("FLAG", "1B"))


def le_pical(exposure, output: Path) -> PicalSummary:
    """LE: 12-bit channel above the pedestal -> PI per CCD, the gain following its box's
    temperature (LE-TH); the detector is recon's column."""
    last_detector = payload_spec("LE").n_detectors - 1

    def locate(chunk):
        det = chunk["Det_ID"].astype(np.int64)
        return det, det // 32, np.clip(det, 0, last_detector)

    return _temperature_pical(exposure, output, "LE", ["Det_ID"], locate,
                              lambda pi, det, flags: {"PI": pi, "FLAG": flags}, LE_PICAL_COLUMNS)


FOV_CODES = {"small": 0, "large": 1, "blind": 2}


def le_recon(exposure, pical_path: Path, output: Path) -> PicalSummary:
    """LE event reconstruction: the detector of each event; forced-trigger events (Event_Type
    1) and events recorded while the box status says it was not observing are flagged. The FOV
    class is a property of the CCD: the product's FOV extension lists it per CCD (0 small,
    1 large, 2 blind or closed), so the events keep the 4-byte layout of every calibrated
    product. Split-event grading needs pixel patterns, which these Level-1 events (one CCD
    readout per event) do not carry: every event is a single-pixel event."""
    spec = payload_spec("LE")
    with exposure.table("LE-InsStat") as table:
        names = [c for c in table.columns if c.lower().startswith("status_box")]
        status = table.read(["Time", *names])
    box_on = np.column_stack([status[n] != 0 for n in names])
    summary = PicalSummary()
    cards = calibrated_cards(exposure.exp_id, "LE", "recon", exposure.file("LE-Evt").name)
    with FitsTable(pical_path, EXTNAME) as pical, \
            StreamingTableWriter(output, CALIBRATED_COLUMNS, EXTNAME, cards) as writer:
        for start, chunk in _events(exposure, "LE", ["TIME", "Det_ID", "Event_Type"]):
            calibrated = pical.read(["PI", "FLAG"], start, start + CHUNK_ROWS)
            if calibrated["PI"].size != chunk["TIME"].size:
                raise ValueError(f"pical product has {pical.rows} rows, the event file more")
            det = chunk["Det_ID"].astype(np.int64)
            box = np.clip(det // 32, 0, box_on.shape[1] - 1)
            on = box_on[row_lookup(chunk["TIME"], status["Time"]), box]
            flags = calibrated["FLAG"].astype(np.uint8)
            flags |= np.where(chunk["Event_Type"] == LE_EVENT_FORCED, FLAG_FORCED, 0).astype(np.uint8)
            flags |= np.where(on, 0, FLAG_OFF).astype(np.uint8)
            writer.write({"PI": calibrated["PI"], "DET_ID": np.clip(det, 0, 255).astype(np.uint8), "FLAG": flags})
            summary.count(flags)
        if summary.rows != pical.rows:
            raise ValueError(f"pical product has {pical.rows} rows, the event file {summary.rows}")
        writer.append_hdu(fov_table(spec))
    return summary


def fov_table(spec: Payload):
    """FOV class of each detector (0 small, 1 large, 2 blind or closed), as lerecon's FOV."""
    from astropy.io import fits

    codes = np.array([FOV_CODES[kind] for kind in spec.detector_fov], np.uint8)
    hdu = fits.BinTableHDU.from_columns([fits.Column("DET_ID", "1I", array=np.arange(spec.n_detectors)),
                                         fits.Column("FOV", "1B", array=codes)])
    hdu.header["EXTNAME"] = ("FOV", "0 small, 1 large, 2 blind or closed")
    return hdu


def open_calibrated(path: str | Path) -> FitsTable:
    """The calibrated columns of a pical/recon product, memory-mapped."""
    return FitsTable(path, EXTNAME)
