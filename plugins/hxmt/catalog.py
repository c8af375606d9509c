"""The HXMT observation index (SQLite) and its search.

`ObservationIndex(path).rescan(archive_root)` scans the archive: new and changed exposures
(by fingerprint: file names, versions, sizes, mtimes) are read, vanished ones dropped,
unchanged ones kept without opening a file. A malformed or unreadable file is recorded with
its path and reason (`report.errors`, `index.errors()`) and its exposure left out; the scan
goes on. Observations (ObsID) are then rebuilt from their exposures and the proposal metadata
(`<proposal>/proposal.json`: type, PI, public date; absent -> public, type unknown).

`search(criteria, identity)` filters by any combination of source name (resolved through
`dataserver.names`: a row matches when its target name is the source or one of its aliases,
or when it points within `name_radius` deg of the source), date range, cone, proposal type,
proposal number, ObsID and PI; what `identity` may not see (proprietary data of another PI) is
excluded inside the query, before counting and paging. The result has the shape of
`dataserver.Instrument.search`: {"total", "rows", "columns", "offset", "limit"}.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jsonschema

from dataserver.names import NameNotFound, NameResolver, normalise
from dataserver.plugin import Identity, QueryError

from .archive import Archive, ArchiveError, Exposure, observation_metadata, proposal_dir_of
from .timeconv import met_to_iso, met_to_mjd, to_met

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_GRANT_ROLES = ("admin", "hxmt_team")
PROPOSAL_TYPES = ("Core", "GO", "ToO", "CAL", "DDT")
SORT_KEYS = {"start": "tstart", "obs_id": "obs_id", "target": "target_key", "ra": "ra", "dec": "dec",
             "exposure": "exposure", "public_date": "public_ts", "proposal": "proposal", "distance": "distance"}

SEARCH_PARAMETERS: Mapping[str, Mapping[str, Any]] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200,
             "description": "Source name (case and spaces ignored; aliases and the name resolver apply)."},
    "name_radius": {"type": "number", "exclusiveMinimum": 0, "maximum": 30, "default": 1.0, "unit": "deg",
                    "description": "With `name`: also match observations pointed within this angle of the source."},
    "start": {"type": ["string", "number"], "description": "Observations ending at or after this time (ISO UTC or MET s)."},
    "end": {"type": ["string", "number"], "description": "Observations starting at or before this time (ISO UTC or MET s)."},
    "ra": {"type": "number", "minimum": 0, "maximum": 360, "unit": "deg", "description": "Cone centre, J2000."},
    "dec": {"type": "number", "minimum": -90, "maximum": 90, "unit": "deg", "description": "Cone centre, J2000."},
    "radius": {"type": "number", "exclusiveMinimum": 0, "maximum": 180, "default": 1.0, "unit": "deg",
               "description": "Cone radius."},
    "proposal_type": {"enum": list(PROPOSAL_TYPES), "description": "Proposal type."},
    "proposal": {"type": "string", "pattern": "^[Pp][0-9]{7}$", "description": "Proposal number, e.g. P0101299."},
    "obs_id": {"type": "string", "pattern": "^[Pp][0-9]{10}$", "description": "Observation ID."},
    "pi": {"type": "string", "minLength": 1, "description": "PI account."},
    "sort": {"enum": list(SORT_KEYS), "default": "start", "description": "Sort key."},
    "order": {"enum": ["asc", "desc"], "default": "asc"},
    "offset": {"type": "integer", "minimum": 0, "default": 0},
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
}

RESULT_COLUMNS = (
    ("obs_id", None, "Observation ID"), ("proposal", None, "Proposal number"),
    ("proposal_type", None, "Proposal type"), ("pi", None, "PI account"), ("pi_name", None, "PI"),
    ("target", None, "Target name (OBJECT)"), ("ra", "deg", "Pointing right ascension (J2000)"),
    ("dec", "deg", "Pointing declination (J2000)"), ("start", "UTC", "Start of the first exposure"),
    ("stop", "UTC", "End of the last exposure"), ("start_mjd", "d", "Start, MJD (UTC)"),
    ("tstart", "s", "Start, HXMT MET"), ("tstop", "s", "Stop, HXMT MET"),
    ("exposure", "s", "Summed exposure durations (TSTOP - TSTART)"), ("n_exposures", None, "Number of exposures"),
    ("exp_ids", None, "Exposure IDs"), ("payloads", None, "Payloads with events"),
    ("public_date", "UTC", "End of the proprietary period (empty: public)"),
    ("proprietary", None, "Still proprietary now"), ("distance", "deg", "Angle from the searched position"),
)

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS exposures (
    exp_id TEXT PRIMARY KEY, dir TEXT NOT NULL, obs_id TEXT NOT NULL, proposal TEXT NOT NULL,
    proposal_dir TEXT NOT NULL, target TEXT, ra REAL, dec REAL, tstart REAL, tstop REAL,
    payloads TEXT, fingerprint TEXT NOT NULL, date_obs TEXT);
CREATE TABLE IF NOT EXISTS observations (
    obs_id TEXT PRIMARY KEY, proposal TEXT, proposal_type TEXT, pi TEXT, pi_name TEXT, title TEXT,
    target TEXT, target_key TEXT, ra REAL, dec REAL, tstart REAL, tstop REAL, exposure REAL,
    n_exposures INTEGER, exp_ids TEXT, payloads TEXT, public_date TEXT, public_ts REAL);
CREATE TABLE IF NOT EXISTS scan_errors (path TEXT, reason TEXT, scanned_at TEXT);
CREATE INDEX IF NOT EXISTS observations_time ON observations (tstart, tstop);
"""


