"""Light curves and good-time intervals in the HXMTDAS layout.

Light curve: extension ``RATE`` with columns ``Time`` (bin centre), ``RATE``, ``Error``,
``FRACEXP`` and HDUCLAS1=LIGHTCURVE, TIMEDEL, MJDREFI/MJDREFF, TIMEZERO, as lelcgen/lebkgmap
write them. GTI: extension ``GTI0`` (START, STOP) plus ``GTIDesc`` (one row per detector), as
the *gtigen tasks write them; we add HDUCLAS1=GTI and the time keywords, which the real files
lack, so that standard tools recognise the extension.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
from astropy.io import fits

from .keywords import (CREATOR, ObsKeywords, column, find_hdu, opened, other_keywords,
                       set_cards)

log = logging.getLogger(__name__)

LIGHTCURVE_NAMES = ("RATE", "LIGHTCURVE", "ISGR-SRC.-LCR", "JMX1-SRC.-LCR", "JMX2-SRC.-LCR")
GTI_NAMES = ("GTI0", "GTI", "STDGTI", "GTI_ALL")
HXMTDAS_LC_COLUMNS = ("Time", "RATE", "Error", "FRACEXP")
_LC_INTERPRETED = frozenset({"TIMEDEL", "TIMEZERO", "TIMEPIXR", "CHANTYPE", "CREATOR", "PHAVERSN"})


@dataclass
class LightCurve:
    """Binned rates: `time` is the bin centre in mission time (TIMEUNIT of `obs`)."""

    time: np.ndarray
    rate: np.ndarray
    error: np.ndarray
    timedel: float
    fracexp: np.ndarray | None = None
    timezero: float = 0.0
    kind: str = "TOTAL"                      # HDUCLAS2: TOTAL, NET or BKG
    chantype: str = "PI"
    obs: ObsKeywords = field(default_factory=ObsKeywords)
    keywords: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.time = np.asarray(self.time, float)
        self.rate = np.asarray(self.rate, float)
        self.error = np.asarray(self.error, float)
        if self.fracexp is None:
            self.fracexp = np.ones(self.time.size)
        self.fracexp = np.asarray(self.fracexp, float)
        for name in ("rate", "error", "fracexp"):
            if getattr(self, name).shape != self.time.shape:
                raise ValueError(f"light curve {name} must have one value per time bin")
        if not self.timedel > 0:
            raise ValueError(f"light curve TIMEDEL must be > 0, got {self.timedel}")


@dataclass
class Gti:
    """Good-time intervals [START, STOP) in mission time, and the optional per-detector
    description table of HXMTDAS (detector ids)."""

    start: np.ndarray
    stop: np.ndarray
    obs: ObsKeywords = field(default_factory=ObsKeywords)
    detectors: np.ndarray | None = None
    keywords: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start = np.atleast_1d(np.asarray(self.start, float))
        self.stop = np.atleast_1d(np.asarray(self.stop, float))
        if self.start.shape != self.stop.shape or np.any(self.stop < self.start):
            raise ValueError("GTI START and STOP must pair up with STOP >= START")

    @property
    def exposure(self) -> float:
        return float(np.sum(self.stop - self.start))


def lightcurve_hdulist(lc: LightCurve, *, extname: str = "RATE",
                       columns: Sequence[str] = HXMTDAS_LC_COLUMNS, gti: Gti | None = None,
                       gti_extname: str = "GTI", creator: str = CREATOR) -> fits.HDUList:
    """Light curve file in the HXMTDAS layout (column names configurable), optionally with a
    GTI extension for timing tools that want one."""
    time_name, rate_name, error_name, fracexp_name = columns
    unit = lc.obs.timeunit
    hdu = fits.BinTableHDU.from_columns([
        fits.Column(name=time_name, format="D", unit=unit, array=lc.time),
        fits.Column(name=rate_name, format="D", unit="counts/s", array=lc.rate),
        fits.Column(name=error_name, format="D", unit="counts/s", array=lc.error),
        fits.Column(name=fracexp_name, format="D", array=lc.fracexp)], name=extname)
    obs = lc.obs
    if obs.tstart is None and lc.time.size:
        half = lc.timedel / 2
        obs = obs.with_times(float(lc.time[0] - half), float(lc.time[-1] + half))
    set_cards(hdu.header, [
        ("PHAVERSN", "1992a", "obsolete version keyword, as HXMTDAS writes it"),
        ("HDUCLASS", "OGIP", "format conforms to OGIP standard"),
        ("HDUCLAS1", "LIGHTCURVE", "light curve dataset (OGIP/93-003)"),
        ("HDUCLAS2", lc.kind.upper(), "TOTAL, NET or BKG light curve"),
        ("HDUCLAS3", "RATE", "data stored as rates"),
        ("HDUVERS", "1.1.0", "version of the format"),
        ("CHANTYPE", lc.chantype, "channel type (PHA or PI)"),
        ("CREATOR", creator, "software that made this file"),
        *obs.cards(),
        ("TIMEZERO", float(lc.timezero), f"[{unit}] zero-point of the times"),
        ("TIMEDEL", float(lc.timedel), f"[{unit}] bin size"),
        ("TIMEPIXR", 0.5, "times are bin centres"),
    ])
    set_cards(hdu.header, [(k, v, "") for k, v in lc.keywords.items() if k not in hdu.header])
    hdus = [fits.PrimaryHDU(), hdu]
    if gti is not None:
        hdus.append(_gti_hdu(gti, gti_extname))
    return fits.HDUList(hdus)


def _gti_hdu(gti: Gti, extname: str) -> fits.BinTableHDU:
    unit = gti.obs.timeunit
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name="START", format="1D", unit=unit, array=gti.start),
         fits.Column(name="STOP", format="1D", unit=unit, array=gti.stop)], name=extname)
    obs = gti.obs
    if obs.tstart is None and gti.start.size:
        obs = obs.with_times(float(gti.start.min()), float(gti.stop.max()))
    set_cards(hdu.header, [
        ("HDUCLASS", "OGIP", "format conforms to OGIP standard"),
        ("HDUCLAS1", "GTI", "good-time intervals"),
        ("HDUCLAS2", "STANDARD", ""),
        ("CREATOR", CREATOR, "software that made this file"),
        *obs.cards(),
        ("ONTIME", gti.exposure, f"[{unit}] sum of the good-time intervals"),
    ])
    set_cards(hdu.header, [(k, v, "") for k, v in gti.keywords.items() if k not in hdu.header])
    return hdu


def gti_hdulist(gti: Gti, *, extname: str = "GTI0", desc_extname: str = "GTIDesc") -> fits.HDUList:
    """GTI file in the HXMTDAS layout: GTI0 (START, STOP) and, when detectors are given,
    GTIDesc with one row per detector (ID, GTIID, TYPE=3 good, EXPO, DEADEXPO, PIXEL,
    PIXELSTATUS) in the real files' column formats. EXPO is the total good time (legtigen
    leaves it 0)."""
    hdus = [fits.PrimaryHDU(), _gti_hdu(gti, extname)]
    if gti.detectors is not None:
        ids = np.asarray(gti.detectors, np.int16)
        n = ids.size
        desc = fits.BinTableHDU.from_columns([
            fits.Column(name="ID", format="1I", unit="id", array=ids),
            fits.Column(name="GTIID", format="1B", unit="id for GTI", array=np.zeros(n, np.uint8)),
            fits.Column(name="TYPE", format="1B", unit="bad/warm/cold/good",
                        array=np.full(n, 3, np.uint8)),
            fits.Column(name="EXPO", format="1E", unit="corrected expo",
                        array=np.full(n, gti.exposure, np.float32)),
            fits.Column(name="DEADEXPO", format="1E", unit="dead expo",
                        array=np.zeros(n, np.float32)),
            fits.Column(name="PIXEL", format="1B", unit="pixel num", array=np.ones(n, np.uint8)),
            fits.Column(name="PIXELSTATUS", format="1X", unit="pixel status",
                        array=np.ones((n, 1), bool))])
        # Set directly: astropy would upper-case the name, HXMTDAS writes it mixed-case.
        desc.header["EXTNAME"] = desc_extname
        hdus.append(desc)
    return fits.HDUList(hdus)


def read_lightcurve(source: Any) -> LightCurve:
    """The light curve of `source`, by HDUCLAS1=LIGHTCURVE or by name (RATE, OSA's
    ISGR-SRC.-LCR, JMX1-SRC.-LCR); columns TIME/Time, RATE, ERROR/Error, FRACEXP."""
    with opened(source) as hdul:
        hdu = find_hdu(hdul, "LIGHTCURVE", names=LIGHTCURVE_NAMES, what="light curve")
        header = hdu.header
        time = np.asarray(column(hdu, "TIME"), float)
        timedel = header.get("TIMEDEL")
        if timedel is None:
            timedel = float(np.median(np.diff(time))) if time.size > 1 else 1.0
        fracexp = column(hdu, "FRACEXP", required=False)
        return LightCurve(time=time, rate=np.asarray(column(hdu, "RATE"), float),
                          error=np.asarray(column(hdu, "ERROR", "RATE_ERR"), float),
                          timedel=float(timedel),
                          fracexp=None if fracexp is None else np.asarray(fracexp, float),
                          timezero=float(header.get("TIMEZERO", 0.0) or 0.0),
                          kind=str(header.get("HDUCLAS2", "TOTAL")).strip().upper(),
                          chantype=str(header.get("CHANTYPE", "PI")).strip(),
                          obs=ObsKeywords.from_header(header),
                          keywords=other_keywords(header, _LC_INTERPRETED))


def read_gti(source: Any) -> Gti:
    """The good-time intervals of `source`, by HDUCLAS1=GTI or by name (GTI0, GTI, STDGTI)."""
    with opened(source) as hdul:
        hdu = find_hdu(hdul, "GTI", names=GTI_NAMES, what="GTI")
        detectors = None
        for other in hdul[1:]:
            if other.name.upper() == "GTIDESC":
                detectors = np.asarray(column(other, "ID"), np.int64)
        return Gti(start=np.asarray(column(hdu, "START"), float),
                   stop=np.asarray(column(hdu, "STOP"), float),
                   obs=ObsKeywords.from_header(hdu.header), detectors=detectors,
                   keywords=other_keywords(hdu.header, frozenset({"ONTIME", "CREATOR"})))


def net_lightcurve(total: LightCurve, background: LightCurve) -> LightCurve:
    """Background-subtracted light curve on the same bins (errors added in quadrature)."""
    if total.time.shape != background.time.shape or not np.allclose(total.time, background.time):
        raise ValueError("the background light curve must have the same time bins as the total")
    return replace(total, rate=total.rate - background.rate,
                   error=np.hypot(total.error, background.error),
                   fracexp=np.minimum(total.fracexp, background.fracexp), kind="NET",
                   keywords=dict(total.keywords))


def concatenate_lightcurves(curves: Sequence[LightCurve]) -> LightCurve:
    """Light curves of several exposures, one after the other in time."""
    curves = sorted(curves, key=lambda c: c.time[0] if c.time.size else np.inf)
    if not curves:
        raise ValueError("no light curves to concatenate")
    first = curves[0]
    for curve in curves[1:]:
        if (not np.isclose(curve.timedel, first.timedel)
                or curve.obs.mjd_reference != first.obs.mjd_reference):
            raise ValueError("light curves to concatenate must share TIMEDEL and the time "
                             "reference")
    time = np.concatenate([c.time for c in curves])
    if np.any(np.diff(time) <= 0):
        raise ValueError("light curves to concatenate overlap in time")
    starts = [c.obs.tstart for c in curves if c.obs.tstart is not None]
    stops = [c.obs.tstop for c in curves if c.obs.tstop is not None]
    obs = replace(first.obs, tstart=min(starts) if starts else None,
                  tstop=max(stops) if stops else None, date_end=curves[-1].obs.date_end)
    return replace(first, time=time, rate=np.concatenate([c.rate for c in curves]),
                   error=np.concatenate([c.error for c in curves]),
                   fracexp=np.concatenate([c.fracexp for c in curves]), obs=obs,
                   keywords=dict(first.keywords))

