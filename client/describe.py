"""Readable descriptions of products and instruments, built from their JSON Schemas.

`ProductDescription` prints as a table of parameters with type, unit, default, what is allowed
(bounds, choices, patterns, orderings, time formats) and the description; `parameters` gives
the same as `ParameterInfo` objects for programs.
"""
from __future__ import annotations

import json
import shutil
import textwrap
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .params import types_of

DESCRIPTION_MIN_WIDTH = 30


@dataclass(frozen=True)
class ParameterInfo:
    name: str
    type: str
    unit: str | None
    default: Any
    has_default: bool
    allowed: str
    description: str
    required: bool
    fragment: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_fragment(cls, name: str, fragment: Mapping[str, Any], required: bool,
                      schema: Mapping[str, Any]) -> "ParameterInfo":
        return cls(name=name, type=_type_text(fragment), unit=fragment.get("unit"),
                   default=fragment.get("default"), has_default="default" in fragment,
                   allowed=_allowed(fragment, schema), required=required,
                   description=" ".join(str(fragment.get("description")
                                            or fragment.get("title") or "").split()),
                   fragment=fragment)


def parameter_infos(schema: Mapping[str, Any]) -> dict[str, ParameterInfo]:
    required = set(schema.get("required", []))
    return {name: ParameterInfo.from_fragment(name, fragment, name in required, schema)
            for name, fragment in schema.get("properties", {}).items()}


def _type_text(fragment: Mapping[str, Any]) -> str:
    if "x-time" in fragment:
        return "time"
    kinds = [k for k in types_of(fragment) if k != "null"]
    if not kinds and "enum" in fragment:
        return "choice"
    text = " or ".join(kinds) or "any"
    if "array" in kinds:
        item = " or ".join(types_of(fragment.get("items", {}))) or "any"
        text = f"array of {item}"
    if "null" in types_of(fragment):
        text += " or null"
    return text


def _number(value: Any) -> str:
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def _allowed(fragment: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    parts = []
    low, high = fragment.get("minimum"), fragment.get("maximum")
    xlow, xhigh = fragment.get("exclusiveMinimum"), fragment.get("exclusiveMaximum")
    if any(v is not None for v in (low, high, xlow, xhigh)):
        if low is not None:
            left = f"[{_number(low)}"
        else:
            left = f"({_number(xlow)}" if xlow is not None else "(-inf"
        if high is not None:
            right = f"{_number(high)}]"
        else:
            right = f"{_number(xhigh)})" if xhigh is not None else "inf)"
        parts.append(f"{left}, {right}")
    if "enum" in fragment:
        parts.append(", ".join(_number(v) if v is not None else "null" for v in fragment["enum"]))
    if "pattern" in fragment:
        parts.append(f"matches {fragment['pattern']}")
    if "maxLength" in fragment:
        parts.append(f"at most {fragment['maxLength']} characters")
    if "x-greater-than" in fragment:
        parts.append(f"> {fragment['x-greater-than']}")
    if "x-time" in fragment:
        format_parameter = fragment["x-time"].get("format_parameter", "T_format")
        parts.append(f"format given by {format_parameter}")
    items = fragment.get("items")
    if isinstance(items, Mapping) and "array" in types_of(fragment):
        count = (fragment.get("minItems"), fragment.get("maxItems"))
        if any(c is not None for c in count):
            parts.append(f"{count[0] if count[0] is not None else 0}-"
                         f"{count[1] if count[1] is not None else 'any'} items")
        inner = _allowed(items, schema)
        if inner:
            parts.append(f"each {inner}")
    return "; ".join(parts)


def _default_text(info: ParameterInfo) -> str:
    if not info.has_default:
        return "(required)" if info.required else "-"
    value = info.default
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return _number(value)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None,
                 indent: str = "  ", max_widths: Sequence[int | None] = ()) -> str:
    """Columns padded to their widest cell; cells wrapped to `max_widths` (None: no limit),
    the last column to what the terminal width leaves."""
    if not rows:
        return ""
    width = width or max(80, shutil.get_terminal_size((100, 24)).columns)
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    limits = list(max_widths) + [None] * (len(headers) - len(max_widths))
    widths = [min(max(len(row[i]) for row in cells), limits[i] or 10**6)
              for i in range(len(headers) - 1)]
    lead = len(indent) + sum(w + 2 for w in widths)
    widths.append(max(DESCRIPTION_MIN_WIDTH, width - lead))
    lines = []
    for row in cells:
        wrapped = [textwrap.wrap(cell, w, break_on_hyphens=False) or [""]
                   for cell, w in zip(row, widths)]
        for index in range(max(len(w) for w in wrapped)):
            parts = [(w[index] if index < len(w) else "").ljust(widths[i] + 2)
                     for i, w in enumerate(wrapped)]
            lines.append((indent + "".join(parts)).rstrip())
    return "\n".join(lines)


def parameters_text(infos: Mapping[str, ParameterInfo], width: int | None = None) -> str:
    rows = [(i.name, i.type, i.unit or "", _default_text(i), i.allowed, i.description)
            for i in infos.values()]
    return render_table(("Parameter", "Type", "Unit", "Default", "Allowed", "Description"),
                        rows, width, max_widths=(None, 16, 10, 24, 28))


@dataclass(frozen=True)
class ProductDescription:
    """A product and its parameters; `print(d)` or `d` in a notebook shows the table."""

    instrument: str
    name: str
    title: str
    description: str
    schema: Mapping[str, Any] = field(repr=False)

    @property
    def parameters(self) -> dict[str, ParameterInfo]:
        return parameter_infos(self.schema)

    def __str__(self) -> str:
        head = f"{self.instrument} / {self.name}: {self.title}"
        body = textwrap.fill(" ".join(self.description.split()), 100, initial_indent="  ",
                             subsequent_indent="  ") if self.description else ""
        # A blank line between the head and the table (filter would drop an empty string).
        return "\n".join([*filter(None, [head, body]), "", parameters_text(self.parameters)])

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class InstrumentDescription:
    """An instrument, its products, and its observation-search criteria when it has a search."""

    name: str
    title: str
    mission: str
    description: str
    products: Sequence[Mapping[str, str]]
    search_schema: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def search_parameters(self) -> dict[str, ParameterInfo]:
        return parameter_infos(self.search_schema or {})

    def __str__(self) -> str:
        lines = [f"{self.name}: {self.title}" + (f" ({self.mission})" if self.mission else "")]
        if self.description:
            lines.append(textwrap.fill(" ".join(self.description.split()), 100,
                                       initial_indent="  ", subsequent_indent="  "))
        lines += ["", "Products:", render_table(
            ("Product", "Title", "Description"),
            [(p["name"], p.get("title", ""), " ".join((p.get("description") or "").split()))
             for p in self.products])]
        if self.search_schema is not None:
            lines += ["", "Observation search criteria:", parameters_text(self.search_parameters)]
        else:
            lines += ["", "No observation search."]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)
