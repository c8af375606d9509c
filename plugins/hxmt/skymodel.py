"""Sky models and observation plans for the HXMT simulator.

A sky-model file (JSON or YAML, schema `data/skymodel.schema.json`) lists sources - name,
J2000 position, spectrum (power law, cut-off power law, blackbody `bbodyrad`, or a sum of
them, optionally absorbed by `wabs`: Morrison & McCammon cross-sections) and variability (constant,
periodic with a pulse profile, outburst/flare, bursts) - and the proposals, observations and
exposures to simulate. `load_simulation(path)` validates a file and returns a
`SimulationSpec`; every error names the offending field, e.g.
`sources[0].spectrum.index: 'soft' is not of type 'number'`.

Variability multiplies the spectrum normalisation; its clock is barycentric: seconds of TDB
at the Solar System barycentre since the MET epoch ("barycentric MET", see
`orbit.barycentric_met`). For outbursts the spectrum normalisation is the flux at the peak;
for periodic sources it is the phase-averaged flux.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jsonschema
import numpy as np
import yaml

from dataserver import spectral_models

from .instrument import PAYLOADS
from .timeconv import met_to_datetime, to_met

SCHEMA_FILE = "skymodel.schema.json"


class SkyModelError(ValueError):
    """An invalid sky-model file; `errors` lists (field path, reason)."""

    def __init__(self, errors: Sequence[tuple[str, str]], source: str = ""):
        self.errors = list(errors)
        where = f"{source}: " if source else ""
        lines = [f"{path or '(top level)'}: {reason}" for path, reason in self.errors]
        super().__init__(where + "invalid sky model\n  " + "\n  ".join(lines))


def load_schema() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath("data", SCHEMA_FILE).read_text())


# --------------------------------------------------------------------------- spectra ----
# The sky-model file names the spectral parameters as its schema documents them; the
# formulas (`dataserver.spectral_models`, the fits' own) use XSPEC's names. This is the one
# place where the two meet.
XSPEC_NAMES: Mapping[str, str] = {"norm": "norm", "index": "PhoIndex", "ecut": "HighECut", "kT": "kT",
                                  "nh": "nH"}
_SKY_NAMES: Mapping[str, str] = {xspec: sky for sky, xspec in XSPEC_NAMES.items()}


@dataclass(frozen=True)
class Component:
    """One additive spectral component, in the sky-model file's parameter names; its photon
    spectrum (ph/cm2/s/keV) is `dataserver.spectral_models`' model of the same name."""

    model: str
    norm: float
    index: float = 0.0
    ecut: float = 0.0
    kT: float = 0.0

    def parameter_names(self) -> tuple[str, ...]:
        """The model's parameters, in sky-model names (ValueError for an unknown model)."""
        return tuple(_SKY_NAMES[name] for name in spectral_models.get_model(self.model).param_names)

    def xspec_params(self, nh: float = 0.0) -> dict[str, float]:
        """The parameter set of `spectral_models`, absorbed when `nh` > 0 (1e22 cm-2)."""
        params = {XSPEC_NAMES[name]: getattr(self, name) for name in self.parameter_names()}
        if nh > 0:
            params[XSPEC_NAMES["nh"]] = nh
        return params

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, **{p: getattr(self, p) for p in self.parameter_names()}}


@dataclass(frozen=True)
class Spectrum:
    """A sum of components absorbed by `wabs` with column `nh` (1e22 cm-2); since absorption
    multiplies every component, the sum of the absorbed components is the absorbed sum."""

    components: tuple[Component, ...]
    nh: float = 0.0

    def _total(self, quantity, *args):
        """Sum over the components of a `spectral_models` quantity (the schema guarantees one
        component at least)."""
        return sum(quantity(c.model, c.xspec_params(self.nh), *args) for c in self.components)

    def density(self, energy: np.ndarray | float) -> np.ndarray:
        """Photon flux density (ph/cm2/s/keV) at `energy` (keV), absorbed."""
        return self._total(spectral_models.photon_spectrum, np.asarray(energy, dtype=float))

    def integrate(self, edges: np.ndarray) -> np.ndarray:
        """Photon flux (ph/cm2/s) in each bin of `edges` (keV) - the response's input - by the
        fits' rule (bin integral times the bin-averaged transmission)."""
        edges = np.asarray(edges, dtype=float)
        return self._total(spectral_models.photon_flux, edges[:-1], edges[1:])

    def photon_flux(self, e1: float, e2: float) -> float:
        """ph / cm2 / s between e1 and e2 keV (absorbed, as observed)."""
        return float(self._total(spectral_models.band_photon_flux, e1, e2))

    def energy_flux(self, e1: float, e2: float) -> float:
        """erg / cm2 / s between e1 and e2 keV (absorbed, as observed)."""
        return float(self._total(spectral_models.energy_flux, e1, e2))

    def to_dict(self) -> dict[str, Any]:
        if len(self.components) == 1:
            return {**self.components[0].to_dict(), "nh": self.nh}
        return {"components": [c.to_dict() for c in self.components], "nh": self.nh}


