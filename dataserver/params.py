"""The parameter vocabulary every xoda plugin shares, and the normaliser the dispatcher uses.

Plugins declare their products' parameters as JSON Schema fragments (see
`dataserver.plugin.ProductType.parameters`). For the parameters that every high-energy
instrument has, use the builders below, so that the names, units, bounds and time handling
are the same everywhere: the ODA client (`oda_api`) knows these names, the web form draws
them the same way for every instrument, and the dispatcher normalises them generically.

    from dataserver import params as P

    HXMT_MET = P.mission_time(
        "hxmt_met", mjdref=(55927, 7.6601852e-4), scale="tt", unit="s",
        description="Insight-HXMT mission time: TT seconds since 2012-01-01T00:00:00 UTC")

    parameters = {
        "src_name": P.src_name(default="Crab"),
        "RA": P.ra(default=83.633),
        "DEC": P.dec(default=22.0145),
        **P.time_range(default=("2017-08-27T00:00:00", "2017-08-28T00:00:00")),
        "T_format": P.time_format(HXMT_MET),
        **P.energy_range(minimum=20, maximum=250, default=(28, 250)),
        "time_bin": P.time_bin(default=1.0, minimum=1e-3, maximum=86400),
        # instrument-specific parameters are plain JSON Schema fragments:
        "det_group": {"type": "string", "enum": ["small", "all"], "default": "small",
                      "description": "Detector group"},
    }

Builders (each returns a JSON Schema fragment with `unit`, bounds, `default` and
`description`; keyword arguments override any of them):

- `src_name(default)`: source name (free text; informational, RA/DEC select the data).
- `ra(default)`, `dec(default)`: J2000 position in degrees, 0 <= RA < 360, -90 <= DEC <= 90.
- `time(default, description=...)`: one instant; `time_range(default=(t1, t2))` gives `T1`
  and `T2`, with `T2 > T1` checked by the normaliser (annotation `x-greater-than`).
- `time_format(*mission_formats, default="isot")`: the ODA `T_format` companion saying how
  `T1`/`T2` are written: `isot` (ISO 8601 UTC), `mjd` (UTC days) and every mission format
  the plugin passes, each built by `mission_time(name, mjdref=, scale=, unit=)`; the
  conversion is generic, driven by the `x-time-formats` annotation.
- `energy(default, minimum=, maximum=)`; `energy_range(minimum=, maximum=,
  default=(lo, hi))` gives `E1_keV` and `E2_keV` (keV), with `E2_keV > E1_keV` checked.
- `time_bin(default, minimum=, maximum=)`: a bin width in seconds (exclusive minimum 0).

Normalisation (`normalise(schema, values, strings=...)`), which runs at the edge before a
query becomes a job:

- names the schema does not declare are rejected, each by name;
- with `strings=True` (query strings, HTML and ODA forms) values are converted to the
  schema's types: numbers, integers (`"20.0"` -> 20), booleans (`true/false/yes/no/1/0`),
  arrays (repeated keys, a JSON list or comma-separated text), objects (JSON text); the
  ODA client's NUL character (its encoding of `None`) means "not given";
- times (`x-time` parameters) given in any declared format become ISO 8601 UTC strings with
  millisecond precision (`2018-01-01T00:00:00.000`), and the format companion becomes
  `isot`: `T1` in MJD and the same instant in ISO give the same normalised query, hence the
  same job;
- defaults are filled; integral numbers are canonical (20.0 -> 20 for integers, 20 -> 20.0
  for numbers);
- the result is validated against the schema with jsonschema, plus the `x-greater-than`
  orderings; ALL problems are reported at once by `InvalidParameters`, each with the
  parameter name, its path inside the value (JSON pointer) and the reason.

The plugin's `plan(params)` therefore receives complete, typed values with times in ISO UTC.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import jsonschema

# The ODA client's encoding of a Python None in a query string.
ODA_NONE = "\x00"

TIME_PRECISION_DIGITS = 3
_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$")
_OFFSET_RE = re.compile(r"^(?P<base>.+?)(?:Z|(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2}))$")

ISOT = "isot"


# ---- builders ------------------------------------------------------------------------------
def _fragment(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    result.update(overrides)
    if result.get("default") is None:
        result.pop("default", None)
    return result


def src_name(default: str | None = None, **overrides: Any) -> dict[str, Any]:
    return _fragment({"type": "string", "maxLength": 200, "default": default,
                      "title": "Source name",
                      "description": "Name of the source (informational: RA and DEC select the "
                                     "data; the name resolver fills them from a name)"},
                     overrides)


def ra(default: float | None = None, **overrides: Any) -> dict[str, Any]:
    return _fragment({"type": "number", "minimum": 0, "exclusiveMaximum": 360, "unit": "deg",
                      "default": default, "title": "RA",
                      "description": "Right ascension (J2000) of the source, in degrees"},
                     overrides)


def dec(default: float | None = None, **overrides: Any) -> dict[str, Any]:
    return _fragment({"type": "number", "minimum": -90, "maximum": 90, "unit": "deg",
                      "default": default, "title": "DEC",
                      "description": "Declination (J2000) of the source, in degrees"},
                     overrides)


def time(default: str | None = None, *, format_parameter: str = "T_format",
         **overrides: Any) -> dict[str, Any]:
    """One instant, written in the format named by the `format_parameter` companion."""
    return _fragment({"type": ["string", "number"], "default": default,
                      "x-time": {"format_parameter": format_parameter},
                      "description": f"An instant, in the format given by {format_parameter} "
                                     "(ISO 8601 UTC by default)"},
                     overrides)


def time_range(default: tuple[str, str] | None = None, *, names: tuple[str, str] = ("T1", "T2"),
               format_parameter: str = "T_format") -> dict[str, dict[str, Any]]:
    """`T1` and `T2`: the time range of the query; T2 must be later than T1."""
    start, stop = names
    default = default or (None, None)
    return {
        start: time(default[0], format_parameter=format_parameter, title="Start time",
                    description=f"Start of the time range, in the format given by "
                                f"{format_parameter} (ISO 8601 UTC by default)"),
        stop: time(default[1], format_parameter=format_parameter, title="End time",
                   description=f"End of the time range, in the format given by "
                               f"{format_parameter} (ISO 8601 UTC by default)",
                   **{"x-greater-than": start}),
    }


@dataclass(frozen=True)
class TimeFormat:
    """A way of writing an instant as a number: `unit`s since the reference MJD
    `mjdrefi + mjdreff` (as in the FITS keywords MJDREFI/MJDREFF) in time scale `scale`."""

    name: str
    mjdrefi: int
    mjdreff: float
    scale: str
    unit: str
    description: str

    def annotation(self) -> dict[str, Any]:
        return {"mjdrefi": self.mjdrefi, "mjdreff": self.mjdreff, "scale": self.scale,
                "unit": self.unit, "description": self.description}


_UNIT_SECONDS = {"s": 1.0, "d": 86400.0}
_SCALES = ("utc", "tt", "tai", "tdb", "tcg", "tcb", "ut1")

MJD = TimeFormat("mjd", 0, 0.0, "utc", "d", "Modified Julian Date (UTC), in days")


def mission_time(name: str, *, mjdref: float | tuple[int, float], scale: str = "tt",
                 unit: str = "s", description: str) -> TimeFormat:
    """A mission time format, e.g. HXMT MET: TT seconds since MJD (55927, 7.6601852e-4).

    `mjdref` is the reference MJD, as one number or as the FITS (MJDREFI, MJDREFF) pair,
    which keeps full precision.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in (ISOT, MJD.name):
        raise ValueError(f"time format name {name!r}: lower-case identifier, not isot or mjd")
    if scale not in _SCALES:
        raise ValueError(f"time format {name}: unknown time scale {scale!r}")
    if unit not in _UNIT_SECONDS:
        raise ValueError(f"time format {name}: unit must be 's' or 'd'")
    if isinstance(mjdref, tuple):
        mjdrefi, mjdreff = int(mjdref[0]), float(mjdref[1])
    else:
        mjdrefi = int(math.floor(mjdref))
        mjdreff = float(mjdref) - mjdrefi
    return TimeFormat(name, mjdrefi, mjdreff, scale, unit, description)


