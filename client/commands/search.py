"""`xoda search [--instrument I] --name Crab --from 2018-01-01 [--to ...] [--CRITERION VALUE]`:
observations in the archives, as a table.

The criteria come from each instrument's search schema (`xoda describe INSTRUMENT`); `--from`
and `--to` stand for the time-range criteria whatever their names there (`start`/`end`,
`T1`/`T2`). Without --instrument every instrument with a search that takes the given criteria
is asked.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from client.cli import EXIT_BAD_INPUT, EXIT_OK
from client.commands.common import (EXIT_HELP, SERVER_HELP, add_generic_parameter_option,
                                    add_parameter_options, collect_parameters, connect,
                                    from_server_or_help,
                                    converter, print_json, report_errors, server_options,
                                    undeclared_parameters)

FROM_NAMES = ("start", "T1", "from", "begin", "tstart")
TO_NAMES = ("end", "T2", "to", "stop", "tstop")
FIXED_OPTIONS = ("--url", "--token", "--instrument", "--from", "--to", "--columns", "--json",
                 "--param", "--help")


def _add_fixed_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-h", "--help", action="store_true",
                        help="show this help, with the search criteria of the server, and exit")
    parser.add_argument("-i", "--instrument", action="append", default=[],
                        help="search this instrument (repeatable; default: all with a search)")
    parser.add_argument("--from", dest="time_from", metavar="TIME",
                        help="observations ending at or after TIME (ISO 8601 UTC, e.g. 2018-01-01)")
    parser.add_argument("--to", dest="time_to", metavar="TIME",
                        help="observations starting at or before TIME")
    parser.add_argument("--columns", help="comma-separated columns to show (default: all)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    add_generic_parameter_option(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search", help="search the observation archives",
        description=__doc__.split("\n\n")[1] + " " + SERVER_HELP,
        epilog="Example: xoda search --name Crab --from 2018-01-01. " + EXIT_HELP,
        parents=[server_options()], add_help=False, allow_abbrev=False)
    _add_fixed_options(parser)
    parser.set_defaults(func=run, parser=parser, takes_parameters=True)


def run(args: argparse.Namespace) -> int:
    return report_errors("search", lambda: _search(args))


def _time_name(properties: dict, candidates: tuple[str, ...]) -> str | None:
    return next((name for name in candidates if name in properties), None)


def _search(args: argparse.Namespace) -> int:
    dispatcher = connect(args)
    instruments = from_server_or_help(args, dispatcher.instruments, "search criteria")
    if instruments is None:
        return EXIT_OK
    chosen = args.instrument or [row["name"] for row in instruments if row["search"]]
    schemas = {}
    for name in chosen:
        record = dispatcher.instrument_info(name)
        if record.get("search") is None:
            print(f"xoda search: instrument {name!r} offers no observation search", file=sys.stderr)
            return EXIT_BAD_INPUT
        schemas[name] = record["search"]["schema"]
    if not schemas:
        print("xoda search: no instrument of this server offers an observation search",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    union = {"properties": {}}
    for schema in schemas.values():
        for key, fragment in schema.get("properties", {}).items():
            union["properties"].setdefault(key, fragment)
    parser = argparse.ArgumentParser(prog="xoda search", add_help=False, allow_abbrev=False,
                                     parents=[server_options()],
                                     description=args.parser.description, epilog=EXIT_HELP)
    _add_fixed_options(parser)
    destinations = add_parameter_options(parser, union, "search criteria (" + ", ".join(schemas)
                                         + ")", reserved=FIXED_OPTIONS)
    if args.help:
        parser.print_help()
        return EXIT_OK
    parsed, undeclared = parser.parse_known_args(args.extra, namespace=argparse.Namespace(**{
        k: v for k, v in vars(args).items() if k != "extra"}))
    given = {**undeclared_parameters(undeclared, parser),
             **collect_parameters(parsed, destinations, union, parser)}

    results: dict[str, Any] = {}
    for name, schema in schemas.items():
        properties = schema.get("properties", {})
        criteria = dict(given)
        unknown = sorted(set(criteria) - set(properties))
        for value, candidates, option in ((args.time_from, FROM_NAMES, "--from"),
                                          (args.time_to, TO_NAMES, "--to")):
            target = _time_name(properties, candidates)
            if value is not None and target is None:
                unknown.append(option)
            elif value is not None:
                # Read as the criterion's own option would be (HXMT's start/end also take
                # MET seconds, a number).
                try:
                    criteria[target] = converter(properties[target])(value)
                except argparse.ArgumentTypeError as exc:
                    parser.error(f"{option}: {exc}")
        if unknown:
            if args.instrument:
                print(f"xoda search: {name} has no search criterion {', '.join(unknown)} "
                      f"(it has: {', '.join(properties)})", file=sys.stderr)
                return EXIT_BAD_INPUT
            print(f"xoda search: skipping {name}: no criterion {', '.join(unknown)}",
                  file=sys.stderr)
            continue
        results[name] = dispatcher.search(name, **criteria)
    if not results:
        print("xoda search: no instrument takes these criteria", file=sys.stderr)
        return EXIT_BAD_INPUT
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    if args.json:
        print_json({name: {"total": table.meta.get("total"), "rows": _rows(table, columns)}
                    for name, table in results.items()})
        return EXIT_OK
    for name, table in results.items():
        shown = table[[c for c in columns if c in table.colnames]] if columns else table
        print(f"{name}: {len(table)} observation{'s' if len(table) != 1 else ''}"
              f" (of {table.meta.get('total', len(table))} matching)")
        if len(table):
            for line in shown.pformat(max_lines=-1, max_width=-1):
                print("  " + line)
    return EXIT_OK


def _plain(value: Any) -> Any:
    if np.ma.is_masked(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _rows(table, columns: list[str] | None) -> list[dict[str, Any]]:
    names = [c for c in (columns or table.colnames) if c in table.colnames]
    return [{name: _plain(row[name]) for name in names} for row in table]
