"""Level-1 file names, headers and the layouts of every HXMT 1L file xoda writes.

Names (reference §1.3): `HXMT_{ExpID}_{HE|ME|LE}-{Evt|HV|DTime|PM|TH|InsStat}_FFFFFF_V{n}_L1P.FITS`
and `HXMT_{ExpID}_{Att|Orbit|EHK}_FFFFFF_V{n}_L1P.FITS`, in the sub-directories HE/, ME/, LE/,
ACS/ (Att, Orbit) and AUX/ (EHK) of an exposure directory `{ExpID}-{YYYYMMDD}-NN-NN`.

Column layouts follow the reference §2-§3 (event files, HE-DTime, HE-PM, EHK column indices
0, 7-11, 19, 20, 22, 25, 26, Att extensions, Orbit); names the reference leaves open
(HV, TH and InsStat columns, the HE-DTime cycle counter, EHK columns 1-6, 12-18, 21, 23-24
other than the confirmed names) are xoda's and listed here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from astropy.io import fits

from .fitsio import ColumnSpec, write_table_file
from .timeconv import TIME_KEYWORDS, met_to_iso

FILE_KINDS = ("HE-Evt", "HE-HV", "HE-DTime", "HE-PM", "HE-TH", "HE-InsStat",
              "ME-Evt", "ME-TH", "ME-InsStat", "LE-Evt", "LE-TH", "LE-InsStat",
              "Att", "Orbit", "EHK")
SUBDIR = {"HE": "HE", "ME": "ME", "LE": "LE", "Att": "ACS", "Orbit": "ACS", "EHK": "AUX"}
FILE_PATTERN = re.compile(
    r"^HXMT_(?P<id>P\d{10}(?:\d{2})?)_(?P<kind>(?:HE|ME|LE)-(?:Evt|HV|DTime|PM|TH|InsStat)|Att|Orbit|EHK)"
    r"_FFFFFF_V(?P<version>\d+)_L1P\.FITS$", re.IGNORECASE)
EXPOSURE_DIR_PATTERN = re.compile(r"^(?P<exp_id>P\d{12})-(?P<date>\d{8})-(?P<a>\d{2})-(?P<b>\d{2})$")

CREATOR = "xoda-hxmt-sim"
# Sidecars of simulated archives: proposal metadata (real 1L trees carry none) and the truth.
PROPOSAL_FILE, PROPOSAL_FORMAT = "proposal.json", "xoda-hxmt-proposal/1"
TRUTH_DIR, TRUTH_FILE = "SIM", "truth.json"


def file_name(exp_id: str, kind: str, version: int = 1) -> str:
    return f"HXMT_{exp_id}_{kind}_FFFFFF_V{version}_L1P.FITS"


def file_path(exposure_dir: Path, exp_id: str, kind: str, version: int = 1) -> Path:
    return exposure_dir / SUBDIR[kind.split("-")[0]] / file_name(exp_id, kind, version)


@dataclass(frozen=True)
class ExposureHeader:
    """Facts every file of a simulated exposure carries in its headers."""

    proposal_id: str
    obs_id: str
    exp_id: str
    exposure_dir: str
    target: str
    ra_obj: float
    dec_obj: float
    roll: float
    tstart: float
    tstop: float
    seed: int

    def cards(self, instrument: str) -> list[tuple[str, Any, str]]:
        return [
            ("TELESCOP", "HXMT", "mission"),
            ("INSTRUME", instrument, "instrument"),
            ("OBS_MODE", "Pointing", "observation mode"),
            ("OBJECT", self.target, "target name"),
            ("OBS_ID", self.obs_id, "observation ID"),
            ("EXP_ID", self.exposure_dir, "exposure"),
            ("PROPOSAL", self.proposal_id, "proposal number"),
            ("RA_OBJ", self.ra_obj, "[deg] target right ascension (J2000)"),
            ("DEC_OBJ", self.dec_obj, "[deg] target declination (J2000)"),
            ("RA_PNT", self.ra_obj, "[deg] nominal pointing right ascension"),
            ("DEC_PNT", self.dec_obj, "[deg] nominal pointing declination"),
            ("PA_PNT", self.roll, "[deg] position angle of the payload X axis"),
            ("EQUINOX", 2000.0, "equinox of the coordinates"),
            ("RADESYS", "ICRS", "coordinate frame"),
            ("DATE-OBS", met_to_iso(self.tstart, precision=0), "start (UTC)"),
            ("DATE-END", met_to_iso(self.tstop, precision=0), "end (UTC)"),
            ("TSTART", self.tstart, "[s] start (MET)"),
            ("TSTOP", self.tstop, "[s] stop (MET)"),
            *TIME_KEYWORDS,
            ("CREATOR", CREATOR, "software that wrote this file"),
            ("SIMULATE", True, "simulated data (xoda sky-model simulator)"),
            ("SIMSEED", self.seed, "simulation seed"),
        ]

    def primary(self, instrument: str) -> fits.Header:
        header = fits.Header()
        for key, value, comment in self.cards(instrument):
            header[key] = (value, comment)
        return header


def _instrument_of(kind: str) -> str:
    return kind.split("-")[0] if "-" in kind else "HXMT"


# --- event files --------------------------------------------------------------------------
EVENT_COLUMNS: Mapping[str, tuple[ColumnSpec, ...]] = {
    "HE": (ColumnSpec("Time", "1D", "s"), ColumnSpec("Det_ID", "1B"), ColumnSpec("Channel", "1B"),
           ColumnSpec("Pulse_Width", "1B"), ColumnSpec("ACD", "18X"), ColumnSpec("Event_Type", "1B"),
           ColumnSpec("Flag", "1B")),
    "ME": (ColumnSpec("Time", "1D", "s"), ColumnSpec("FPGA_ID", "1B"), ColumnSpec("ASIC_ID", "1B"),
           ColumnSpec("Channel", "1I"), ColumnSpec("Event_Type", "1B")),
    "LE": (ColumnSpec("TIME", "1D", "s"), ColumnSpec("Det_ID", "1B"), ColumnSpec("Channel", "1I"),
           ColumnSpec("Event_Type", "1B"), ColumnSpec("DetBox", "1B")),
}
EVENT_EXTNAME = "Events"
# (column, TLMIN, TLMAX) of the event files.
EVENT_LIMITS = {"HE": (("Det_ID", 0, 17), ("Channel", 0, 255), ("Event_Type", 0, 1)),
                "ME": (("FPGA_ID", 0, 8), ("ASIC_ID", 0, 5), ("Channel", 0, 1023)),
                "LE": (("Det_ID", 0, 95), ("Channel", 0, 4095), ("Event_Type", 0, 1), ("DetBox", 0, 2))}


def event_header_cards(payload: str, exposure: ExposureHeader) -> list[tuple[str, Any, str]]:
    names = [c.name for c in EVENT_COLUMNS[payload]]
    limits = []
    for column, low, high in EVENT_LIMITS[payload]:
        index = names.index(column) + 1
        limits += [(f"TLMIN{index}", low, f"minimum legal value of {column}"),
                   (f"TLMAX{index}", high, f"maximum legal value of {column}")]
    return exposure.cards(payload) + limits + [
        ("HDUCLASS", "OGIP", "format conforms to OGIP standard"),
        ("HDUCLAS1", "EVENTS", "event list"),
        ("TIMEDEL", {"HE": 2e-6, "ME": 255e-6, "LE": 1.0 / 1024}[payload], "[s] time resolution")]


# --- housekeeping, attitude, orbit, EHK ------------------------------------------------------
def _table(path: Path, extname: str, columns: Sequence[tuple[str, str, str | None]],
           data: Mapping[str, np.ndarray], exposure: ExposureHeader, kind: str,
           extra_hdus: Sequence[fits.BinTableHDU] = ()) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    instrument = _instrument_of(kind)
    return write_table_file(path, [ColumnSpec(*c) for c in columns], data, extname,
                            exposure.cards(instrument), exposure.primary(instrument), extra_hdus)


def _extension(extname: str, columns: Sequence[tuple[str, str, str | None]], data: Mapping[str, np.ndarray],
               exposure: ExposureHeader, instrument: str) -> fits.BinTableHDU:
    hdu = fits.BinTableHDU.from_columns([fits.Column(name=n, format=f, unit=u, array=data[n]) for n, f, u in columns])
    hdu.header["EXTNAME"] = (extname, "name of this binary table extension")
    for key, value, comment in exposure.cards(instrument):
        hdu.header[key] = (value, comment)
    return hdu


def write_he_housekeeping(exposure_dir: Path, exposure: ExposureHeader, time: np.ndarray, version: int, *,
                          dead_time_us: np.ndarray, hv: np.ndarray, pm: np.ndarray, temperature: np.ndarray,
                          status: np.ndarray) -> None:
    exp_id = exposure.exp_id
    dets = range(18)
    _table(file_path(exposure_dir, exp_id, "HE-DTime", version), "DTime",
           [("Time", "1D", "s"), ("Cycle_Box", "3J", "us")] + [(f"DeadTime_PHODet_{d}", "1D", "us") for d in dets],
           {"Time": time, "Cycle_Box": np.full((time.size, 3), 1_000_000, dtype=np.int32),
            **{f"DeadTime_PHODet_{d}": dead_time_us[:, d] for d in dets}}, exposure, "HE-DTime")
    _table(file_path(exposure_dir, exp_id, "HE-HV", version), "HV",
           [("Time", "1D", "s")] + [(f"HV_PHODet_{d}", "1E", "V") for d in dets],
           {"Time": time, **{f"HV_PHODet_{d}": hv[:, d] for d in dets}}, exposure, "HE-HV")
    _table(file_path(exposure_dir, exp_id, "HE-PM", version), "PM",
           [("Time", "1D", "s")] + [(f"Cnt_PM_{i}", "1J", "count") for i in range(3)],
           {"Time": time, **{f"Cnt_PM_{i}": pm[:, i] for i in range(3)}}, exposure, "HE-PM")
    _table(file_path(exposure_dir, exp_id, "HE-TH", version), "TH",
           [("Time", "1D", "s")] + [(f"Temp_PHODet_{d}", "1E", "degC") for d in dets],
           {"Time": time, **{f"Temp_PHODet_{d}": temperature[:, d] for d in dets}}, exposure, "HE-TH")
    write_status(exposure_dir, exposure, "HE", time, status, version)


def write_status(exposure_dir: Path, exposure: ExposureHeader, payload: str, time: np.ndarray,
                 status: np.ndarray, version: int) -> None:
    """InsStat: per box 1 = observing, 0 = high voltage off (SAA)."""
    _table(file_path(exposure_dir, exposure.exp_id, f"{payload}-InsStat", version), "InsStat",
           [("Time", "1D", "s")] + [(f"Status_Box_{b}", "1B", None) for b in range(3)],
           {"Time": time, **{f"Status_Box_{b}": status for b in range(3)}}, exposure, f"{payload}-InsStat")


def write_me_temperature(exposure_dir: Path, exposure: ExposureHeader, time: np.ndarray,
                         fpga_temperature: np.ndarray, version: int) -> None:
    """ME-TH: HDU 1 box temperatures, HDU 2 FPGA temperatures (`Temp_fpga{i}_0`, read by mebkgmap
    and mepical from HDU 2, column 1)."""
    boxes = fpga_temperature.reshape(time.size, 3, 3).mean(axis=2)
    fpga_columns = [("Time", "1D", "s")] + [(f"Temp_fpga{i}_0", "1E", "degC") for i in range(9)]
    fpga_hdu = _extension("TH_FPGA", fpga_columns,
                          {"Time": time, **{f"Temp_fpga{i}_0": fpga_temperature[:, i] for i in range(9)}},
                          exposure, "ME")
    _table(file_path(exposure_dir, exposure.exp_id, "ME-TH", version), "TH_Box",
           [("Time", "1D", "s")] + [(f"Temp_Box_{b}", "1E", "degC") for b in range(3)],
           {"Time": time, **{f"Temp_Box_{b}": boxes[:, b] for b in range(3)}}, exposure, "ME-TH", [fpga_hdu])


def write_le_temperature(exposure_dir: Path, exposure: ExposureHeader, time: np.ndarray,
                         box_temperature: np.ndarray, version: int) -> None:
    _table(file_path(exposure_dir, exposure.exp_id, "LE-TH", version), "TH",
           [("Time", "1D", "s")] + [(f"Temp_CCD_Box_{b}", "1E", "degC") for b in range(3)],
           {"Time": time, **{f"Temp_CCD_Box_{b}": box_temperature[:, b] for b in range(3)}}, exposure, "LE-TH")


EHK_UNITS = {"TIME": "s", "SAT_X": "km", "SAT_Y": "km", "SAT_Z": "km", "SAT_VX": "km/s", "SAT_VY": "km/s",
             "SAT_VZ": "km/s", "SAT_ALT": "km", "SAT_LON": "deg", "SAT_LAT": "deg", "ELV": "deg",
             "DYE_ELV": "deg", "NTE_ELV": "deg", "FOC_RA": "deg", "FOC_DEC": "deg", "FOC_ROLL": "deg",
             "SUNSHINE": None, "MAG_LAT": "deg", "L_SHELL": None, "ANG_DIST": "deg", "COR": "GV", "COR2": "GV",
             "SAA_FLAG": None, "T_SAA": "s", "TN_SAA": "s", "SUN_ANG": "deg", "MOON_ANG": "deg"}
EHK_COLUMNS = tuple(EHK_UNITS)     # file order: TIME=0, SAT_ALT=7, ... SUN_ANG=25, MOON_ANG=26


def write_ehk(exposure_dir: Path, exposure: ExposureHeader, columns: Mapping[str, np.ndarray], version: int) -> None:
    specs = [(name, "1I" if name in ("SAA_FLAG", "SUNSHINE") else "1D", EHK_UNITS[name]) for name in EHK_COLUMNS]
    _table(file_path(exposure_dir, exposure.exp_id, "EHK", version), "EHK", specs,
           {name: columns[name] for name in EHK_COLUMNS}, exposure, "EHK")


def attitude_matrices(ra: np.ndarray, dec: np.ndarray, roll: float) -> np.ndarray:
    """Rows of each matrix: body X (payload X axis at position angle `roll`), Y, Z (pointing)."""
    a, d, r = np.radians(ra), np.radians(dec), np.radians(roll)
    z = np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)
    north = np.stack([-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)], axis=-1)
    east = np.stack([-np.sin(a), np.cos(a), np.zeros_like(a)], axis=-1)
    x = np.cos(r) * north + np.sin(r) * east
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-2)


def quaternions(matrices: np.ndarray) -> np.ndarray:
    """(q1, q2, q3, q4) with q4 the scalar part >= 0, of direction-cosine matrices."""
    m = matrices
    q4 = 0.5 * np.sqrt(np.maximum(1.0 + m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2], 1e-12))
    q1 = (m[:, 1, 2] - m[:, 2, 1]) / (4 * q4)
    q2 = (m[:, 2, 0] - m[:, 0, 2]) / (4 * q4)
    q3 = (m[:, 0, 1] - m[:, 1, 0]) / (4 * q4)
    return np.stack([q1, q2, q3, q4], axis=-1)


def write_attitude(exposure_dir: Path, exposure: ExposureHeader, time: np.ndarray, ra: np.ndarray,
                   dec: np.ndarray, roll: float, version: int) -> None:
    """Att: ATT_Pointing (Time, Ra, Dec, Delta_Ra, Delta_Dec, Delta), ATT_Euler (ZYZ: phi = RA,
    theta = 90 - Dec, psi), ATT_Quater (Q1..Q3, scalar part implied >= 0), ATT_Omega (deg/s)."""
    from .orbit import angle_between, unit_vector

    delta = angle_between(unit_vector(ra, dec), unit_vector(exposure.ra_obj, exposure.dec_obj)[None, :])
    d_ra = ((ra - exposure.ra_obj + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec))
    matrices = attitude_matrices(ra, dec, roll)
    phi = np.degrees(np.arctan2(matrices[:, 2, 1], matrices[:, 2, 0])) % 360.0
    theta = np.degrees(np.arccos(np.clip(matrices[:, 2, 2], -1, 1)))
    psi = np.degrees(np.arctan2(matrices[:, 1, 2], -matrices[:, 0, 2])) % 360.0
    quat = quaternions(matrices)
    step = np.gradient(time) if time.size > 1 else np.ones(1)
    if time.size > 1:
        ahead = np.concatenate([matrices[1:], matrices[-1:]])
        behind = np.concatenate([matrices[:1], matrices[:-1]])
        dm = np.einsum("nij,nkj->nik", ahead, behind)
        span = np.concatenate([[1.0], np.full(time.size - 2, 2.0), [1.0]]) * step
        omega = np.degrees(np.stack([dm[:, 1, 2] - dm[:, 2, 1], dm[:, 2, 0] - dm[:, 0, 2],
                                     dm[:, 0, 1] - dm[:, 1, 0]], axis=-1) / (2 * span[:, None]))
    else:
        omega = np.zeros((1, 3))
    euler_hdu = _extension("ATT_Euler", [("Time", "1D", "s"), ("Euler_Phi", "1D", "deg"),
                                         ("Euler_Theta", "1D", "deg"), ("Euler_Psi", "1D", "deg")],
                           {"Time": time, "Euler_Phi": phi, "Euler_Theta": theta, "Euler_Psi": psi}, exposure, "HXMT")
    quat_hdu = _extension("ATT_Quater", [("Time", "1D", "s"), ("Q1", "1D", None), ("Q2", "1D", None), ("Q3", "1D", None)],
                          {"Time": time, "Q1": quat[:, 0], "Q2": quat[:, 1], "Q3": quat[:, 2]}, exposure, "HXMT")
    omega_hdu = _extension("ATT_Omega", [("Time", "1D", "s"), ("Omega_X", "1D", "deg/s"),
                                         ("Omega_Y", "1D", "deg/s"), ("Omega_Z", "1D", "deg/s")],
                           {"Time": time, "Omega_X": omega[:, 0], "Omega_Y": omega[:, 1], "Omega_Z": omega[:, 2]},
                           exposure, "HXMT")
    _table(file_path(exposure_dir, exposure.exp_id, "Att", version), "ATT_Pointing",
           [("Time", "1D", "s"), ("Ra", "1D", "deg"), ("Dec", "1D", "deg"), ("Delta_Ra", "1D", "deg"),
            ("Delta_Dec", "1D", "deg"), ("Delta", "1D", "deg")],
           {"Time": time, "Ra": ra, "Dec": dec, "Delta_Ra": d_ra, "Delta_Dec": dec - exposure.dec_obj,
            "Delta": delta}, exposure, "Att", [euler_hdu, quat_hdu, omega_hdu])


def write_orbit(exposure_dir: Path, exposure: ExposureHeader, time: np.ndarray, fixed_km: np.ndarray,
                velocity_km_s: np.ndarray, lon: np.ndarray, lat: np.ndarray, alt_km: np.ndarray, version: int) -> None:
    """Orbit: Earth-fixed position (m) and velocity (m/s), geographic lon/lat (deg), altitude (m)."""
    _table(file_path(exposure_dir, exposure.exp_id, "Orbit", version), "Orbit",
           [("Time", "1D", "s"), ("X", "1D", "m"), ("Y", "1D", "m"), ("Z", "1D", "m"), ("Vx", "1D", "m/s"),
            ("Vy", "1D", "m/s"), ("Vz", "1D", "m/s"), ("Lon", "1D", "deg"), ("Lat", "1D", "deg"), ("Alt", "1D", "m")],
           {"Time": time, "X": fixed_km[:, 0] * 1e3, "Y": fixed_km[:, 1] * 1e3, "Z": fixed_km[:, 2] * 1e3,
            "Vx": velocity_km_s[:, 0] * 1e3, "Vy": velocity_km_s[:, 1] * 1e3, "Vz": velocity_km_s[:, 2] * 1e3,
            "Lon": lon, "Lat": lat, "Alt": alt_km * 1e3}, exposure, "Orbit")


def gti_hdus(intervals: Sequence[Sequence[float]], payload: str,
             cards: Iterable[tuple[str, Any, str]] = ()) -> list[fits.BinTableHDU]:
    """Good-time intervals in the layout of HXMTDAS *gtigen output (the real legtigen file in
    ../shared/data/real/hxmt_le/): `GTI0` (START, STOP in MET s) and `GTIDesc` (one row per
    detector: ID, GTIID, TYPE 3 = good, EXPO = total good time, DEADEXPO, PIXEL, PIXELSTATUS)."""
    from .instrument import payload as payload_spec

    starts = np.array([a for a, _ in intervals], dtype=float)
    stops = np.array([b for _, b in intervals], dtype=float)
    gti = fits.BinTableHDU.from_columns([fits.Column("START", "1D", unit="s", array=starts),
                                         fits.Column("STOP", "1D", unit="s", array=stops)])
    gti.header["EXTNAME"] = ("GTI0", "name of this binary table extension")
    n = payload_spec(payload).n_detectors
    desc = fits.BinTableHDU.from_columns([
        fits.Column("ID", "1I", unit="id", array=np.arange(n, dtype=np.int16)),
        fits.Column("GTIID", "1B", unit="id for GTI", array=np.zeros(n, dtype=np.uint8)),
        fits.Column("TYPE", "1B", unit="bad/warm/cold/good", array=np.full(n, 3, dtype=np.uint8)),
        fits.Column("EXPO", "1E", unit="corrected expo", array=np.full(n, float(np.sum(stops - starts)))),
        fits.Column("DEADEXPO", "1E", unit="dead expo", array=np.zeros(n)),
        fits.Column("PIXEL", "1B", unit="pixel num", array=np.ones(n, dtype=np.uint8)),
        fits.Column("PIXELSTATUS", "1X", unit="pixel status", array=np.ones((n, 1), dtype=bool))])
    desc.header["EXTNAME"] = ("GTIDesc", "name of this binary table extension")
    for hdu in (gti, desc):
        for key, value, comment in cards:
            hdu.header[key] = (value, comment)
    gti.header["HDUCLASS"] = ("OGIP", "format conforms to OGIP standard")
    gti.header["HDUCLAS1"] = ("GTI", "good-time intervals")
    return [gti, desc]


def parse_file_name(name: str) -> dict[str, Any] | None:
    """'HXMT_P010129900101_HE-Evt_FFFFFF_V2_L1P.FITS' -> {'id', 'kind', 'version'} or None."""
    match = FILE_PATTERN.match(name)
    if not match:
        return None
    kind = match.group("kind")
    canonical = next((k for k in FILE_KINDS if k.lower() == kind.lower()), kind)
    return {"id": match.group("id"), "kind": canonical, "version": int(match.group("version"))}