def time_format(*mission_formats: TimeFormat, default: str = ISOT,
                **overrides: Any) -> dict[str, Any]:
    """The `T_format` companion of the time parameters."""
    formats = {ISOT: {"description": "ISO 8601, UTC (e.g. 2018-01-01T00:00:00)"},
               MJD.name: MJD.annotation()}
    for fmt in mission_formats:
        formats[fmt.name] = fmt.annotation()
    if default not in formats:
        raise ValueError(f"T_format default {default!r} is not one of {sorted(formats)}")
    return _fragment({"type": "string", "enum": list(formats), "default": default,
                      "title": "Time format", "x-time-formats": formats,
                      "description": "How T1 and T2 are written: " + "; ".join(
                          f"{name}: {spec['description']}" for name, spec in formats.items())},
                     overrides)


def energy(default: float | None = None, *, minimum: float = 0, maximum: float | None = None,
           **overrides: Any) -> dict[str, Any]:
    base = {"type": "number", "minimum": minimum, "unit": "keV", "default": default,
            "description": "Energy, in keV"}
    if maximum is not None:
        base["maximum"] = maximum
    return _fragment(base, overrides)


def energy_range(*, minimum: float, maximum: float, default: tuple[float, float] | None = None,
                 names: tuple[str, str] = ("E1_keV", "E2_keV")) -> dict[str, dict[str, Any]]:
    """`E1_keV` and `E2_keV`: the energy band; E2 must be above E1."""
    low, high = names
    default = default or (None, None)
    return {
        low: energy(default[0], minimum=minimum, maximum=maximum, title="Lower energy",
                    description=f"Lower bound of the energy band, in keV ({minimum}-{maximum})"),
        high: energy(default[1], minimum=minimum, maximum=maximum, title="Upper energy",
                     description=f"Upper bound of the energy band, in keV ({minimum}-{maximum})",
                     **{"x-greater-than": low}),
    }


