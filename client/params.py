"""A query's parameters checked against the product's JSON Schema before anything is sent,
and astropy values converted to what the schema declares.

The schema is the one the server validates with (`GET /api/v1/instruments/{i}/products/{p}`);
its annotations drive everything here, so nothing is specific to an instrument:

- `unit` (e.g. "keV", "deg", "s"): a `Quantity` is converted to it (`E1_keV=20*u.keV`,
  `RA=83.6*u.deg`, `time_bin=10*u.ms`; energies also from wavelengths or frequencies). A
  parameter `NAME_<unit>` may also be given as `NAME` (`E1=20*u.keV` is `E1_keV=20`).
- `x-time` with its format companion (`T_format`) and `x-time-formats`: an astropy `Time` or
  a `datetime` is written in the format the query uses (ISO 8601 UTC by default, MJD, or a
  mission time such as HXMT MET: seconds since MJDREF in TT); strings and numbers are checked
  to be readable in that format. Other parameters that take text get a time as ISO 8601 UTC.
- every other constraint (types, bounds, enums, patterns, array sizes) with jsonschema, plus
  the `x-greater-than` orderings (T2 > T1, E2_keV > E1_keV, defaults included).

Every problem is collected and reported at once in a `ValidationError` (`local=True`), with the
server's wording. Only the parameters given are sent: the server fills the defaults.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Mapping

import jsonschema
import numpy as np

from .errors import Problem, ValidationError

ISOT = "isot"
TIME_PRECISION_DIGITS = 3
_OFFSET_RE = re.compile(r"^(?P<base>.+?)(?:Z|(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2}))$")
_UNIT_SECONDS = {"s": 1.0, "d": 86400.0}


class _Bad(ValueError):
    def __init__(self, reason: str, path: tuple[Any, ...] = ()):
        super().__init__(reason)
        self.reason = reason
        self.path = path


def pointer(*parts: Any) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def types_of(fragment: Mapping[str, Any]) -> list[str]:
    kind = fragment.get("type")
    if kind is None:
        return []
    return [kind] if isinstance(kind, str) else list(kind)


def prepare(schema: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters to send for `values`, converted and checked against `schema`.

    Raises `ValidationError` (local) listing every problem.
    """
    properties: Mapping[str, Mapping[str, Any]] = schema.get("properties", {})
    problems: list[Problem] = []
    named: dict[str, Any] = {}
    for given_name, value in values.items():
        name = _declared_name(given_name, properties)
        if name is None:
            problems.append(Problem(given_name, pointer(given_name), "unknown parameter (this "
                                    "product accepts: " + ", ".join(properties) + ")"))
        elif name in named:
            problems.append(Problem(name, pointer(name), f"given twice (as {name} and as "
                                    f"{given_name})"))
        else:
            named[name] = value

    converted: dict[str, Any] = {}
    instants: dict[str, Any] = {}
    for name, value in named.items():
        fragment = properties[name]
        try:
            if "x-time" in fragment:
                fmt, spec = _time_format(schema, fragment, named)
                if fmt is None:          # the format itself is invalid: reported under its name
                    converted[name] = _plain(value)
                    continue
                converted[name] = _time_value(value, fmt, spec)
                instants[name] = instant(converted[name], fmt, spec)
            else:
                converted[name] = _convert(value, fragment)
        except _Bad as exc:
            problems.append(Problem(name, pointer(name, *exc.path), exc.reason))

    failed = {p.parameter for p in problems}
    problems.extend(_schema_problems(schema, converted, failed))
    failed = {p.parameter for p in problems}
    problems.extend(_ordering_problems(properties, converted, instants, failed))
    if problems:
        raise ValidationError.from_problems(problems, local=True)
    return converted


def _declared_name(name: str, properties: Mapping[str, Mapping[str, Any]]) -> str | None:
    """`name`, or the one declared `name_<unit>` whose unit is that suffix (E1 -> E1_keV)."""
    if name in properties:
        return name
    matches = [declared for declared, fragment in properties.items()
               if fragment.get("unit") and declared == f"{name}_{fragment['unit']}"]
    return matches[0] if len(matches) == 1 else None


# ---- values --------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """numpy scalars and arrays, tuples -> Python values; other values unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, tuple)):
        return [_plain(v) for v in list(value)]
    return value


