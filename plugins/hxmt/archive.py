"""Read an HXMT Level-1 archive: real HXMTDAS 1L trees and xoda's simulated ones alike.

Layout (reference §1): `<proposal P+7>/<ObsID P+10>/<ExpID P+12>-<YYYYMMDD>-NN-NN/` with
`HE/ ME/ LE/ ACS/ AUX/`; also the IHEP cluster layout `1L/A{YY}/<proposal>/<ObsID>/<exposure>`,
since exposure directories are found wherever they sit below the root. Within an exposure the
highest `V{n}` of each file kind wins. Att, Orbit and EHK missing from the exposure are looked
up at ObsID level (`<ObsID dir>/ACS/HXMT_<ObsID>_Att_...`, `<ObsID dir>/AUX/HXMT_<ObsID>_EHK_...`),
hxmtpy's fallback. The simulator's `SIM/` directory and `proposal.json` are not data files:
the file scan ignores them (the catalogue reads `proposal.json` separately).

Event files are read through `fitsio.FitsTable` - memory-mapped, in chunks - never whole.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from .fitsio import FitsTable
from .l1files import EXPOSURE_DIR_PATTERN, PROPOSAL_FILE, SUBDIR, TRUTH_DIR, parse_file_name

log = logging.getLogger(__name__)

OBSID_LEVEL_KINDS = ("Att", "Orbit", "EHK")
EVENT_KINDS = {"HE": "HE-Evt", "ME": "ME-Evt", "LE": "LE-Evt"}
HEADER_KEYS = ("OBJECT", "RA_OBJ", "DEC_OBJ", "RA_PNT", "DEC_PNT", "TSTART", "TSTOP", "DATE-OBS", "DATE-END",
               "OBS_ID", "EXP_ID", "TIMESYS", "MJDREFI", "MJDREFF", "TELESCOP", "OBS_MODE", "PA_PNT")


class ArchiveError(ValueError):
    """A problem with one archive file or exposure; names the path."""

    def __init__(self, path: Path | str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class FileRef:
    kind: str
    path: Path
    version: int
    size: int
    mtime_ns: int

    def identity(self) -> tuple[str, int, int, int]:
        return (self.path.name, self.version, self.size, self.mtime_ns)


@dataclass
class Exposure:
    """One exposure directory and its newest file of each kind."""

    exp_id: str
    obs_id: str
    proposal_id: str
    path: Path
    date: str                          # YYYYMMDD of the directory name
    files: dict[str, FileRef] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def payloads(self) -> tuple[str, ...]:
        return tuple(p for p, kind in EVENT_KINDS.items() if kind in self.files)

    def file(self, kind: str) -> Path:
        try:
            return self.files[kind].path
        except KeyError:
            raise ArchiveError(self.path, f"no {kind} file in exposure {self.name}") from None

    def fingerprint(self) -> str:
        """sha256 of (name, version, size, mtime) of every file: changes when any data changes."""
        digest = hashlib.sha256()
        for kind in sorted(self.files):
            digest.update(json.dumps([kind, *self.files[kind].identity()]).encode())
        return digest.hexdigest()

    def header_facts(self) -> dict[str, Any]:
        """OBJECT, RA_OBJ/DEC_OBJ, TSTART/TSTOP, DATE-OBS, ... from the primary and first
        extension headers of the event files (then EHK, Att), checking each file's length."""
        facts: dict[str, Any] = {}
        for kind in ("HE-Evt", "ME-Evt", "LE-Evt", "EHK", "Att", "Orbit"):
            if kind not in self.files:
                continue
            headers = read_headers(self.files[kind].path, 2)
            for header in headers:
                for key in HEADER_KEYS:
                    if key in header and key not in facts:
                        facts[key] = header[key]
            if {"OBJECT", "TSTART", "TSTOP"} <= facts.keys():
                break
        missing = [k for k in ("TSTART", "TSTOP") if k not in facts]
        if missing:
            raise ArchiveError(self.path, f"no {' or '.join(missing)} keyword in any file header")
        return facts

    def table(self, kind: str, hdu: str | int = 1) -> FitsTable:
        return FitsTable(self.file(kind), hdu)

    def events(self, payload: str) -> FitsTable:
        """The payload's event list, memory-mapped (use as a context manager)."""
        return self.table(EVENT_KINDS[payload.upper()], 1)

    def iter_events(self, payload: str, columns: Sequence[str], chunk_rows: int = 1_000_000) -> Iterator[dict]:
        """Chunks of event columns: dicts of numpy arrays of at most `chunk_rows` rows."""
        with self.events(payload) as table:
            yield from table.iter_chunks(columns, chunk_rows)


