"""`xoda sim`: build an HXMT Level-1 archive from a sky-model file, or the demo archive.

    xoda sim SKYMODEL.yaml [-o DIR] [--workers N] [--version N]
    xoda sim --demo [--if-absent] [--force] [-o DIR]
    xoda sim --demo --print-spec > demo.yaml

The archive goes to `XODA_ARCHIVE_DIR` (default `<XODA_DATA_DIR>/archive`) unless `-o` says
otherwise; the observation index is rebuilt afterwards (`XODA_HXMT_INDEX` for the service's
archive, `<DIR>/hxmt_index.sqlite` for another directory, or `--index`).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from client.cli import EXIT_BAD_INPUT, EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sim", help="simulate an HXMT Level-1 archive (sky model or demo)",
        description="Simulate HXMT Level-1 exposures (HE, ME, LE events, housekeeping, attitude, orbit, "
                    "EHK) from a sky-model file (JSON or YAML), or build the demo archive, then index them.")
    parser.add_argument("skymodel", nargs="?", help="sky-model file (JSON or YAML); see the README")
    parser.add_argument("--demo", action="store_true", help="build the embedded demo archive")
    parser.add_argument("--if-absent", action="store_true",
                        help="with --demo: do nothing when the archive already holds exposures and is indexed")
    parser.add_argument("--force", action="store_true", help="with --demo: replace an existing archive")
    parser.add_argument("--print-spec", action="store_true", help="with --demo: print the demo sky model (JSON) and exit")
    parser.add_argument("-o", "--output", help="archive directory (default: XODA_ARCHIVE_DIR)")
    parser.add_argument("--index", help="observation index file to (re)build")
    parser.add_argument("--no-index", action="store_true", help="do not (re)build the observation index")
    parser.add_argument("--workers", type=int, default=0, help="parallel processes (default: one per core)")
    parser.add_argument("--version", type=int, default=1, help="file version V{n} to write (default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the client never needs the simulator unless asked to simulate.
    from dataserver import Settings
    from dataserver.names import NameResolver
    from plugins.hxmt.catalog import default_index_path
    from plugins.hxmt.demo import demo_document
    from plugins.hxmt.skymodel import SkyModelError, build_spec, load_simulation

    settings = Settings.from_env()
    if args.demo == bool(args.skymodel):
        print("xoda sim: give a sky-model file or --demo (not both)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.print_spec:
        if not args.demo:
            print("xoda sim: --print-spec goes with --demo", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(json.dumps(demo_document(), indent=1))
        return EXIT_OK
    archive = Path(args.output).expanduser().resolve() if args.output else settings.archive_path
    if args.index:
        index_path = Path(args.index).expanduser().resolve()
    elif archive == settings.archive_path:
        index_path = default_index_path(settings)
    else:
        index_path = archive / "hxmt_index.sqlite"
    resolver = NameResolver.from_settings(settings)
    workers = args.workers if args.workers > 0 else settings.worker_count

    try:
        if args.demo:
            stale = stale_reason(archive) if args.if_absent else None
            if stale:
                # An archive of an older simulator no longer holds the truth it would write.
                print(f"xoda sim: rebuilding the demo archive {archive}: {stale}", flush=True)
            elif _has_exposures(archive):
                if args.if_absent and (args.no_index or index_path.exists()):
                    print(f"xoda sim: the archive {archive} already exists; nothing to do")
                    return EXIT_OK
                if args.if_absent:
                    return _index(archive, index_path, resolver)
                if not args.force:
                    print(f"xoda sim: {archive} already holds an archive; use --force to replace it "
                          "or --if-absent to keep it", file=sys.stderr)
                    return EXIT_BAD_INPUT
            spec = build_spec(demo_document(), "demo", resolver)
        else:
            spec = load_simulation(args.skymodel, resolver)
    except SkyModelError as exc:
        print(f"xoda sim: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    started = time.monotonic()
    target = archive
    if args.demo:
        # Build next to the final place and move it in at the end: an interrupted build never
        # leaves a half archive that --if-absent would take for a complete one.
        target = archive.with_name(f".{archive.name}.partial")
        shutil.rmtree(target, ignore_errors=True)
    from plugins.hxmt.simulate import simulate_archive

    count = len([e for p in spec.proposals for o in p.observations for e in o.exposures])
    print(f"xoda sim: simulating {count} exposures into {archive} with {workers} process(es)", flush=True)
    truths = simulate_archive(spec, target, workers=workers, version=args.version,
                              on_exposure=lambda t: print(_summary(t), flush=True))
    if args.demo:
        if archive.exists():
            shutil.rmtree(archive)
        archive.parent.mkdir(parents=True, exist_ok=True)
        target.rename(archive)
    size = sum(f.stat().st_size for f in archive.rglob("*") if f.is_file())
    events = sum(v["written"] for t in truths for v in t["events"].values())
    print(f"xoda sim: {len(truths)} exposures, {events:,} events, {size / 1e6:.0f} MB "
          f"in {time.monotonic() - started:.1f} s")
    if args.no_index:
        return EXIT_OK
    return _index(archive, index_path, resolver)


def stale_reason(archive: Path) -> str | None:
    """Why a simulated archive is out of date (its truth written by another simulator or
    response version than this one), or None."""
    from plugins.hxmt.response import RESPONSE_VERSION
    from plugins.hxmt.simulate import SIMULATOR_VERSION

    for truth_path in sorted(archive.glob("*/*/*/SIM/truth.json"))[:1]:
        try:
            truth = json.loads(truth_path.read_text())
        except (OSError, ValueError):
            return f"{truth_path} cannot be read"
        for name, current in (("simulator_version", SIMULATOR_VERSION),
                              ("response_version", RESPONSE_VERSION)):
            if truth.get(name) != current:
                return f"it was written by {name} {truth.get(name)}, this is {current}"
    return None


def _index(archive: Path, index_path: Path, resolver) -> int:
    from plugins.hxmt.catalog import ObservationIndex

    report = ObservationIndex(index_path, resolver).rescan(archive)
    print(f"xoda sim: indexed {report.observations} observations in {index_path} "
          f"({len(report.added)} exposures added, {len(report.updated)} updated, "
          f"{len(report.removed)} removed, {report.unchanged} unchanged)")
    for path, reason in report.errors:
        print(f"xoda sim: skipped {path}: {reason}", file=sys.stderr)
    return EXIT_OK


def _has_exposures(archive: Path) -> bool:
    from plugins.hxmt.archive import Archive

    return next(iter(Archive(archive).exposure_dirs()), None) is not None


def _summary(truth: dict) -> str:
    events = ", ".join(f"{p} {v['written']:,}" for p, v in truth["events"].items())
    good = truth["good_time"].get("HE") or next(iter(truth["good_time"].values()))
    return (f"  {truth['exposure_dir']} {truth['target']['name']}: {truth['duration']:.0f} s, "
            f"good {good['total']:.0f} s; events {events}")
