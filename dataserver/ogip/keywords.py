"""Mission and time keywords shared by every OGIP product, and finding extensions.

`ObsKeywords` carries what identifies an observation in a header (TELESCOP, INSTRUME,
OBJECT, pointing, TSTART/TSTOP and the time system). Its defaults are HXMT's
(`MJDREFI=55927`, `MJDREFF=7.6601852e-4`, TT seconds since 2012-01-01);
`ObsKeywords.integral()` gives INTEGRAL's (`MJDREF=51544`, days).

`find_hdu` finds an extension by its OGIP classification (HDUCLAS1/HDUCLAS2) first and by
name second, because real files use other names than the OGIP defaults (OSA writes
`ISGR-EVTS-SPE`, `ISGR-RMF.-RSP`, ...) and some real files carry no HDUCLAS at all (the
HXMTDAS GTI file).
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Sequence

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.time import Time

log = logging.getLogger(__name__)

HXMT_MJDREFI = 55927
HXMT_MJDREFF = 7.6601852e-4
INTEGRAL_MJDREF = 51544.0
CREATOR = "xoda"

# Header keywords the readers interpret themselves; everything else is kept in `keywords`.
STRUCTURAL = frozenset({"XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT",
                        "TFIELDS", "EXTNAME", "CHECKSUM", "DATASUM", "THEAP", "COMMENT",
                        "HISTORY", ""})
_COLUMN_PREFIXES = ("TTYPE", "TFORM", "TUNIT", "TLMIN", "TLMAX", "TNULL", "TSCAL", "TZERO",
                    "TDIM", "TDISP")


class OgipFormatError(ValueError):
    """A file is not the OGIP product it was expected to be; names what is missing."""


@dataclass(frozen=True)
class ObsKeywords:
    """Observation keywords written to (and read from) every product header."""

    telescop: str = "HXMT"
    instrume: str = ""
    detnam: str | None = None
    filter: str | None = None
    object: str | None = None
    ra_obj: float | None = None
    dec_obj: float | None = None
    obs_mode: str | None = None
    date_obs: str | None = None
    date_end: str | None = None
    tstart: float | None = None
    tstop: float | None = None
    mjdrefi: int | None = HXMT_MJDREFI
    mjdreff: float | None = HXMT_MJDREFF
    mjdref: float | None = None
    timesys: str = "TT"
    timeunit: str = "s"
    timeref: str = "LOCAL"
    extra: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    @classmethod
    def hxmt(cls, instrument: str, **values: Any) -> "ObsKeywords":
        """HXMT keywords (TELESCOP=HXMT, MET seconds since 2012-01-01 in TT)."""
        return cls(telescop="HXMT", instrume=instrument, **values)

    @classmethod
    def integral(cls, instrument: str = "IBIS", detnam: str | None = "ISGRI",
                 **values: Any) -> "ObsKeywords":
        """INTEGRAL keywords (IJD: days since MJD 51544.0 in TT)."""
        values = {"mjdrefi": None, "mjdreff": None, "mjdref": INTEGRAL_MJDREF,
                  "timeunit": "d", **values}
        return cls(telescop="INTEGRAL", instrume=instrument, detnam=detnam, **values)

    def with_times(self, tstart: float | None, tstop: float | None) -> "ObsKeywords":
        return replace(self, tstart=tstart, tstop=tstop)

    @property
    def mjd_reference(self) -> float | None:
        """The reference MJD as one number (MJDREFI + MJDREFF, or MJDREF)."""
        if self.mjdrefi is not None:
            return self.mjdrefi + (self.mjdreff or 0.0)
        return self.mjdref

    def to_utc_iso(self, met: float | None) -> str | None:
        """Mission time -> ISO UTC, or None when the time system is unknown to astropy."""
        scale = self.timesys.strip().lower()
        if met is None or self.mjd_reference is None or scale not in Time.SCALES:
            return None
        if self.mjdrefi is not None:
            reference = Time(self.mjdrefi, self.mjdreff or 0.0, format="mjd", scale=scale)
        else:
            reference = Time(self.mjdref, format="mjd", scale=scale)
        unit = {"s": u.s, "d": u.day}.get(self.timeunit.strip().lower())
        if unit is None:
            return None
        return (reference + met * unit).utc.isot

    def cards(self, *, times: bool = True) -> list[tuple[str, Any, str]]:
        """Header cards (key, value, comment); unset values are left out."""
        cards: list[tuple[str, Any, str]] = [
            ("TELESCOP", self.telescop, "mission name"),
            ("INSTRUME", self.instrume, "instrument name"),
        ]
        optional = [("DETNAM", self.detnam, "detector name"),
                    ("FILTER", self.filter, "filter"),
                    ("OBS_MODE", self.obs_mode, "observation mode"),
                    ("OBJECT", self.object, "target name"),
                    ("RA_OBJ", self.ra_obj, "[deg] target right ascension (J2000)"),
                    ("DEC_OBJ", self.dec_obj, "[deg] target declination (J2000)")]
        cards += [c for c in optional if c[1] is not None]
        if times:
            cards += self.time_cards()
        cards += [(key, value, "") for key, value in self.extra]
        return cards

    def time_cards(self) -> list[tuple[str, Any, str]]:
        date_obs = self.date_obs or self.to_utc_iso(self.tstart)
        date_end = self.date_end or self.to_utc_iso(self.tstop)
        cards = [("DATE-OBS", date_obs, "start of the observation (UTC)"),
                 ("DATE-END", date_end, "end of the observation (UTC)"),
                 ("TSTART", self.tstart, f"[{self.timeunit}] start time"),
                 ("TSTOP", self.tstop, f"[{self.timeunit}] stop time")]
        if self.mjdrefi is not None:
            cards += [("MJDREFI", int(self.mjdrefi), "integer part of the reference MJD"),
                      ("MJDREFF", float(self.mjdreff or 0.0),
                       "fractional part of the reference MJD")]
        elif self.mjdref is not None:
            cards.append(("MJDREF", float(self.mjdref), "reference MJD"))
        cards += [("TIMESYS", self.timesys, "time system"),
                  ("TIMEUNIT", self.timeunit, "unit of time keywords and columns"),
                  ("TIMEREF", self.timeref, "reference frame of the times")]
        return [c for c in cards if c[1] is not None]

    @classmethod
    def from_header(cls, header: fits.Header) -> "ObsKeywords":
        def get(key, kind=None):
            value = header.get(key)
            if value is None or (isinstance(value, str) and value.strip() == ""):
                return None
            return kind(value) if kind else value
        mjdrefi = get("MJDREFI", int)
        return cls(telescop=str(header.get("TELESCOP", "")).strip(),
                   instrume=str(header.get("INSTRUME", "")).strip(),
                   detnam=get("DETNAM"), filter=get("FILTER"), object=get("OBJECT"),
                   ra_obj=get("RA_OBJ", float), dec_obj=get("DEC_OBJ", float),
                   obs_mode=get("OBS_MODE"), date_obs=get("DATE-OBS"), date_end=get("DATE-END"),
                   tstart=get("TSTART", float), tstop=get("TSTOP", float),
                   mjdrefi=mjdrefi, mjdreff=get("MJDREFF", float) if mjdrefi is not None else None,
                   mjdref=get("MJDREF", float) if mjdrefi is None else None,
                   timesys=str(header.get("TIMESYS", "TT")).strip(),
                   timeunit=str(header.get("TIMEUNIT", "s")).strip(),
                   timeref=str(header.get("TIMEREF", "LOCAL")).strip())


_OBS_KEYS = frozenset({"TELESCOP", "INSTRUME", "DETNAM", "FILTER", "OBJECT", "RA_OBJ",
                       "DEC_OBJ", "OBS_MODE", "DATE-OBS", "DATE-END", "TSTART", "TSTOP",
                       "MJDREFI", "MJDREFF", "MJDREF", "TIMESYS", "TIMEUNIT", "TIMEREF"})


def other_keywords(header: fits.Header, interpreted: frozenset[str]) -> dict[str, Any]:
    """Header keywords not interpreted by a reader (kept so nothing is silently lost)."""
    result = {}
    for key, value in header.items():
        if key in STRUCTURAL or key in _OBS_KEYS or key in interpreted:
            continue
        if key.startswith(_COLUMN_PREFIXES) or key.startswith("HDU"):
            continue
        result[key] = value
    return result


def set_cards(header: fits.Header, cards: Sequence[tuple[str, Any, str]]) -> None:
    for key, value, comment in cards:
        if isinstance(value, np.generic):
            value = value.item()
        header[key] = (value, comment) if comment else value


@contextlib.contextmanager
def opened(source: Any) -> Iterator[fits.HDUList]:
    """An HDUList from a path, an HDUList, or anything with `.open()` (a store Product)."""
    if isinstance(source, fits.HDUList):
        yield source
    elif isinstance(source, (str, os.PathLike)):
        with fits.open(source, memmap=False) as hdul:
            yield hdul
    elif hasattr(source, "open"):
        with source.open() as hdul:
            yield hdul
    else:
        raise TypeError(f"cannot read a FITS product from {type(source).__name__}")


def _norm(value: Any) -> str:
    return str(value).strip().upper() if value is not None else ""


def find_hdu(hdul: fits.HDUList, hduclas1: str, hduclas2: Sequence[str] | None = None,
             names: Sequence[str] = (), what: str | None = None) -> fits.BinTableHDU:
    """The first table extension classed `hduclas1` (and one of `hduclas2`), else the first
    named one of `names`; OgipFormatError listing the extensions otherwise."""
    tables = [h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)]
    wanted2 = {_norm(c) for c in hduclas2} if hduclas2 else None
    for hdu in tables:
        if _norm(hdu.header.get("HDUCLAS1")) != hduclas1.upper():
            continue
        if wanted2 is None or _norm(hdu.header.get("HDUCLAS2")) in wanted2:
            return hdu
    by_name = {_norm(h.name): h for h in reversed(tables)}
    for name in names:
        if _norm(name) in by_name:
            return by_name[_norm(name)]
    have = ", ".join(f"{h.name} (HDUCLAS1={h.header.get('HDUCLAS1')}, "
                     f"HDUCLAS2={h.header.get('HDUCLAS2')})" for h in tables) or "none"
    classes = hduclas1 + (f"/{'|'.join(hduclas2)}" if hduclas2 else "")
    raise OgipFormatError(f"no {what or classes} extension (HDUCLAS {classes} or named "
                          f"{', '.join(names)}); table extensions: {have}")


def column(hdu: fits.BinTableHDU, *names: str, required: bool = True) -> np.ndarray | None:
    """A column by any of `names`, case-insensitively."""
    available = {c.name.upper(): c.name for c in hdu.columns}
    for name in names:
        if name.upper() in available:
            values = hdu.data[available[name.upper()]]
            if isinstance(values, np.ndarray) and values.dtype != object:
                # A native-endian copy: the file (maybe memory-mapped) closes after reading.
                return np.array(values, dtype=values.dtype.newbyteorder("="))
            return values
    if required:
        raise OgipFormatError(f"extension {hdu.name}: no column {' or '.join(names)} "
                              f"(columns: {', '.join(c.name for c in hdu.columns)})")
    return None


def column_limit(hdu: fits.BinTableHDU, name: str, which: str = "TLMIN") -> int | None:
    """TLMINn/TLMAXn of the column called `name`, if the header has it."""
    for index, col in enumerate(hdu.columns, start=1):
        if col.name.upper() == name.upper():
            value = hdu.header.get(f"{which}{index}")
            return int(value) if value is not None else None
    return None


def keyword_or_column(hdu: fits.BinTableHDU, name: str, default: float) -> float | np.ndarray:
    """A scale factor given as a keyword (scalar) or as a column (per channel)."""
    values = column(hdu, name, required=False)
    if values is not None:
        values = np.asarray(values, dtype=float)
        return float(values[0]) if np.all(values == values[0]) else values
    value = hdu.header.get(name)
    return float(value) if value is not None else default


def file_name(value: Any) -> str:
    """A BACKFILE/RESPFILE/ANCRFILE value, 'NONE' when empty."""
    text = str(value).strip() if value is not None else ""
    return text if text and text.upper() != "NONE" else "NONE"