def time_bin(default: float | None = None, *, minimum: float = 0, maximum: float | None = None,
             **overrides: Any) -> dict[str, Any]:
    base = {"type": "number", "exclusiveMinimum": minimum, "unit": "s", "default": default,
            "title": "Time bin", "description": "Width of the light-curve bins, in seconds"}
    if maximum is not None:
        base["maximum"] = maximum
    return _fragment(base, overrides)


# ---- errors --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParameterProblem:
    parameter: str
    path: str          # JSON pointer inside the query, e.g. "/units/2"
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"parameter": self.parameter, "path": self.path, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.path.lstrip('/') or self.parameter}: {self.reason}"


class InvalidParameters(ValueError):
    """Every problem found in a query's parameters, each naming its parameter."""

    def __init__(self, problems: Sequence[ParameterProblem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


def _pointer(parameter: str, *rest: Any) -> str:
    parts = [parameter, *rest]
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


# ---- coercion of text values ---------------------------------------------------------------
class _Coercion(ValueError):
    def __init__(self, reason: str, path: tuple[Any, ...] = ()):
        self.reason = reason
        self.path = path
        super().__init__(reason)


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    if kind is None:
        return []
    return [kind] if isinstance(kind, str) else list(kind)


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Coercion(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise _Coercion(f"{text!r} is not a finite number")
    return value


def _from_text(value: Any, schema: Mapping[str, Any], path: tuple[Any, ...] = ()) -> Any:
    """Convert text (or a list of texts from repeated keys) to the schema's type."""
    types = _types(schema)
    if "array" in types:
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("["):
                try:
                    value = json.loads(stripped)
                except ValueError:
                    raise _Coercion("is not a valid JSON list", path) from None
            else:
                value = [item.strip() for item in stripped.split(",")] if stripped else []
        if isinstance(value, (list, tuple)):
            items = schema.get("items", {})
            return [_from_text(item, items, (*path, i)) if isinstance(item, str)
                    else item for i, item in enumerate(value)]
        return value
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise _Coercion(f"given {len(value)} times; expected a single value", path)
        value = value[0]
    if not isinstance(value, str) or "x-time" in schema:
        return value
    if "object" in types:
        try:
            return json.loads(value)
        except ValueError:
            raise _Coercion("is not a valid JSON object", path) from None
    text = value.strip()
    if "string" in types and ("integer" in types or "number" in types):
        # Either spelling is allowed (e.g. an ISO time or MET seconds): numbers when they parse.
        try:
            number = _number(text)
        except _Coercion:
            return value
        return int(number) if "integer" in types and number.is_integer() else number
    if "integer" in types:
        number = _number(text)
        if number.is_integer():
            return int(number)
        if "number" not in types:
            raise _Coercion(f"{text!r} is not an integer", path)
    if "number" in types:
        return _number(text)
    if "boolean" in types:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise _Coercion(f"{text!r} is not a boolean (true/false)", path)
    if "null" in types and text == "":
        return None
    return value


def _canonical_numbers(value: Any, schema: Mapping[str, Any]) -> Any:
    """Integral floats -> int for integers; ints -> float for numbers (recursively)."""
    types = _types(schema)
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and "integer" in types and value.is_integer():
        return int(value)
    if isinstance(value, int) and "number" in types and "integer" not in types:
        return float(value)
    if isinstance(value, list) and "array" in types:
        items = schema.get("items", {})
        return [_canonical_numbers(item, items) for item in value]
    if isinstance(value, dict) and "object" in types:
        props = schema.get("properties", {})
        return {k: _canonical_numbers(v, props.get(k, {})) for k, v in value.items()}
    return value


# ---- times ---------------------------------------------------------------------------------
def _time_formats(schema: Mapping[str, Any], format_parameter: str) -> dict[str, Any]:
    fmt_schema = schema.get("properties", {}).get(format_parameter, {})
    return dict(fmt_schema.get("x-time-formats") or {ISOT: {}})


def iso_utc(value: Any, fmt: str = ISOT, spec: Mapping[str, Any] | None = None) -> str:
    """`value` written in format `fmt` (with its `x-time-formats` spec) as ISO 8601 UTC.

    Raises ValueError with a reason fit for the user.
    """
    from astropy.time import Time, TimeDelta  # deferred: astropy.time costs ~0.3 s to import

    out_of_range = f"{value!r} is outside the supported range of dates"
    if fmt == ISOT:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not an ISO 8601 time (T_format is isot)")
        text = value.strip()
        offset_s = 0.0
        match = _OFFSET_RE.match(text) if ("T" in text or " " in text) else None
        if match:
            text = match.group("base")
            if match.group("sign"):
                sign = 1 if match.group("sign") == "+" else -1
                offset_s = sign * (int(match.group("hh")) * 3600 + int(match.group("mm")) * 60)
        try:
            instant = Time(text, scale="utc", format=None)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time such as "
                             "2018-01-01T00:00:00") from None
        if instant.format not in ("isot", "iso", "fits"):
            raise ValueError(f"{value!r} is not an ISO 8601 time such as 2018-01-01T00:00:00")
        if offset_s:
            instant = instant - TimeDelta(offset_s, format="sec")
    else:
        spec = spec or {}
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise ValueError(f"{value!r} is not a number (T_format is {fmt})") from None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        else:
            raise ValueError(f"{value!r} is not a number (T_format is {fmt})")
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        scale = spec.get("scale", "utc")
        unit = spec.get("unit", "d")
        mjdrefi, mjdreff = int(spec.get("mjdrefi", 0)), float(spec.get("mjdreff", 0.0))
        try:
            if unit == "d":
                whole = math.floor(number)
                instant = Time(mjdrefi + whole, mjdreff + (number - whole), format="mjd",
                               scale=scale)
            else:
                epoch = Time(mjdrefi, mjdreff, format="mjd", scale=scale)
                instant = epoch + TimeDelta(number * _UNIT_SECONDS[unit], format="sec",
                                            scale=scale)
        except ValueError:
            # astropy's and ERFA's own words, over several lines: the reason must be one line.
            raise ValueError(out_of_range) from None
    try:
        iso = instant.utc
        iso.precision = TIME_PRECISION_DIGITS
        text = iso.isot
    except ValueError:
        raise ValueError(out_of_range) from None
    if not _ISO_RE.match(text):
        raise ValueError(out_of_range)
    return text


# ---- the normaliser ------------------------------------------------------------------------
def _reason(error: jsonschema.ValidationError, schema: Mapping[str, Any]) -> str:
    unit = schema.get("unit")
    suffix = f" {unit}" if unit and error.validator in (
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") else ""
    if error.validator == "minimum":
        return f"must be at least {error.validator_value}{suffix} (got {error.instance!r})"
    if error.validator == "maximum":
        return f"must be at most {error.validator_value}{suffix} (got {error.instance!r})"
    if error.validator == "exclusiveMinimum":
        return f"must be greater than {error.validator_value}{suffix} (got {error.instance!r})"
    if error.validator == "exclusiveMaximum":
        return f"must be less than {error.validator_value}{suffix} (got {error.instance!r})"
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, error.validator_value))} (got {error.instance!r})"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"must be of type {expected} (got {error.instance!r})"
    return error.message


