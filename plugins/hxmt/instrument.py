"""Insight-HXMT payload facts: detectors, FOV groups, PI <-> energy, gains, dead time.

Everything here comes from the developer reference (../shared/reference/hxmt.md §4, §6, §8, §9)
unless marked "(model)": those are choices of xoda's simulator that the pipeline must share
(raw-channel gain tables, dead time per event, calibration sources), so they live here, in one
place, and both sides import them.

Detector numbering: HE `Det_ID` 0-17; ME detector = `FPGA_ID * 6 + ASIC_ID` (0-53, one ASIC of
32 Si-PIN pixels); LE `Det_ID` 0-95 (one CCD236 each).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

PAYLOADS = ("HE", "ME", "LE")


def parse_id_list(text: str) -> tuple[int, ...]:
    """'0-5,7,12-23' -> (0, 1, ..., 5, 7, 12, ..., 23); order kept, duplicates dropped."""
    out: list[int] = []
    for part in str(text).replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)|(\d+)", part)
        if not match:
            raise ValueError(f"bad detector list item {part!r} (expected N or N-M)")
        if match.group(3) is not None:
            values = [int(match.group(3))]
        else:
            first, last = int(match.group(1)), int(match.group(2))
            if last < first:
                raise ValueError(f"bad detector range {part!r}: end before start")
            values = list(range(first, last + 1))
        out.extend(v for v in values if v not in out)
    return tuple(out)


def format_id_list(ids: Iterable[int]) -> str:
    """(0, 1, 2, 5, 7, 8) -> '0-2,5,7-8' (HXMTDAS `userdetid` style)."""
    values = sorted(set(int(i) for i in ids))
    parts: list[str] = []
    start = prev = None
    for value in values:
        if start is None:
            start = prev = value
        elif value == prev + 1:
            prev = value
        else:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = value
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ",".join(parts)


@dataclass(frozen=True)
class PIScale:
    """The exact PI <-> energy relation of a payload: E_min(PI) = e_min + span * PI / nchan."""

    e_min: float      # keV, lower edge of PI 0
    span: float       # keV covered by all channels
    nchan: int

    @property
    def width(self) -> float:
        return self.span / self.nchan

    def energy_lo(self, pi: Sequence[int] | int) -> np.ndarray:
        return self.e_min + self.span * np.asarray(pi, dtype=float) / self.nchan

    def energy_hi(self, pi: Sequence[int] | int) -> np.ndarray:
        return self.energy_lo(np.asarray(pi) + 1)

    def edges(self) -> np.ndarray:
        """nchan + 1 channel edges in keV (the EBOUNDS of every spectrum)."""
        return self.energy_lo(np.arange(self.nchan + 1))

    def pi(self, energy_kev: Sequence[float] | float) -> np.ndarray:
        """PI = int(nchan * (E - e_min) / span), as HXMTDAS; values outside 0..nchan-1 are
        returned as they are (the caller drops them)."""
        energy = np.asarray(energy_kev, dtype=float)
        return np.floor(self.nchan * (energy - self.e_min) / self.span).astype(np.int64)

    def band_to_pi(self, e1: float, e2: float) -> tuple[int, int]:
        """Inclusive PI range of an energy band, the way HXMTDAS users write it
        (LE 1-10 keV -> 106-1169, ME 10-35 -> 119-546, HE 27-250 -> 8-162)."""
        return int(self.pi(e1)), int(self.pi(e2))


@dataclass(frozen=True)
class Gain:
    """Raw ADC channel <-> deposited energy of one payload (model; the CALDB gain analogue).

    E = offset_d(T) + gain_d(T) * (channel + u), u uniform in [0, 1) when reconstructing
    (pical dithers within the channel, as hepical's `seed` does). Per-detector gains vary by a
    few per cent and, for ME and LE, drift linearly with the temperature in the TH file:
    gain_d(T) = gain_d * (1 + temp_coeff * (T - temp_ref)).
    """

    nominal_gain: float          # keV per raw channel
    nominal_offset: float        # keV at raw channel 0
    max_channel: int             # highest raw channel (ADC range 0..max_channel)
    gain_spread: float           # relative per-detector spread of the gain
    offset_spread: float         # keV per-detector spread of the offset
    temp_coeff: float = 0.0      # relative gain change per degC
    temp_ref: float = 0.0        # degC at which the table holds

    def table(self, n_detectors: int) -> tuple[np.ndarray, np.ndarray]:
        """(gain, offset) per detector: deterministic, smooth in the detector number."""
        det = np.arange(n_detectors, dtype=float)
        gain = self.nominal_gain * (1.0 + self.gain_spread * np.sin(1.7 * det + 0.3))
        offset = self.nominal_offset + self.offset_spread * np.cos(2.3 * det + 1.1)
        return gain, offset

    def coefficients(self, n_detectors: int, det_ids: np.ndarray,
                     temperature: np.ndarray | float | None) -> tuple[np.ndarray, np.ndarray]:
        gain_table, offset_table = self.table(n_detectors)
        gain = gain_table[det_ids]
        if self.temp_coeff and temperature is not None:
            gain = gain * (1.0 + self.temp_coeff * (np.asarray(temperature, dtype=float) - self.temp_ref))
        return gain, offset_table[det_ids]


@dataclass(frozen=True)
class Payload:
    """Facts of one HXMT payload."""

    name: str
    n_detectors: int
    unit_name: str                               # what one detector is
    pi: PIScale
    gain: Gain
    time_resolution: float                       # s; light-curve bins below it are refused
    geometric_area: float                        # cm2 per detector
    fov: Mapping[str, tuple[float, float] | None]    # FOV type -> (narrow, long) FWHM in deg; None = closed
    groups: Mapping[str, tuple[int, ...]]        # named detector groups (FOV groups and more)
    detector_fov: tuple[str, ...]                # FOV type of each detector
    detector_box: tuple[int, ...]                # box (0..2) of each detector
    detector_orientation: tuple[float, ...]      # deg: narrow FOV axis w.r.t. the payload X axis
    standard_selection: str                      # HXMTDAS default `userdetid`
    science_band: tuple[float, float]            # keV, calibrated band
    screening_expression: str                    # default GTI expression (reference §5.4)
    deadtime_per_event: float = 0.0              # s (model), 0 = none
    calibration_lines: Mapping[int, tuple[tuple[float, float], ...]] = field(default_factory=dict)

    def detectors(self, group: str) -> tuple[int, ...]:
        try:
            return self.groups[group]
        except KeyError:
            raise KeyError(f"{self.name} has no detector group {group!r} "
                           f"(groups: {', '.join(self.groups)})") from None

    def parse_detectors(self, text: str | Iterable[int]) -> tuple[int, ...]:
        """A detector selection: an ID list ('0-15,17'), a group name ('small'), or IDs."""
        if isinstance(text, str) and text.strip() in self.groups:
            return self.groups[text.strip()]
        ids = parse_id_list(text) if isinstance(text, str) else tuple(int(i) for i in text)
        bad = [i for i in ids if not 0 <= i < self.n_detectors]
        if bad:
            raise ValueError(f"{self.name} detector IDs run from 0 to {self.n_detectors - 1}; "
                             f"got {format_id_list(bad)}")
        if not ids:
            raise ValueError(f"empty {self.name} detector selection")
        return ids

    def fov_of(self, det_ids: Iterable[int]) -> list[tuple[float, float] | None]:
        return [self.fov[self.detector_fov[d]] for d in det_ids]

    def channel_to_energy(self, channel: np.ndarray, det_ids: np.ndarray,
                          temperature: np.ndarray | float | None = None,
                          dither: np.ndarray | None = None) -> np.ndarray:
        """Raw channel -> energy (keV); `dither` (uniform [0,1) per event) spreads events over
        the channel as pical does; without it the channel's lower edge is returned."""
        gain, offset = self.gain.coefficients(self.n_detectors, np.asarray(det_ids), temperature)
        position = np.asarray(channel, dtype=float) + (0.0 if dither is None else dither)
        return offset + gain * position

    def energy_to_channel(self, energy: np.ndarray, det_ids: np.ndarray,
                          temperature: np.ndarray | float | None = None) -> np.ndarray:
        """Deposited energy -> raw channel (int64; outside 0..max_channel means not recorded)."""
        gain, offset = self.gain.coefficients(self.n_detectors, np.asarray(det_ids), temperature)
        return np.floor((np.asarray(energy, dtype=float) - offset) / gain).astype(np.int64)


def _assign(n: int, groups: Mapping[str, Iterable[int]], default: str) -> tuple[str, ...]:
    kinds = [default] * n
    for kind, ids in groups.items():
        for det in ids:
            kinds[det] = kind
    return tuple(kinds)


# --- HE: 18 NaI(Tl)/CsI(Na) phoswich detectors in boxes A (0-5), B (6-11), C (12-17) ---------
_HE_SMALL = (0, 1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 17)
_HE_LARGE = (2, 9)
_HE_BLIND = (16,)
# FOV orientation groups; the blind detector 16 has none (its orientation is irrelevant, 0).
_HE_ORIENTATION = {0.0: (1, 3, 8, 11, 12), -60.0: (0, 4, 7, 9, 14, 17), 60.0: (2, 5, 6, 10, 13, 15)}

HE = Payload(
    name="HE", n_detectors=18, unit_name="phoswich detector",
    pi=PIScale(15.0, 370.0, 256),
    # 8-bit ADC covering the PI range; 15-385 keV (model).
    gain=Gain(nominal_gain=370.0 / 256, nominal_offset=15.0, max_channel=255,
              gain_spread=0.02, offset_spread=0.3),
    time_resolution=2e-6, geometric_area=286.0,
    fov={"small": (1.1, 5.7), "large": (5.7, 5.7), "blind": None},
    groups={"small": _HE_SMALL, "large": _HE_LARGE, "blind": _HE_BLIND,
            "all": tuple(range(18)), "standard": parse_id_list("0-15,17"),
            "box_A": tuple(range(0, 6)), "box_B": tuple(range(6, 12)), "box_C": tuple(range(12, 18)),
            "orientation_0": _HE_ORIENTATION[0.0], "orientation_m60": _HE_ORIENTATION[-60.0],
            "orientation_p60": _HE_ORIENTATION[60.0]},
    detector_fov=_assign(18, {"small": _HE_SMALL, "large": _HE_LARGE, "blind": _HE_BLIND}, "small"),
    detector_box=tuple(d // 6 for d in range(18)),
    detector_orientation=tuple(next((angle for angle, ids in _HE_ORIENTATION.items() if d in ids), 0.0)
                               for d in range(18)),
    standard_selection="0-15,17", science_band=(20.0, 250.0),
    screening_expression="ELV>10&&COR>8&&SAA_FLAG==0&&T_SAA>300&&TN_SAA>300&&ANG_DIST<=0.04",
    deadtime_per_event=10e-6,
    # Am-241 tagged calibration events (Event_Type 1) in every detector (model: 59.54 keV).
    calibration_lines={d: ((59.54, 1.0),) for d in range(18)},
)

# --- ME: 54 ASICs (x 32 Si-PIN pixels) read by 9 FPGAs; boxes of 18 ASICs ---------------------
_ME_SMALL = parse_id_list("0-5,7,12-23,25,30-41,43,48-53")
_ME_LARGE = (8, 9, 26, 27, 44, 45)
_ME_BLIND = (10, 28, 46)
_ME_CALIBRATION = (6, 11, 24, 29, 42, 47)
# Am-241 decay lines seen by the calibration ASICs (Np L lines and the 26.3 keV gamma).
_AM241_ME_LINES = ((13.9, 0.37), (17.75, 0.47), (20.8, 0.10), (26.34, 0.06))

ME = Payload(
    name="ME", n_detectors=54, unit_name="ASIC (32 Si-PIN pixels)",
    pi=PIScale(3.0, 60.0, 1024),
    # Pre-PI ADC channel 0..1023 covering ~2.5-64 keV, gain drifting with the FPGA temperature.
    gain=Gain(nominal_gain=0.0600, nominal_offset=2.5, max_channel=1023,
              gain_spread=0.03, offset_spread=0.2, temp_coeff=-0.002, temp_ref=-10.0),
    time_resolution=255e-6, geometric_area=952.0 / 54,
    fov={"small": (1.0, 4.0), "large": (4.0, 4.0), "blind": None},
    groups={"small": _ME_SMALL, "large": _ME_LARGE, "blind": _ME_BLIND,
            "calibration": _ME_CALIBRATION, "all": tuple(range(54)),
            "standard": parse_id_list("0-7,11-25,29-43,47-53"),
            "box_0": tuple(range(0, 18)), "box_1": tuple(range(18, 36)), "box_2": tuple(range(36, 54))},
    # The calibration ASICs look at the sky through small-FOV collimators (model).
    detector_fov=_assign(54, {"small": _ME_SMALL + _ME_CALIBRATION, "large": _ME_LARGE,
                              "blind": _ME_BLIND}, "small"),
    detector_box=tuple(d // 18 for d in range(54)),
    # ME and LE boxes are taken to be mounted like HE's, 60 deg apart (model; unverified).
    detector_orientation=tuple((0.0, 60.0, -60.0)[d // 18] for d in range(54)),
    standard_selection="0-7,11-25,29-43,47-53", science_band=(5.0, 30.0),
    screening_expression="ELV>10&&COR>8&&SAA_FLAG==0&&T_SAA>300&&TN_SAA>300&&ANG_DIST<=0.04",
    deadtime_per_event=250e-6,
    calibration_lines={d: _AM241_ME_LINES for d in _ME_CALIBRATION},
)

# --- LE: 96 CCD236 in 3 boxes of 32 ------------------------------------------------------------
_LE_SMALL = parse_id_list("0,2-4,6-10,12,14,20,22-26,28,30,32,34-36,38-42,44,46,52,54-58,60-62,"
                          "64,66-68,70-74,76,78,84,86,88-90,92-94")
_LE_LARGE = (1, 5, 11, 15, 27, 31, 33, 37, 43, 47, 59, 63, 65, 69, 75, 79, 91, 95)
_LE_BLIND = (13, 45, 77)
_LE_BLIND_CALIBRATION = (21, 53, 85)
# The remaining 14 CCDs (the LE paper's closed and all-sky-monitor types; unverified) are
# simulated as closed.
_LE_OTHER = tuple(sorted(set(range(96)) - set(_LE_SMALL) - set(_LE_LARGE) - set(_LE_BLIND)
                         - set(_LE_BLIND_CALIBRATION)))
# Fe-55 source: Mn K-alpha and K-beta.
_FE55_LINES = ((5.895, 0.88), (6.490, 0.12))

LE = Payload(
    name="LE", n_detectors=96, unit_name="CCD236",
    pi=PIScale(0.1, 13.0, 1536),
    # 12-bit ADC: E = gain * (channel - pedestal); offset = -gain * pedestal (~200 channels).
    gain=Gain(nominal_gain=0.00335, nominal_offset=-0.00335 * 200.0, max_channel=4095,
              gain_spread=0.02, offset_spread=0.02, temp_coeff=-0.001, temp_ref=-50.0),
    time_resolution=1.0 / 1024, geometric_area=384.0 / 96,
    fov={"small": (1.6, 6.0), "large": (4.0, 6.0), "blind": None},
    groups={"small": _LE_SMALL, "large": _LE_LARGE, "blind": _LE_BLIND,
            "blind_calibration": _LE_BLIND_CALIBRATION, "other": _LE_OTHER, "all": tuple(range(96)),
            "standard": _LE_SMALL,
            "box_0": tuple(range(0, 32)), "box_1": tuple(range(32, 64)), "box_2": tuple(range(64, 96))},
    detector_fov=_assign(96, {"small": _LE_SMALL, "large": _LE_LARGE,
                              "blind": _LE_BLIND + _LE_BLIND_CALIBRATION + _LE_OTHER}, "blind"),
    detector_box=tuple(d // 32 for d in range(96)),
    detector_orientation=tuple((0.0, 60.0, -60.0)[d // 32] for d in range(96)),
    standard_selection=format_id_list(_LE_SMALL), science_band=(1.0, 10.0),
    screening_expression="ELV>10&&DYE_ELV>30&&COR>8&&SAA_FLAG==0&&T_SAA>=300&&TN_SAA>=300&&ANG_DIST<=0.04",
    deadtime_per_event=0.0,
    calibration_lines={d: _FE55_LINES for d in _LE_BLIND_CALIBRATION},
)

PAYLOAD_SPECS: Mapping[str, Payload] = {"HE": HE, "ME": ME, "LE": LE}

# Other screening expressions in use (reference §5.4).
BURST_EXPRESSIONS = {"HE": "ELV>0&&SAA_FLAG==0&&ANG_DIST<=0.5",
                     "ME": "ELV>1&&SAA_FLAG==0&&ANG_DIST<=0.5",
                     "LE": "ELV>1&&SAA_FLAG==0&&ANG_DIST<=0.5"}
HE_PM_EXPRESSION = "Cnt_PM_0<50&&Cnt_PM_1<50&&Cnt_PM_2<50"

# HE event classification (model, consistent with hepical's defaults): NaI events have pulse
# widths 55-69 (inside hepical's 54-70 window), CsI events 80-120; Event_Type 1 tags Am-241
# calibration events, 0 is a normal event; ACD holds 18 anti-coincidence bits.
HE_NAI_PULSE_WIDTH = (54, 70)
HE_EVENT_NORMAL, HE_EVENT_CALIBRATION = 0, 1
# LE Event_Type: 0 X-ray event, 1 forced-trigger event (reference §2.3).
LE_EVENT_XRAY, LE_EVENT_FORCED = 0, 1
ME_EVENT_NORMAL = 0


def payload(name: str) -> Payload:
    try:
        return PAYLOAD_SPECS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown HXMT payload {name!r} (expected one of {', '.join(PAYLOADS)})") from None


def he_is_nai(pulse_width: np.ndarray) -> np.ndarray:
    low, high = HE_NAI_PULSE_WIDTH
    return (pulse_width >= low) & (pulse_width <= high)


def me_detector(fpga_id: np.ndarray, asic_id: np.ndarray) -> np.ndarray:
    """ME detector number = FPGA_ID * 6 + ASIC_ID (0-53)."""
    return np.asarray(fpga_id, dtype=np.int64) * 6 + np.asarray(asic_id, dtype=np.int64)