def read_headers(path: Path, count: int) -> list[fits.Header]:
    """The first `count` headers of a FITS file, after checking that the file holds the data
    those headers announce (a truncated file is an error, not a short read later)."""
    try:
        with warnings.catch_warnings():
            # astropy warns about truncation; this function reports it as an ArchiveError.
            warnings.simplefilter("ignore", AstropyUserWarning)
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                headers = []
                size = path.stat().st_size
                for index in range(count):
                    try:
                        hdu = hdul[index]
                    except IndexError:
                        break
                    info = hdu.fileinfo()
                    if info["datLoc"] + info["datSpan"] > size:
                        raise ArchiveError(path, f"truncated: HDU {index} needs {info['datLoc'] + info['datSpan']} "
                                                 f"bytes, the file has {size}")
                    headers.append(hdu.header.copy())
                return headers
    except ArchiveError:
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise ArchiveError(path, f"not a readable FITS file ({exc})") from None


class Archive:
    """An archive root; `exposures()` scans it (cheap: directory listings only)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def exposure_dirs(self) -> Iterator[Path]:
        """Every exposure directory below the root, in sorted order, at any depth."""
        if not self.root.is_dir():
            return
        stack = [self.root]
        while stack:
            directory = stack.pop()
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name, reverse=True)
            except OSError as exc:
                log.warning("cannot list %s: %s", directory, exc)
                continue
            for entry in entries:
                if not entry.is_dir(follow_symlinks=True) or entry.name.startswith("."):
                    continue
                if EXPOSURE_DIR_PATTERN.match(entry.name):
                    yield Path(entry.path)
                elif entry.name not in SUBDIR.values() and entry.name != TRUTH_DIR:
                    stack.append(Path(entry.path))

    def exposures(self) -> list[Exposure]:
        found = [self.load_exposure(path) for path in self.exposure_dirs()]
        return sorted(found, key=lambda e: (e.exp_id, e.name))

    def exposure(self, exp_id: str) -> Exposure:
        for path in self.exposure_dirs():
            if path.name.split("-")[0] == exp_id or path.name == exp_id:
                return self.load_exposure(path)
        raise KeyError(f"no exposure {exp_id} in {self.root}")

    @staticmethod
    def load_exposure(path: Path) -> Exposure:
        match = EXPOSURE_DIR_PATTERN.match(path.name)
        if not match:
            raise ArchiveError(path, "not an exposure directory (<ExpID>-<YYYYMMDD>-NN-NN)")
        exp_id = match.group("exp_id")
        obs_id, proposal_id = exp_id[:11], exp_id[:8]
        exposure = Exposure(exp_id, obs_id, proposal_id, path, match.group("date"))
        _collect(exposure, path, exp_id)
        obs_dir = path.parent
        if obs_dir.name == obs_id:
            missing = [k for k in OBSID_LEVEL_KINDS if k not in exposure.files]
            if missing:
                _collect(exposure, obs_dir, obs_id, only=missing)
        return exposure

    def proposal_info(self, proposal_dir: Path) -> dict[str, Any] | None:
        """The proposal.json sidecar of a proposal directory, or None; raises ArchiveError if
        it exists but cannot be read."""
        path = proposal_dir / PROPOSAL_FILE
        if not path.exists():
            return None
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ArchiveError(path, f"unreadable proposal metadata ({exc})") from None
        if not isinstance(document, dict) or not isinstance(document.get("observations", {}), dict):
            raise ArchiveError(path, "proposal metadata must be an object with an 'observations' object")
        return document


def _collect(exposure: Exposure, directory: Path, file_id: str, only: Sequence[str] | None = None) -> None:
    """Add the newest file of each kind found in `directory`'s payload sub-directories."""
    for sub in sorted(set(SUBDIR.values())):
        folder = directory / sub
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            parsed = parse_file_name(entry.name)
            if parsed is None or not entry.is_file():
                continue
            if parsed["id"] != file_id:
                log.debug("ignoring %s: belongs to %s, not %s", entry.path, parsed["id"], file_id)
                continue
            kind = parsed["kind"]
            if only is not None and kind not in only:
                continue
            current = exposure.files.get(kind)
            if current is None or parsed["version"] > current.version:
                stat = entry.stat()
                exposure.files[kind] = FileRef(kind, Path(entry.path), parsed["version"], stat.st_size,
                                               stat.st_mtime_ns)


def proposal_dir_of(exposure: Exposure) -> Path:
    """The proposal directory of an exposure in the standard layout (its grandparent)."""
    return exposure.path.parent.parent


def observation_metadata(info: Mapping[str, Any] | None, obs_id: str) -> dict[str, Any]:
    """Proposal-level facts merged with the observation's own entry of proposal.json."""
    if not info:
        return {}
    merged = {key: info.get(key) for key in ("type", "pi", "pi_name", "title")}
    merged.update({k: v for k, v in (info.get("observations", {}).get(obs_id) or {}).items() if v is not None})
    return merged