# ----------------------------------------------------------------------- variability ----
class Variability:
    """factor(t) multiplies the spectrum normalisation; t is barycentric MET (s)."""

    kind = "constant"

    def factor(self, t: np.ndarray) -> np.ndarray:
        return np.ones_like(np.asarray(t, dtype=float))

    def bound(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """An upper bound of factor over each interval [t0, t1] (for thinning)."""
        return np.ones_like(np.asarray(t0, dtype=float))

    @property
    def constant(self) -> bool:
        return self.kind == "constant"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Variability) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "constant"}


@dataclass(frozen=True)
class Pulse:
    phase: float
    width: float
    amplitude: float = 1.0


class Periodic(Variability):
    """1 - f + f * profile(phase) / <profile>: phase-averaged factor 1, pulsed fraction f."""

    kind = "periodic"

    def __init__(self, period: float, epoch: float, pulsed_fraction: float,
                 profile: str | Sequence[Pulse] = "sine", pdot: float = 0.0):
        self.period, self.epoch, self.pulsed_fraction, self.pdot = period, epoch, pulsed_fraction, pdot
        self.profile = profile if isinstance(profile, str) else tuple(profile)
        # The profile is tabulated once (16384 phases, linear interpolation in between):
        # evaluating Gaussians per candidate event would dominate bright pulsars' cost.
        self._grid = np.linspace(0.0, 1.0, 16385)
        self._table = self._shape(self._grid)
        self._mean = float(self._table[:-1].mean())
        self._max = float(self._table.max())

    def _shape(self, phase: np.ndarray) -> np.ndarray:
        if self.profile == "sine":
            return 1.0 + np.cos(2 * np.pi * phase)
        total = np.zeros_like(phase)
        for pulse in self.profile:
            for wrap in (-1.0, 0.0, 1.0):
                total = total + pulse.amplitude * np.exp(-0.5 * ((phase - pulse.phase + wrap) / pulse.width) ** 2)
        return total

    def phase(self, t: np.ndarray) -> np.ndarray:
        """Pulse phase in [0, 1): cycles = dt/P - Pdot dt^2 / (2 P^2)."""
        dt_ = np.asarray(t, dtype=float) - self.epoch
        cycles = dt_ / self.period - 0.5 * self.pdot * dt_ ** 2 / self.period ** 2
        return np.mod(cycles, 1.0)

    def factor(self, t: np.ndarray) -> np.ndarray:
        f = self.pulsed_fraction
        return 1.0 - f + f * np.interp(self.phase(t), self._grid, self._table) / self._mean

    def bound(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        f = self.pulsed_fraction
        return np.full_like(np.asarray(t0, dtype=float), 1.0 - f + f * self._max / self._mean)

    def to_dict(self) -> dict[str, Any]:
        profile = self.profile if isinstance(self.profile, str) else [
            {"phase": p.phase, "width": p.width, "amplitude": p.amplitude} for p in self.profile]
        return {"type": "periodic", "period": self.period, "frequency": 1.0 / self.period,
                "pdot": self.pdot, "epoch": self.epoch, "pulsed_fraction": self.pulsed_fraction,
                "profile": profile}


def _fred(t: np.ndarray, peak: float, rise: float, decay: float) -> np.ndarray:
    """Exponential rise then exponential decay, 1 at the peak."""
    dt_ = np.asarray(t, dtype=float) - peak
    return np.where(dt_ < 0, np.exp(np.maximum(dt_ / rise, -700.0)), np.exp(-np.maximum(dt_, 0.0) / decay))


class Outburst(Variability):
    """q + (1 - q) * FRED(t): the spectrum norm is the peak flux, q the quiescent fraction."""

    kind = "outburst"

    def __init__(self, peak_time: float, rise: float, decay: float, quiescent: float = 0.001,
                 kind: str = "outburst"):
        self.peak_time, self.rise, self.decay, self.quiescent = peak_time, rise, decay, quiescent
        self.kind = kind

    def factor(self, t: np.ndarray) -> np.ndarray:
        q = self.quiescent
        return q + (1.0 - q) * _fred(t, self.peak_time, self.rise, self.decay)

    def bound(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        # Monotonic on each side of the peak: the maximum is at the point nearest the peak.
        return self.factor(np.clip(self.peak_time, t0, t1))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "peak_time": self.peak_time, "rise": self.rise,
                "decay": self.decay, "quiescent": self.quiescent}


@dataclass(frozen=True)
class Burst:
    time: float
    amplitude: float
    rise: float = 1.0
    decay: float = 10.0


class Bursts(Variability):
    """1 + sum_k A_k FRED_k(t): bursts on top of the persistent flux."""

    kind = "burst"

    def __init__(self, bursts: Sequence[Burst]):
        self.bursts = tuple(bursts)

    def factor(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        total = np.ones_like(t)
        for b in self.bursts:
            total = total + b.amplitude * _fred(t, b.time, b.rise, b.decay)
        return total

    def bound(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        t0 = np.asarray(t0, dtype=float)
        total = np.ones_like(t0)
        for b in self.bursts:
            total = total + b.amplitude * _fred(np.clip(b.time, t0, t1), b.time, b.rise, b.decay)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"type": "burst", "bursts": [{"time": b.time, "amplitude": b.amplitude,
                                             "rise": b.rise, "decay": b.decay} for b in self.bursts]}


@dataclass(frozen=True)
class Source:
    name: str
    ra: float
    dec: float
    spectrum: Spectrum
    variability: Variability = field(default_factory=Variability)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ra": self.ra, "dec": self.dec,
                "spectrum": self.spectrum.to_dict(), "variability": self.variability.to_dict()}


# -------------------------------------------------------------------- observation plan ----
@dataclass(frozen=True)
class ExposurePlan:
    exp_id: str
    start: float                      # MET
    duration: float                   # s
    min_good_fraction: float | None = None
    payloads: tuple[str, ...] = PAYLOADS


@dataclass(frozen=True)
class ObservationPlan:
    obs_id: str
    target: str
    ra: float
    dec: float
    roll: float
    public_date: str | None
    exposures: tuple[ExposurePlan, ...]


@dataclass(frozen=True)
class ProposalPlan:
    proposal_id: str
    type: str
    pi: str | None
    pi_name: str | None
    title: str
    observations: tuple[ObservationPlan, ...]


@dataclass(frozen=True)
class SimulationSpec:
    name: str
    seed: int
    orbit: Mapping[str, Any]
    options: Mapping[str, Any]
    sources: tuple[Source, ...]
    proposals: tuple[ProposalPlan, ...]


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(error: jsonschema.ValidationError, document: Any) -> tuple[str, str]:
    path = _path(error.absolute_path)
    if error.validator is None or error.schema is False:
        # A `false` sub-schema: jsonschema reports the parent object; name the field by
        # finding which of the parent's values is the refused one.
        parent = document
        for part in error.absolute_path:
            parent = parent[part]
        keys = [k for k, v in parent.items() if v is error.instance] if isinstance(parent, dict) else []
        where = _path(list(error.absolute_path) + keys[:1]) if len(keys) == 1 else path
        return where, "not allowed here (this model or variability type does not take it)"
    if error.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)' (?:was|were) unexpected", error.message)
        names = extra or [error.message]
        return path, f"unknown field(s) {', '.join(names)}"
    if error.validator == "required":
        missing = re.match(r"'([^']+)'", error.message)
        name = missing.group(1) if missing else error.message
        return _path(list(error.absolute_path) + [name]), "required field is missing"
    if error.validator == "oneOf" and error.validator_value and all(
            isinstance(s, dict) and set(s) == {"required"} for s in error.validator_value):
        options = " or ".join(s["required"][0] for s in error.validator_value)
        return path, f"give exactly one of {options}"
    return path, error.message


