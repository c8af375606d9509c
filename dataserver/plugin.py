"""The one interface between xoda and an instrument plugin.

A plugin is a subclass of `Instrument`, registered under the entry-point group
`xoda.instruments` (see setup.cfg); tests pass extra classes to `load_instruments`. It
declares its products, each with a JSON Schema of its parameters (the single source of truth
for validation, the web form and the client) and a `plan` function that turns validated
parameters into a graph of step invocations (`Plan`). It may also offer an observation
search. Nothing else about an instrument is known outside its package.

Contract for `ProductType.plan(params)`:
- `params` has been validated against `ProductType.schema()` by the caller, unknown names
  rejected and defaults filled; times (`T1`, `T2`) arrive as ISO-8601 UTC strings whatever
  format the user typed them in.
- It raises `QueryError(parameter, reason)` for what the schema cannot express (E1 >= E2,
  no exposure in the time range, an exposure without the payload's data, ...).
- It returns a `Plan`: named output files, each produced by a `Node`, and the data units the
  plan reads, with their access rights (owner, public date) so the dispatcher can enforce
  data rights without knowing the instrument.
"""
from __future__ import annotations

import abc
import datetime as dt
import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

from .settings import Settings
from .steps import Node

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "xoda.instruments"

# Kinds of output files; clients and the web form choose viewers by kind.
OUTPUT_KINDS = ("spectrum", "background", "rmf", "arf", "lightcurve", "gti", "fit", "image",
                "catalog", "events", "table")


class QueryError(ValueError):
    """A query the schema accepted but the instrument cannot serve; names the parameter."""

    def __init__(self, parameter: str, reason: str):
        self.parameter = parameter
        self.reason = reason
        super().__init__(f"{parameter}: {reason}")


@dataclass(frozen=True)
class Identity:
    """Who asks: a token's subject and roles, or anonymous. Never part of any key."""

    subject: str | None = None
    roles: frozenset[str] = frozenset()

    @property
    def anonymous(self) -> bool:
        return self.subject is None

    def may_access(self, owner: str | None, public_date: str | None,
                   grant_roles: Iterable[str] = (), now: dt.datetime | None = None) -> bool:
        """Public data, or the owner's own, or a role that grants it."""
        if not public_date:
            return True
        now = now or dt.datetime.now(dt.timezone.utc)
        released = dt.datetime.fromisoformat(public_date)
        if released.tzinfo is None:
            released = released.replace(tzinfo=dt.timezone.utc)
        if released <= now:
            return True
        if self.subject is not None and owner is not None and self.subject == owner:
            return True
        return bool(self.roles & set(grant_roles))


@dataclass(frozen=True)
class Unit:
    """A data unit a plan reads (an HXMT exposure, an INTEGRAL science window)."""

    id: str
    label: str = ""
    owner: str | None = None          # e.g. the PI of a proprietary observation
    public_date: str | None = None    # ISO date; proprietary until then
    grant_roles: tuple[str, ...] = ()  # roles that may see it before its public date


@dataclass(frozen=True)
class PlanOutput:
    """One file of a product: its download name, the node that makes it, what it is."""

    name: str
    node: Node
    kind: str
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in OUTPUT_KINDS:
            raise ValueError(f"output {self.name}: unknown kind {self.kind!r}")


@dataclass(frozen=True)
class Plan:
    outputs: tuple[PlanOutput, ...]
    units: tuple[Unit, ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)

    @property
    def targets(self) -> list[Node]:
        return [output.node for output in self.outputs]


@dataclass(frozen=True)
class ProductType:
    """A product an instrument offers, with its parameters and how to plan it."""

    name: str
    title: str
    description: str
    parameters: Mapping[str, Mapping[str, Any]]   # JSON Schema fragments, with "unit" where physical
    plan: Callable[[Mapping[str, Any]], Plan]
    required: Sequence[str] = ()

    def schema(self) -> dict[str, Any]:
        return {"$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": self.title, "description": self.description, "type": "object",
                "properties": {k: dict(v) for k, v in self.parameters.items()},
                "required": list(self.required), "additionalProperties": False}


class Instrument(abc.ABC):
    """Base class of instrument plugins."""

    name: ClassVar[str]                  # identifier in URLs and the ODA `instrument` parameter
    title: ClassVar[str]                 # e.g. "Insight-HXMT HE"
    mission: ClassVar[str] = ""
    description: ClassVar[str] = ""
    docker_image: ClassVar[str | None] = None   # image for the docker executor; None: default

    def __init__(self, settings: Settings):
        self.settings = settings

    @abc.abstractmethod
    def products(self) -> Mapping[str, ProductType]:
        """The products this instrument offers, by name."""

    def step_modules(self) -> Sequence[str]:
        """Modules holding this plugin's steps; workers import them ahead of time."""
        return ()

    def search_parameters(self) -> Mapping[str, Mapping[str, Any]] | None:
        """JSON Schema fragments of the observation-search criteria, or None (no search)."""
        return None

    def search(self, criteria: Mapping[str, Any], identity: Identity) -> Mapping[str, Any]:
        """Observations matching `criteria` that `identity` may see:
        {"total": n, "rows": [...], "columns": [{"name", "unit", "description"}]}."""
        raise LookupError(f"{self.name} offers no observation search")


def load_instruments(settings: Settings, extra: Sequence[type[Instrument]] = (),
                     include_installed: bool = True) -> dict[str, Instrument]:
    """Instantiate the installed plugins (entry points) plus `extra` ones, by name."""
    classes: list[type[Instrument]] = []
    if include_installed:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                classes.append(ep.load())
            except Exception:  # noqa: BLE001 - one broken plugin must not take down the service
                log.exception("could not load instrument plugin %s", ep.value)
    classes.extend(extra)
    instruments: dict[str, Instrument] = {}
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, Instrument)):
            raise TypeError(f"{cls!r} is not an Instrument subclass")
        instruments[cls.name] = cls(settings)
    return instruments