def _convert(value: Any, fragment: Mapping[str, Any], path: tuple[Any, ...] = ()) -> Any:
    from astropy import units as u
    from astropy.time import Time

    if isinstance(value, Time) or isinstance(value, (dt.datetime, dt.date)):
        if "string" in types_of(fragment):
            # A criterion such as a search's `start` that reads ISO text.
            return _time_value(value, ISOT, {})
        raise _Bad("is a time, but this parameter is not a time", path)
    if isinstance(value, u.Quantity):
        number = _in_unit(value, fragment.get("unit") or fragment.get("items", {}).get("unit"), path)
        return number.tolist() if isinstance(number, np.ndarray) else float(number)
    if isinstance(value, (list, tuple, np.ndarray)):
        items = fragment.get("items", {}) if "array" in types_of(fragment) else fragment
        if fragment.get("unit") and not items.get("unit"):
            # The unit is declared on the array (e.g. gti_intervals: [[start, stop], ...] in
            # s): it holds for its items at every depth.
            items = {**items, "unit": fragment["unit"]}
        return [_convert(v, items, path + (i,)) for i, v in enumerate(list(value))]
    return _plain(value)


def _in_unit(quantity: Any, unit: str | None, path: tuple[Any, ...]) -> Any:
    from astropy import units as u

    if not unit:
        if quantity.unit.physical_type == "dimensionless":
            return quantity.to_value(u.dimensionless_unscaled)
        raise _Bad(f"takes a plain number, not a quantity in {quantity.unit}", path)
    target = u.Unit(unit, parse_strict="silent")
    try:
        return quantity.to_value(target, equivalencies=u.spectral())
    except u.UnitsError:
        raise _Bad(f"is in {quantity.unit}, which cannot be converted to {unit}", path) from None


# ---- times ---------------------------------------------------------------------------------
def _time_format(schema: Mapping[str, Any], fragment: Mapping[str, Any],
                 named: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """The format this query writes times in and its spec; None if the format is invalid."""
    properties = schema.get("properties", {})
    format_parameter = fragment["x-time"].get("format_parameter", "T_format")
    format_fragment = properties.get(format_parameter, {})
    formats = format_fragment.get("x-time-formats") or {ISOT: {}}
    fmt = named.get(format_parameter, format_fragment.get("default", ISOT))
    if not isinstance(fmt, str) or fmt not in formats:
        return None, {}
    return fmt, formats[fmt]


def _time_value(value: Any, fmt: str, spec: Mapping[str, Any]) -> Any:
    """A Time/datetime/Quantity written in `fmt`; strings and numbers as given."""
    from astropy import units as u
    from astropy.time import Time

    if isinstance(value, (dt.datetime, dt.date)):
        value = Time(value if isinstance(value, dt.datetime)
                     else dt.datetime(value.year, value.month, value.day), scale="utc")
    if isinstance(value, Time):
        if not value.isscalar:
            raise _Bad("must be one instant, not an array of times")
        if fmt == ISOT:
            utc = value.utc
            utc.precision = TIME_PRECISION_DIGITS
            return utc.isot
        scale, unit = spec.get("scale", "utc"), spec.get("unit", "d")
        mjdrefi, mjdreff = int(spec.get("mjdrefi", 0)), float(spec.get("mjdreff", 0.0))
        moment = getattr(value, scale)
        if unit == "d":
            return float((moment.jd1 - 2400000.5 - mjdrefi) + moment.jd2 - mjdreff)
        epoch = Time(mjdrefi, mjdreff, format="mjd", scale=scale)
        return float((moment - epoch).sec / _UNIT_SECONDS[unit])
    if isinstance(value, u.Quantity):
        if fmt == ISOT:
            raise _Bad(f"a quantity ({value}) is not an ISO 8601 time; give a Time, or set "
                       "the time format to a numeric one")
        return float(value.to_value(u.Unit(spec.get("unit", "d"))))
    return _plain(value)


def instant(value: Any, fmt: str, spec: Mapping[str, Any]) -> Any:
    """The astropy Time of `value` written in format `fmt` (the server's reading rules)."""
    from astropy.time import Time, TimeDelta

    if fmt == ISOT:
        if not isinstance(value, str):
            raise _Bad(f"{value!r} is not an ISO 8601 time (T_format is isot)")
        text = value.strip()
        offset_s = 0.0
        match = _OFFSET_RE.match(text) if ("T" in text or " " in text) else None
        if match:
            text = match.group("base")
            if match.group("sign"):
                sign = 1 if match.group("sign") == "+" else -1
                offset_s = sign * (int(match.group("hh")) * 3600 + int(match.group("mm")) * 60)
        try:
            moment = Time(text, scale="utc", format=None)
        except ValueError:
            moment = None
        if moment is None or moment.format not in ("isot", "iso", "fits"):
            raise _Bad(f"{value!r} is not an ISO 8601 time such as 2018-01-01T00:00:00")
        return moment - TimeDelta(offset_s, format="sec") if offset_s else moment
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Bad(f"{value!r} is not a number (T_format is {fmt})")
    try:
        number = float(value)
    except ValueError:
        raise _Bad(f"{value!r} is not a number (T_format is {fmt})") from None
    if not math.isfinite(number):
        raise _Bad(f"{value!r} is not a finite number")
    scale, unit = spec.get("scale", "utc"), spec.get("unit", "d")
    mjdrefi, mjdreff = int(spec.get("mjdrefi", 0)), float(spec.get("mjdreff", 0.0))
    if unit == "d":
        whole = math.floor(number)
        return Time(mjdrefi + whole, mjdreff + (number - whole), format="mjd", scale=scale)
    epoch = Time(mjdrefi, mjdreff, format="mjd", scale=scale)
    return epoch + TimeDelta(number * _UNIT_SECONDS[unit], format="sec", scale=scale)


# ---- schema checks -------------------------------------------------------------------------
def reason(error: jsonschema.ValidationError, fragment: Mapping[str, Any]) -> str:
    """A jsonschema error in the server's words (bounds with their unit)."""
    unit = fragment.get("unit")
    suffix = f" {unit}" if unit and error.validator in (
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") else ""
    words = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "greater than",
             "exclusiveMaximum": "less than"}
    if error.validator in words:
        bound = f"{error.validator_value}{suffix}"
        return f"must be {words[error.validator]} {bound} (got {error.instance!r})"
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, error.validator_value))} (got {error.instance!r})"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"must be of type {expected} (got {error.instance!r})"
    return error.message