@dataclass
class ScanReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    observations: int = 0


def default_index_path(settings) -> Path:
    """`XODA_HXMT_INDEX`, or `<data_dir>/hxmt_index.sqlite`."""
    value = getattr(settings, "hxmt_index", "")
    return Path(value).expanduser().resolve() if value else settings.data_path / "hxmt_index.sqlite"


def angular_distance(ra1: float, dec1: float, ra2: float, dec2: float) -> float | None:
    """Great-circle distance in degrees (haversine; None if an input is missing)."""
    if None in (ra1, dec1, ra2, dec2):
        return None
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def public_timestamp(public_date: str | None) -> float | None:
    """POSIX time of a public date, read exactly as `Identity.may_access` reads it."""
    if not public_date:
        return None
    released = dt.datetime.fromisoformat(public_date)
    if released.tzinfo is None:
        released = released.replace(tzinfo=dt.timezone.utc)
    return released.timestamp()


class ObservationIndex:
    """The SQLite index of one archive."""

    def __init__(self, path: str | Path, resolver: NameResolver | None = None,
                 grant_roles: Sequence[str] = DEFAULT_GRANT_ROLES):
        self.path = Path(path)
        self.resolver = resolver if resolver is not None else NameResolver()
        self.grant_roles = tuple(grant_roles)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(_DDL)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        db.create_function("angdist", 4, angular_distance, deterministic=True)
        return db

    # ------------------------------------------------------------------ scanning ----
    def rescan(self, archive_root: str | Path) -> ScanReport:
        archive = Archive(archive_root)
        report = ScanReport()
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with closing(self._connect()) as db, db:
            known = {row["dir"]: row for row in db.execute("SELECT * FROM exposures")}
            seen: set[str] = set()
            for path in archive.exposure_dirs():
                key = str(path)
                try:
                    exposure = archive.load_exposure(path)
                    fingerprint = exposure.fingerprint()
                    old = known.get(key)
                    if old is not None and old["fingerprint"] == fingerprint:
                        report.unchanged += 1
                        seen.add(key)
                        continue
                    row = self._exposure_row(exposure, fingerprint)
                except ArchiveError as exc:
                    report.errors.append((exc.path, exc.reason))
                    log.warning("skipping exposure %s: %s", path.name, exc)
                    continue
                seen.add(key)
                db.execute("DELETE FROM exposures WHERE exp_id = ? OR dir = ?", (row["exp_id"], key))
                db.execute(f"INSERT INTO exposures ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                           tuple(row.values()))
                (report.updated if key in known else report.added).append(exposure.exp_id)
            for key, old in known.items():
                if key not in seen:
                    db.execute("DELETE FROM exposures WHERE dir = ?", (key,))
                    if not any(old["exp_id"] in lst for lst in (report.added, report.updated)):
                        report.removed.append(old["exp_id"])
            report.observations = self._rebuild_observations(db, archive, report)
            db.execute("DELETE FROM scan_errors")
            db.executemany("INSERT INTO scan_errors VALUES (?, ?, ?)", [(p, r, now) for p, r in report.errors])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('archive_root', ?)", (str(Path(archive_root).resolve()),))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('scanned_at', ?)", (now,))
        log.info("HXMT index: %d added, %d updated, %d removed, %d unchanged, %d errors, %d observations",
                 len(report.added), len(report.updated), len(report.removed), report.unchanged,
                 len(report.errors), report.observations)
        return report

    @staticmethod
    def _exposure_row(exposure: Exposure, fingerprint: str) -> dict[str, Any]:
        if not exposure.payloads:
            raise ArchiveError(exposure.path, "no event file (HE-Evt, ME-Evt or LE-Evt)")
        facts = exposure.header_facts()
        try:
            tstart, tstop = float(facts["TSTART"]), float(facts["TSTOP"])
            ra = facts.get("RA_OBJ", facts.get("RA_PNT"))
            dec = facts.get("DEC_OBJ", facts.get("DEC_PNT"))
            ra, dec = (float(ra), float(dec)) if ra is not None and dec is not None else (None, None)
        except (TypeError, ValueError) as exc:
            raise ArchiveError(exposure.path, f"bad TSTART/TSTOP/RA_OBJ/DEC_OBJ keyword ({exc})") from None
        if not tstop > tstart:
            raise ArchiveError(exposure.path, f"TSTOP ({tstop}) is not after TSTART ({tstart})")
        return {"exp_id": exposure.exp_id, "dir": str(exposure.path), "obs_id": exposure.obs_id,
                "proposal": exposure.proposal_id, "proposal_dir": str(proposal_dir_of(exposure)),
                "target": str(facts.get("OBJECT", "")).strip(), "ra": ra, "dec": dec, "tstart": tstart,
                "tstop": tstop, "payloads": ",".join(exposure.payloads), "fingerprint": fingerprint,
                "date_obs": str(facts.get("DATE-OBS", ""))}

    def _rebuild_observations(self, db: sqlite3.Connection, archive: Archive, report: ScanReport) -> int:
        groups: dict[str, list[sqlite3.Row]] = {}
        for row in db.execute("SELECT * FROM exposures ORDER BY tstart"):
            groups.setdefault(row["obs_id"], []).append(row)
        proposals: dict[str, dict | None] = {}
        db.execute("DELETE FROM observations")
        for obs_id, rows in groups.items():
            proposal_dir = rows[0]["proposal_dir"]
            if proposal_dir not in proposals:
                try:
                    proposals[proposal_dir] = archive.proposal_info(Path(proposal_dir))
                except ArchiveError as exc:
                    report.errors.append((exc.path, exc.reason))
                    proposals[proposal_dir] = None
            meta = observation_metadata(proposals[proposal_dir], obs_id)
            public_date = meta.get("public_date")
            try:
                public_ts = public_timestamp(public_date)
            except ValueError:
                report.errors.append((str(Path(proposal_dir) / "proposal.json"),
                                      f"bad public_date {public_date!r} for {obs_id}"))
                public_date, public_ts = None, None
            first = rows[0]
            target = meta.get("target") or first["target"]
            payloads = sorted({p for r in rows for p in r["payloads"].split(",") if p})
            db.execute("INSERT INTO observations VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (
                obs_id, first["proposal"], meta.get("type"), meta.get("pi"), meta.get("pi_name"),
                meta.get("title"), target, normalise(target), first["ra"], first["dec"],
                min(r["tstart"] for r in rows), max(r["tstop"] for r in rows),
                sum(r["tstop"] - r["tstart"] for r in rows), len(rows),
                json.dumps([r["exp_id"] for r in rows]), ",".join(payloads), public_date, public_ts))
        return len(groups)

    def errors(self) -> list[tuple[str, str]]:
        """Files the last scan could not use: (path, reason)."""
        with closing(self._connect()) as db:
            return [(r["path"], r["reason"]) for r in db.execute("SELECT path, reason FROM scan_errors")]

    def find_exposures(self, *, exp_ids: Sequence[str] | None = None, ra: float | None = None,
                       dec: float | None = None, radius: float | None = None, start: float | None = None,
                       end: float | None = None) -> list[dict[str, Any]]:
        """Exposures by ID, or pointed within `radius` deg of (ra, dec) and overlapping
        [start, end] (MET s), with their owner and public date, whoever may see them (plans
        declare the units they read; the dispatcher enforces data rights). Ordered by time."""
        where, args = [], []
        if exp_ids is not None:
            where.append(f"e.exp_id IN ({', '.join('?' * len(exp_ids))})")
            args.extend(exp_ids)
        if ra is not None and dec is not None:
            where.append("angdist(e.ra, e.dec, ?, ?) <= ?")
            args.extend([ra, dec, radius if radius is not None else 1.0])
        if start is not None:
            where.append("e.tstop >= ?")
            args.append(start)
        if end is not None:
            where.append("e.tstart <= ?")
            args.append(end)
        condition = " AND ".join(where) or "1"
        with closing(self._connect()) as db:
            rows = db.execute("SELECT e.*, o.pi AS owner, o.public_date AS public_date FROM exposures e "
                              f"LEFT JOIN observations o ON o.obs_id = e.obs_id WHERE {condition} "
                              "ORDER BY e.tstart, e.exp_id", args).fetchall()
        return [{"exp_id": r["exp_id"], "dir": r["dir"], "obs_id": r["obs_id"], "target": r["target"],
                 "ra": r["ra"], "dec": r["dec"], "tstart": r["tstart"], "tstop": r["tstop"],
                 "payloads": [p for p in (r["payloads"] or "").split(",") if p], "owner": r["owner"],
                 "public_date": r["public_date"]} for r in rows]

    def exposure_access(self, exp_id: str) -> dict[str, Any]:
        """Owner, public date and location of an exposure (for `dataserver.Unit`)."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT e.exp_id, e.dir, e.obs_id, o.pi, o.public_date FROM exposures e "
                             "LEFT JOIN observations o ON o.obs_id = e.obs_id WHERE e.exp_id = ?",
                             (exp_id,)).fetchone()
        if row is None:
            raise KeyError(f"no exposure {exp_id} in the HXMT index")
        return {"exp_id": row["exp_id"], "path": row["dir"], "obs_id": row["obs_id"], "owner": row["pi"],
                "public_date": row["public_date"]}

    # ------------------------------------------------------------------- search ----
    def search(self, criteria: Mapping[str, Any], identity: Identity | None = None,
               now: dt.datetime | None = None, payload: str | None = None) -> dict[str, Any]:
        """Observations matching `criteria` that `identity` may see (with data of `payload`
        only, when given: a payload plugin lists only observations it can reduce)."""
        criteria = normalise_criteria(criteria)
        identity = identity or Identity()
        now = now or dt.datetime.now(dt.timezone.utc)
        where, args = [], []
        distance_from: tuple[float, float] | None = None
        if "name" in criteria:
            resolved = None
            try:
                resolved = self.resolver.resolve(criteria["name"])
            except NameNotFound as exc:
                not_found = exc
            keys = resolved.keys() if resolved else {normalise(criteria["name"])}
            clause = f"target_key IN ({', '.join('?' * len(keys))})"
            args.extend(sorted(keys))
            if resolved:
                clause = f"({clause} OR angdist(ra, dec, ?, ?) <= ?)"
                args.extend([resolved.ra, resolved.dec, criteria["name_radius"]])
                distance_from = (resolved.ra, resolved.dec)
            elif not self._target_exists(keys):
                raise QueryError("name", str(not_found))
            where.append(clause)
        if "ra" in criteria:
            where.append("angdist(ra, dec, ?, ?) <= ?")
            args.extend([criteria["ra"], criteria["dec"], criteria["radius"]])
            distance_from = (criteria["ra"], criteria["dec"])
        if "start" in criteria:
            where.append("tstop >= ?")
            args.append(criteria["start"])
        if "end" in criteria:
            where.append("tstart <= ?")
            args.append(criteria["end"])
        if payload is not None:
            where.append("(',' || payloads || ',') LIKE ?")
            args.append(f"%,{payload},%")
        for key, column in (("proposal_type", "proposal_type"), ("proposal", "proposal"), ("obs_id", "obs_id"),
                            ("pi", "pi")):
            if key in criteria:
                where.append(f"UPPER({column}) = UPPER(?)")
                args.append(criteria[key])
        # Data rights inside the query, before counting and paging (Identity.may_access).
        granted = bool(set(identity.roles) & set(self.grant_roles))
        where.append("(public_ts IS NULL OR public_ts <= ? OR (pi IS NOT NULL AND pi = ?) OR ?)")
        args.extend([now.timestamp(), identity.subject, int(granted)])
        distance_sql = "angdist(ra, dec, ?, ?)" if distance_from else "NULL"
        distance_args = list(distance_from) if distance_from else []
        sort = SORT_KEYS[criteria["sort"]]
        if sort == "distance" and not distance_from:
            raise QueryError("sort", "sorting by distance needs a cone (ra, dec) or a name")
        order = "DESC" if criteria["order"] == "desc" else "ASC"
        condition = " AND ".join(where)
        with closing(self._connect()) as db:
            total = db.execute(f"SELECT COUNT(*) FROM observations WHERE {condition}", args).fetchone()[0]
            rows = db.execute(
                f"SELECT *, {distance_sql} AS distance FROM observations WHERE {condition} "
                f"ORDER BY {sort} {order}, obs_id {order} LIMIT ? OFFSET ?",
                distance_args + args + [criteria["limit"], criteria["offset"]]).fetchall()
        return {"total": total, "offset": criteria["offset"], "limit": criteria["limit"],
                "rows": [self._row(r, now) for r in rows],
                "columns": [{"name": n, "unit": u, "description": d} for n, u, d in RESULT_COLUMNS]}

    def _target_exists(self, keys: Iterable[str]) -> bool:
        keys = list(keys)
        with closing(self._connect()) as db:
            return db.execute(f"SELECT 1 FROM observations WHERE target_key IN ({', '.join('?' * len(keys))}) "
                              "LIMIT 1", keys).fetchone() is not None

    @staticmethod
    def _row(row: sqlite3.Row, now: dt.datetime) -> dict[str, Any]:
        public_ts = row["public_ts"]
        return {"obs_id": row["obs_id"], "proposal": row["proposal"], "proposal_type": row["proposal_type"],
                "pi": row["pi"], "pi_name": row["pi_name"], "target": row["target"], "ra": row["ra"],
                "dec": row["dec"], "start": met_to_iso(row["tstart"], precision=0),
                "stop": met_to_iso(row["tstop"], precision=0), "start_mjd": float(met_to_mjd(row["tstart"])),
                "tstart": row["tstart"], "tstop": row["tstop"], "exposure": row["exposure"],
                "n_exposures": row["n_exposures"], "exp_ids": json.loads(row["exp_ids"]),
                "payloads": row["payloads"].split(",") if row["payloads"] else [],
                "public_date": row["public_date"],
                "proprietary": public_ts is not None and public_ts > now.timestamp(),
                "distance": row["distance"]}


def normalise_criteria(criteria: Mapping[str, Any]) -> dict[str, Any]:
    """Validate search criteria (QueryError naming the parameter) and fill defaults; times
    become MET seconds."""
    if not isinstance(criteria, Mapping):
        raise QueryError("criteria", "must be an object")
    unknown = sorted(set(criteria) - set(SEARCH_PARAMETERS))
    if unknown:
        raise QueryError(unknown[0], f"unknown search parameter (known: {', '.join(SEARCH_PARAMETERS)})")
    for key, value in criteria.items():
        schema = {k: v for k, v in SEARCH_PARAMETERS[key].items() if k != "unit"}
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(value))
        if errors:
            raise QueryError(key, errors[0].message)
    out = {k: v["default"] for k, v in SEARCH_PARAMETERS.items() if "default" in v}
    out.update({k: v for k, v in criteria.items() if v is not None})
    if ("ra" in out) != ("dec" in out):
        raise QueryError("dec" if "ra" in out else "ra", "a cone needs both ra and dec")
    # `radius` only matters with ra/dec: the dispatcher fills its default into every search,
    # so a name-only search carries it too.
    for key in ("start", "end"):
        if key in out:
            try:
                out[key] = to_met(out[key])
            except ValueError as exc:
                raise QueryError(key, str(exc)) from None
    if "start" in out and "end" in out and out["end"] < out["start"]:
        raise QueryError("end", "the end of the date range is before its start")
    for key in ("proposal", "obs_id"):
        if key in out:
            out[key] = out[key].upper()
    return out
