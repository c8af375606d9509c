"""The `xoda` command line.

Each subcommand lives in `client.commands.<name>` and exposes `register(subparsers)`, which
adds its parser and sets `func(args) -> exit code`. A subcommand whose options come from a
server-side schema (`get`, `search`) sets `takes_parameters=True`: the options its parser does
not know are handed to it in `args.extra`. Exit codes: 0 ok, 1 other error, 2 bad input,
3 authentication/authorisation, 4 job failed.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

SUBCOMMANDS = ("describe", "get", "search", "jobs", "serve", "token", "sim")

EXIT_OK, EXIT_OTHER, EXIT_BAD_INPUT, EXIT_AUTH, EXIT_JOB_FAILED = 0, 1, 2, 3, 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xoda", description="xoda: online data analysis for Insight-HXMT, INTEGRAL and "
        "POLAR. `xoda COMMAND --help` describes each command.",
        epilog="Exit codes: 0 ok, 1 other error, 2 bad input, 3 authentication, 4 job failed.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"client.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_parameters", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # The client's own messages would interleave with its progress bars and output.
        logging.getLogger("client").setLevel(logging.WARNING)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