def normalise(schema: Mapping[str, Any], values: Mapping[str, Any], *,
              strings: bool = False) -> dict[str, Any]:
    """The complete, typed, canonical parameters of a query; see the module docstring.

    Raises `InvalidParameters` listing every problem.
    """
    properties: Mapping[str, Mapping[str, Any]] = schema.get("properties", {})
    problems: list[ParameterProblem] = []
    given: dict[str, Any] = {}
    for name, value in values.items():
        if name not in properties:
            problems.append(ParameterProblem(name, _pointer(name), "unknown parameter (this "
                                             "product accepts: " + ", ".join(properties) + ")"))
            continue
        if strings and (value == ODA_NONE or value == [ODA_NONE]):
            continue
        if strings:
            try:
                value = _from_text(value, properties[name])
            except _Coercion as exc:
                problems.append(ParameterProblem(name, _pointer(name, *exc.path), exc.reason))
                continue
        # JSON bodies (and JSON text in forms) may spell NaN and Infinity; jsonschema's bounds
        # do not catch NaN, and no content key or job record can hold either.
        bad = _non_finite(value)
        if bad is not None:
            path, number = bad
            problems.append(ParameterProblem(name, _pointer(name, *path),
                                             f"{number!r} is not a finite number"))
            continue
        given[name] = value

    result: dict[str, Any] = {}
    for name, prop in properties.items():
        if name in given:
            result[name] = given[name]
        elif "default" in prop:
            result[name] = prop["default"]

    unconverted = _convert_times(schema, result, given, problems)

    for name, prop in properties.items():
        if name in result:
            result[name] = _canonical_numbers(result[name], prop)

    failed = {p.parameter for p in problems}
    validator = jsonschema.Draft202012Validator(
        {**{k: v for k, v in schema.items() if k != "properties"},
         "properties": {k: v for k, v in properties.items() if k not in failed},
         "additionalProperties": True})
    for error in sorted(validator.iter_errors({k: v for k, v in result.items() if k not in failed}),
                        key=lambda e: [str(p) for p in e.absolute_path]):
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            if missing in failed:
                continue
            problems.append(ParameterProblem(missing or "?", _pointer(missing),
                                             "missing required parameter"))
            continue
        path = list(error.absolute_path)
        name = str(path[0]) if path else "?"
        problems.append(ParameterProblem(name, _pointer(*path) if path else "/",
                                         _reason(error, properties.get(name, {}))))
    failed = {p.parameter for p in problems} | unconverted

    for name, prop in properties.items():
        other = prop.get("x-greater-than")
        if other and name in result and other in result and not failed & {name, other}:
            if not result[name] > result[other]:
                problems.append(ParameterProblem(
                    name, _pointer(name), f"must be greater than {other} "
                    f"(got {name}={result[name]!r}, {other}={result[other]!r})"))
    if problems:
        raise InvalidParameters(problems)
    return result


