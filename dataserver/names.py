"""Source-name resolution shared by every instrument: offline first.

A shipped catalogue (`data/bright_xray_sources.csv`: ~250 bright X-ray sources with aliases and
J2000 positions) answers without any network. Matching ignores case, spaces and underscores
('cyg x-1', 'Cyg_X-1', 'CYGX-1' are the same), then, failing that, also hyphens and dots
('Cyg X1'); '+' is kept because it distinguishes declination signs. An unknown name raises
`NameNotFound` with close matches (difflib) from the catalogue.

CDS Sesame (astropy's `SkyCoord.from_name`) is an optional fallback, used only when the
resolver is built with `online=True` (setting `XODA_NAME_RESOLVER_ONLINE`) and then with a short
timeout; a failure or a missing network is reported as "not found", never as a hang.
"""
from __future__ import annotations

import csv
import difflib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Iterable, Sequence

log = logging.getLogger(__name__)

CATALOGUE_FILE = "bright_xray_sources.csv"


def normalise(name: str) -> str:
    """Case-, space- and underscore-insensitive key ('Cyg_X-1' -> 'cygx-1')."""
    text = name.replace("\u2212", "-").replace("\u2013", "-").replace("\u2010", "-")
    return re.sub(r"[\s_]+", "", text).lower()


def loose(name: str) -> str:
    """Looser key: also without hyphens, dots and other punctuation except '+'."""
    return re.sub(r"[^0-9a-z+*]", "", normalise(name))


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    aliases: tuple[str, ...]
    ra: float
    dec: float
    kind: str

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name,) + self.aliases


@dataclass(frozen=True)
class ResolvedName:
    query: str
    name: str                    # canonical name
    ra: float                    # J2000 deg
    dec: float
    aliases: tuple[str, ...]
    kind: str
    origin: str                  # "catalogue" or "sesame"

    def keys(self) -> set[str]:
        """Normalised forms of the canonical name, its aliases and the query."""
        return {normalise(n) for n in (self.name, self.query, *self.aliases)}

    def to_dict(self) -> dict:
        return {"query": self.query, "name": self.name, "ra": self.ra, "dec": self.dec,
                "aliases": list(self.aliases), "type": self.kind, "origin": self.origin}


class NameNotFound(LookupError):
    def __init__(self, query: str, suggestions: Sequence[str], online_tried: bool = False):
        self.query = query
        self.suggestions = list(suggestions)
        where = "the catalogue of bright X-ray sources" + (" nor by CDS Sesame" if online_tried else "")
        hint = f"; close matches: {', '.join(self.suggestions)}" if self.suggestions else ""
        super().__init__(f"source name {query!r} not found in {where}{hint}")


def load_catalogue(text: str | None = None) -> list[CatalogueEntry]:
    """Entries of the shipped catalogue (or of CSV `text` with the same columns)."""
    if text is None:
        text = resources.files("dataserver").joinpath("data", CATALOGUE_FILE).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    entries = []
    for row in csv.DictReader(lines):
        aliases = tuple(a.strip() for a in row["aliases"].split(";") if a.strip())
        entries.append(CatalogueEntry(row["name"].strip(), aliases, float(row["ra"]), float(row["dec"]),
                                      row.get("type", "").strip()))
    return entries


class NameResolver:
    """Resolve source names to J2000 positions; see the module docstring."""

    def __init__(self, entries: Iterable[CatalogueEntry] | None = None, online: bool = False,
                 timeout: float = 3.0):
        self.entries = list(load_catalogue() if entries is None else entries)
        self.online = online
        self.timeout = timeout
        self._exact: dict[str, CatalogueEntry] = {}
        self._loose: dict[str, CatalogueEntry] = {}
        ambiguous: set[str] = set()
        for entry in self.entries:
            for name in entry.names:
                key = normalise(name)
                other = self._exact.get(key)
                if other is not None and other is not entry:
                    raise ValueError(f"name {name!r} belongs to both {other.name!r} and {entry.name!r}")
                self._exact[key] = entry
                loose_key = loose(name)
                if self._loose.get(loose_key, entry) is not entry:
                    ambiguous.add(loose_key)      # never guess between two sources
                self._loose[loose_key] = entry
        for key in ambiguous:
            del self._loose[key]

    @classmethod
    def from_settings(cls, settings) -> "NameResolver":
        return cls(online=bool(getattr(settings, "name_resolver_online", False)))

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, name: str) -> CatalogueEntry | None:
        """The catalogue entry of `name`, or None (no network)."""
        return self._exact.get(normalise(name)) or self._loose.get(loose(name))

    def suggestions(self, name: str, count: int = 5) -> list[str]:
        """Canonical names of the closest catalogue names."""
        keys = list(self._exact)
        close = difflib.get_close_matches(normalise(name), keys, n=count * 3, cutoff=0.6)
        out: list[str] = []
        for key in close:
            canonical = self._exact[key].name
            if canonical not in out:
                out.append(canonical)
        return out[:count]

    def resolve(self, name: str) -> ResolvedName:
        if not name or not name.strip():
            raise NameNotFound(name, [])
        entry = self.lookup(name)
        if entry is not None:
            return ResolvedName(name, entry.name, entry.ra, entry.dec, entry.aliases, entry.kind, "catalogue")
        if self.online:
            found = self._sesame(name)
            if found is not None:
                return found
        raise NameNotFound(name, self.suggestions(name), self.online)

    def _sesame(self, name: str) -> ResolvedName | None:
        try:
            from astropy.coordinates import SkyCoord
            from astropy.utils.data import conf

            with conf.set_temp("remote_timeout", self.timeout):
                coord = SkyCoord.from_name(name)
        except Exception as exc:  # noqa: BLE001 - any network/parse failure means "not found"
            log.info("Sesame could not resolve %r: %s", name, exc)
            return None
        icrs = coord.icrs
        return ResolvedName(name, name.strip(), float(icrs.ra.deg), float(icrs.dec.deg), (), "", "sesame")
