"""HXMT time: mission elapsed time (MET) <-> astropy Time, ISO and MJD.

HXMT MET counts seconds of Terrestrial Time (TT) since 2012-01-01T00:00:00 UTC, which is
2012-01-01T00:01:06.184 TT; FITS files say so with TIMESYS='TT', MJDREFI=55927 and
MJDREFF=7.6601852e-4 (= 66.184 s / 86400, i.e. TT-UTC at the epoch). All conversions go through
astropy.time so that leap seconds and the TT/UTC/TDB scales are handled by one library.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from astropy.time import Time, TimeDelta

MJDREFI = 55927
MJDREFF = 7.6601852e-4
TIMESYS = "TT"
TIMEUNIT = "s"
MET_EPOCH_UTC = "2012-01-01T00:00:00"

# Keywords every HXMT file carries for its time axis (reference §1.4, checked against the
# real HXMTDAS products in ../shared/data/real/hxmt_le/).
TIME_KEYWORDS: tuple[tuple[str, Any, str], ...] = (
    ("TIMESYS", TIMESYS, "time system"),
    ("MJDREFI", MJDREFI, "MJD reference day (integer part)"),
    ("MJDREFF", MJDREFF, "MJD reference day (fractional part)"),
    ("TIMEREF", "LOCAL", "reference frame of the times"),
    ("TASSIGN", "SATELLITE", "where times are assigned"),
    ("TIMEUNIT", TIMEUNIT, "unit of time keywords and columns"),
    ("TIERRELA", 1.0e-6, "relative clock error"),
    ("TIERABSO", 5.0e-5, "absolute clock error (s)"),
    ("CLOCKAPP", False, "clock correction applied"),
)


def reference_time(scale: str = "tt") -> Time:
    """MET zero as an astropy Time (in TT, or converted to another scale)."""
    ref = Time(MJDREFI, MJDREFF, format="mjd", scale="tt")
    return ref if scale == "tt" else getattr(ref, scale)


def met_to_time(met: Any) -> Time:
    """MET seconds (scalar or array) -> astropy Time in TT."""
    return reference_time() + TimeDelta(np.asarray(met, dtype=float), format="sec", scale="tt")


def time_to_met(time: Time) -> Any:
    """astropy Time (any scale) -> MET seconds (float or array)."""
    seconds = (time.tt - reference_time()).to_value("s")
    return float(seconds) if np.ndim(seconds) == 0 else np.asarray(seconds, dtype=float)


def met_to_iso(met: float, scale: str = "utc", precision: int = 3) -> str:
    """MET -> ISO-8601 string in `scale` (UTC by default), e.g. '2017-08-27T02:13:13.000'."""
    time = getattr(met_to_time(met), scale)
    time.precision = precision
    return time.isot


def met_to_mjd(met: Any, scale: str = "utc") -> Any:
    return getattr(met_to_time(met), scale).mjd


def mjd_to_met(mjd: float, scale: str = "utc") -> float:
    return time_to_met(Time(mjd, format="mjd", scale=scale))


def iso_to_met(text: str, scale: str = "utc") -> float:
    """ISO-8601 date or date-time (UTC by default) -> MET. Raises ValueError when unparsable."""
    try:
        # Microsecond rounding removes the ~1e-7 s left by MJDREFF's finite decimal form.
        return round(time_to_met(Time(text.strip().replace("Z", ""), scale=scale)), 6)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an ISO-8601 date/time: {text!r}") from exc


def to_met(value: Any) -> float:
    """A user time -> MET: a number is MET seconds, a string an ISO date (UTC), a datetime UTC."""
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo is None else value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return round(time_to_met(Time(stamp, scale="utc")), 6)
    if isinstance(value, dt.date):
        return iso_to_met(value.isoformat())
    if isinstance(value, Time):
        return time_to_met(value)
    if isinstance(value, str):
        return iso_to_met(value)
    raise ValueError(f"not a time: {value!r}")


def met_to_datetime(met: float) -> dt.datetime:
    """MET -> timezone-aware UTC datetime (for comparisons with `datetime.now`)."""
    return met_to_time(met).utc.to_datetime(timezone=dt.timezone.utc)


def met_date_string(met: float) -> str:
    """UTC calendar date of a MET as YYYYMMDD (the date part of an exposure directory)."""
    return met_to_iso(met, precision=0)[:10].replace("-", "")