def _non_finite(value: Any, path: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...], float] | None:
    """(path, number) of the first NaN or infinity inside `value`, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, (list, tuple)) else ())
    for key, item in items:
        found = _non_finite(item, (*path, key))
        if found is not None:
            return found
    return None


def _convert_times(schema: Mapping[str, Any], result: dict[str, Any], given: Mapping[str, Any],
                   problems: list[ParameterProblem]) -> set[str]:
    """Convert the time parameters in place; return those left unconverted."""
    properties = schema.get("properties", {})
    reset: set[str] = set()
    unconverted: set[str] = set()
    for name, prop in properties.items():
        annotation = prop.get("x-time")
        if not annotation:
            continue
        format_parameter = annotation.get("format_parameter", "T_format")
        if format_parameter in properties:
            # Even when no time is given: a format naming nothing must not split one query
            # into several jobs.
            reset.add(format_parameter)
        if name not in result:
            continue
        formats = _time_formats(schema, format_parameter)
        fmt = result.get(format_parameter, ISOT) if name in given else ISOT
        if fmt not in formats:
            # The format itself is wrong: reported once, by the validator, under its name.
            unconverted.add(name)
            continue
        try:
            result[name] = iso_utc(result[name], fmt, formats[fmt])
        except ValueError as exc:
            problems.append(ParameterProblem(name, _pointer(name), str(exc)))
    for format_parameter in reset:
        if result.get(format_parameter) in _time_formats(schema, format_parameter):
            result[format_parameter] = ISOT
    return unconverted


# ---- the inverse: parameters as query-string pairs -----------------------------------------
def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def query_pairs(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Normalised parameters as sorted (name, text) pairs that `normalise(..., strings=True)`
    reads back to the same values: arrays of scalars as repeated keys, objects as JSON."""
    pairs: list[tuple[str, str]] = []
    for name in sorted(params):
        value = params[name]
        if value is None:
            continue
        if isinstance(value, list) and value and all(
                isinstance(v, (str, int, float, bool)) and not (isinstance(v, str) and "," in v)
                for v in value):
            pairs.extend((name, _text(v)) for v in value)
        else:
            pairs.append((name, _text(value)))
    return pairs