def _schema_problems(schema: Mapping[str, Any], values: Mapping[str, Any],
                     failed: set[str]) -> list[Problem]:
    properties = schema.get("properties", {})
    checked = {**{k: v for k, v in schema.items() if k not in ("properties", "$schema")},
               "properties": {k: v for k, v in properties.items() if k not in failed},
               "additionalProperties": True}
    # Required parameters that have a default are filled by the server.
    checked["required"] = [r for r in schema.get("required", [])
                           if r not in failed and "default" not in properties.get(r, {})]
    problems = []
    validator = jsonschema.Draft202012Validator(checked)
    for error in sorted(validator.iter_errors({k: v for k, v in values.items() if k not in failed}),
                        key=lambda e: [str(p) for p in e.absolute_path]):
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else "?"
            problems.append(Problem(missing, pointer(missing), "missing required parameter"))
            continue
        path = list(error.absolute_path)
        name = str(path[0]) if path else "?"
        problems.append(Problem(name, pointer(*path) if path else "/",
                                reason(error, properties.get(name, {}))))
    return problems


def _ordering_problems(properties: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any],
                       instants: Mapping[str, Any], failed: set[str]) -> list[Problem]:
    """`x-greater-than`: NAME must exceed OTHER, given or default (defaults are ISO times)."""
    problems = []
    for name, fragment in properties.items():
        other = fragment.get("x-greater-than")
        if not other or other not in properties or failed & {name, other}:
            continue
        if name not in values and other not in values:
            continue
        pair = []
        for key in (name, other):
            if key in instants:
                pair.append((values[key], instants[key]))
            elif key in values:
                pair.append((values[key], values[key]))
            elif "default" in properties[key]:
                default = properties[key]["default"]
                try:
                    moment = instant(default, ISOT, {}) if "x-time" in properties[key] else default
                except _Bad:
                    moment = None
                pair.append((default, moment))
            else:
                pair.append((None, None))
        (value, mine), (other_value, theirs) = pair
        if mine is None or theirs is None:
            continue
        try:
            ordered = mine > theirs
        except TypeError:
            continue
        if not ordered:
            problems.append(Problem(name, pointer(name), f"must be greater than {other} "
                                    f"(got {name}={value!r}, {other}={other_value!r})"))
    return problems