def validate_document(document: Any, source: str = "") -> None:
    """Validate a parsed sky-model document against the schema; raise SkyModelError."""
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        leaf_errors: list[jsonschema.ValidationError] = []
        for error in errors:
            # if/then/allOf wrappers: report their innermost causes, which name the field.
            stack = [error]
            while stack:
                current = stack.pop()
                if current.context and current.validator not in ("oneOf", "anyOf"):
                    stack.extend(current.context)
                else:
                    leaf_errors.append(current)
        messages = list(dict.fromkeys(_message(e, document) for e in leaf_errors))
        raise SkyModelError(messages, source)


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: dates stay strings, as in JSON, for one time parser."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def parse_document(text: str, source: str = "") -> Any:
    """JSON or YAML text -> document (YAML is a superset of JSON)."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise SkyModelError([("", f"not valid JSON/YAML: {exc}")], source) from None


def _time(value: Any, path: str, errors: list[tuple[str, str]]) -> float:
    try:
        return to_met(value)
    except ValueError as exc:
        errors.append((path, str(exc)))
        return 0.0


def _spectrum(doc: Mapping[str, Any]) -> Spectrum:
    parts = doc.get("components") or [doc]
    components = tuple(Component(model=c["model"], norm=float(c["norm"]), index=float(c.get("index", 0.0)),
                                 ecut=float(c.get("ecut", 0.0)), kT=float(c.get("kT", 0.0))) for c in parts)
    return Spectrum(components, float(doc.get("nh", 0.0)))


def _variability(doc: Mapping[str, Any] | None, path: str, errors: list[tuple[str, str]]) -> Variability:
    if not doc or doc["type"] == "constant":
        return Variability()
    kind = doc["type"]
    if kind == "periodic":
        period = float(doc["period"]) if "period" in doc else 1.0 / float(doc["frequency"])
        profile = doc.get("profile", "sine")
        pulses = profile if isinstance(profile, str) else [
            Pulse(float(p["phase"]), float(p["width"]), float(p.get("amplitude", 1.0))) for p in profile]
        epoch = _time(doc["epoch"], f"{path}.epoch", errors) if "epoch" in doc else 0.0
        return Periodic(period, epoch, float(doc.get("pulsed_fraction", 0.3)), pulses, float(doc.get("pdot", 0.0)))
    if kind in ("outburst", "flare"):
        return Outburst(_time(doc["peak_time"], f"{path}.peak_time", errors), float(doc["rise"]),
                        float(doc["decay"]), float(doc.get("quiescent", 0.001)), kind)
    bursts = [Burst(_time(b["time"], f"{path}.bursts[{i}].time", errors), float(b["amplitude"]),
                    float(b.get("rise", 1.0)), float(b.get("decay", 10.0)))
              for i, b in enumerate(doc["bursts"])]
    return Bursts(bursts)


def normalise_name(name: str) -> str:
    """Case-, space- and underscore-insensitive form of a source name."""
    return re.sub(r"[\s_]+", "", name.replace("\u2212", "-")).lower()


def public_date_of(text: str | None, first_start: float, path: str, errors: list[tuple[str, str]]) -> str | None:
    """'YYYY-MM-DD' / ISO date-time, or '+<N>d' after `first_start` (MET) -> ISO date-time UTC."""
    if text is None:
        return None
    relative = re.fullmatch(r"\+\s*(\d+(?:\.\d+)?)\s*d", text.strip())
    if relative:
        when = met_to_datetime(round(first_start)) + dt.timedelta(days=float(relative.group(1)))
        return when.replace(microsecond=0).isoformat()
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        errors.append((path, f"not an ISO date nor '+<N>d': {text!r}"))
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat()


def _member_id(doc: Mapping[str, Any], member: tuple[str, int, int], parent: tuple[str, str], path: str,
               used_ids: set[str], errors: list[tuple[str, str]]) -> str:
    """The id of an observation in its proposal, or of an exposure in its observation: given,
    or the parent's id + the 1-based position in `digits` digits; it must extend the parent's
    id and be unique. `member` is (kind, position, digits), `parent` (kind, id)."""
    kind, position, digits = member
    parent_kind, parent_id = parent
    member_id = doc.get("id", f"{parent_id}{position + 1:0{digits}d}")
    if not member_id.startswith(parent_id):
        errors.append((path, f"{kind} {member_id} does not belong to {parent_kind} {parent_id}"))
    if member_id in used_ids:
        errors.append((path, f"duplicate {kind} {member_id}"))
    used_ids.add(member_id)
    return member_id


def build_spec(document: Mapping[str, Any], source: str = "", resolver=None) -> SimulationSpec:
    """Validated document -> SimulationSpec (semantic checks; errors name the field)."""
    validate_document(document, source)
    errors: list[tuple[str, str]] = []
    sources: list[Source] = []
    seen_names: dict[str, int] = {}
    for i, doc in enumerate(document.get("sources", [])):
        key = normalise_name(doc["name"])
        if key in seen_names:
            errors.append((f"sources[{i}].name", f"duplicate of sources[{seen_names[key]}].name"))
        seen_names[key] = i
        sources.append(Source(doc["name"], float(doc["ra"]), float(doc["dec"]), _spectrum(doc["spectrum"]),
                              _variability(doc.get("variability"), f"sources[{i}].variability", errors)))
    by_name = {normalise_name(s.name): s for s in sources}

    proposals: list[ProposalPlan] = []
    used_ids: set[str] = set()
    for p, pdoc in enumerate(document["proposals"]):
        ppath = f"proposals[{p}]"
        pid = pdoc["id"]
        if pid in used_ids:
            errors.append((f"{ppath}.id", f"duplicate proposal {pid}"))
        used_ids.add(pid)
        observations: list[ObservationPlan] = []
        for o, odoc in enumerate(pdoc["observations"]):
            opath = f"{ppath}.observations[{o}]"
            obs_id = _member_id(odoc, ("ObsID", o, 3), ("proposal", pid), f"{opath}.id", used_ids, errors)
            ra, dec = odoc.get("ra"), odoc.get("dec")
            if (ra is None) != (dec is None):
                errors.append((f"{opath}.{'dec' if ra is not None else 'ra'}", "give both ra and dec, or neither"))
            if ra is None:
                known = by_name.get(normalise_name(odoc["target"]))
                if known is not None:
                    ra, dec = known.ra, known.dec
                elif resolver is not None:
                    try:
                        found = resolver.resolve(odoc["target"])
                        ra, dec = found.ra, found.dec
                    except LookupError as exc:
                        errors.append((f"{opath}.target", f"{exc}; give ra and dec"))
                else:
                    errors.append((f"{opath}.target", "position unknown; give ra and dec"))
            exposures: list[ExposurePlan] = []
            for e, edoc in enumerate(odoc["exposures"]):
                epath = f"{opath}.exposures[{e}]"
                exp_id = _member_id(edoc, ("ExpID", e, 2), ("observation", obs_id), f"{epath}.id", used_ids, errors)
                exposures.append(ExposurePlan(exp_id, _time(edoc["start"], f"{epath}.start", errors),
                                              float(edoc["duration"]), edoc.get("min_good_fraction"),
                                              tuple(edoc.get("payloads", PAYLOADS))))
            public = odoc.get("public_date", pdoc.get("public_date"))
            where = f"{opath}.public_date" if "public_date" in odoc else f"{ppath}.public_date"
            observations.append(ObservationPlan(
                obs_id, odoc["target"], float(ra or 0.0), float(dec or 0.0), float(odoc.get("roll", 0.0)),
                public_date_of(public, exposures[0].start, where, errors), tuple(exposures)))
        proposals.append(ProposalPlan(pid, pdoc["type"], pdoc.get("pi"), pdoc.get("pi_name"),
                                      pdoc.get("title", ""), tuple(observations)))
    if errors:
        raise SkyModelError(errors, source)
    return SimulationSpec(name=document.get("name", ""), seed=int(document.get("seed", 1)),
                          orbit=dict(document.get("orbit", {})), options=dict(document.get("simulation", {})),
                          sources=tuple(sources), proposals=tuple(proposals))


def load_simulation(path: str | Path, resolver=None) -> SimulationSpec:
    """Read, validate and interpret a sky-model file (JSON or YAML)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SkyModelError([("", f"cannot read: {exc.strerror}")], str(path)) from None
    return build_spec(parse_document(text, str(path)), str(path), resolver)
