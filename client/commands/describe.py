"""`xoda describe [INSTRUMENT [PRODUCT]]`: what a server offers.

Without arguments: the instruments and their products. With an instrument: its products and
observation-search criteria. With a product: its parameters, with type, unit, default, what is
allowed and a description (the options of `xoda get`).
"""
from __future__ import annotations

import argparse

from client.cli import EXIT_OK
from client.commands.common import (EXIT_HELP, SERVER_HELP, connect, print_json, report_errors,
                                    server_options)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "describe", help="list instruments, products and their parameters",
        description=__doc__.split("\n\n")[1] + " " + SERVER_HELP,
        epilog="Examples: xoda describe; xoda describe hxmt_he; xoda describe hxmt_he spectrum. "
               + EXIT_HELP, parents=[server_options()])
    parser.add_argument("instrument", nargs="?", help="an instrument, e.g. hxmt_he")
    parser.add_argument("product", nargs="?", help="one of its products, e.g. spectrum")
    parser.add_argument("--json", action="store_true",
                        help="print the server's JSON (the parameters' JSON Schema for a product)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return report_errors("describe", lambda: _describe(args))


def _describe(args: argparse.Namespace) -> int:
    dispatcher = connect(args)
    if args.instrument is None:
        table = dispatcher.instruments()
        if args.json:
            print_json([dict(zip(table.colnames, (v.item() if hasattr(v, "item") else v
                                                  for v in row))) for row in table])
        else:
            print(f"Instruments at {dispatcher.url}:")
            for line in table.pformat(max_lines=-1, max_width=-1):
                print("  " + line)
            print("\n`xoda describe INSTRUMENT` lists an instrument's products and search criteria.")
        return EXIT_OK
    description = dispatcher.describe(args.instrument, args.product)
    if args.json:
        if args.product is None:
            print_json({"name": description.name, "title": description.title,
                        "mission": description.mission, "description": description.description,
                        "products": list(description.products),
                        "search_schema": description.search_schema})
        else:
            print_json(description.schema)
        return EXIT_OK
    print(description)
    if args.product is not None:
        print(f"\nRun it: xoda get {args.instrument} {args.product} --NAME VALUE ... --out DIR")
    return EXIT_OK
