"""`xoda get INSTRUMENT PRODUCT [--NAME VALUE ...] [--out DIR]`: run a query, write its files.

The parameter options come from the product's schema on the server
(`xoda get INSTRUMENT PRODUCT --help` lists them with units, defaults and bounds). Times are
written as the query's T_format says (ISO 8601 by default); arrays take several values.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from client.cli import EXIT_OK
from client.commands.common import (EXIT_HELP, SERVER_HELP, add_generic_parameter_option,
                                    add_parameter_options, collect_parameters, connect,
                                    from_server_or_help,
                                    print_json, report_errors, server_options,
                                    undeclared_parameters)

FIXED_OPTIONS = ("--url", "--token", "--out", "--overwrite", "--no-wait", "--timeout",
                 "--plot", "--json", "--quiet", "--cache", "--param", "--help")


def _add_fixed_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-h", "--help", action="store_true",
                        help="show this help (with the product's parameters when INSTRUMENT "
                             "and PRODUCT are given) and exit")
    parser.add_argument("-o", "--out", default=".", metavar="DIR",
                        help="directory for the product files (default: the current one)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--no-wait", action="store_true",
                        help="submit, print the job id and return at once (fetch later with "
                             "`xoda jobs JOB_ID --out DIR`)")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help="give up waiting after S seconds (exit 1; the job goes on)")
    parser.add_argument("--plot", metavar="FILE",
                        help="also save a plot of the products (PNG, PDF, ...)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--cache", metavar="DIR",
                        help="keep results in this local cache (default: XODA_CLIENT_CACHE)")
    add_generic_parameter_option(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "get", help="run a query and write its product files",
        description="Run a query on the server, show its progress and write its FITS files "
                    "under their original names. Parameters are given as --NAME VALUE after "
                    "INSTRUMENT PRODUCT; `xoda get INSTRUMENT PRODUCT --help` lists them. "
                    + SERVER_HELP,
        epilog="Example: xoda get hxmt_he spectrum --T1 2017-08-27T02:00:00 --T2 "
               "2017-08-27T08:00:00 --E1_keV 28 --out crab/. " + EXIT_HELP,
        parents=[server_options()], add_help=False, allow_abbrev=False)
    parser.add_argument("instrument", nargs="?", help="instrument, e.g. hxmt_he")
    parser.add_argument("product", nargs="?", help="product, e.g. spectrum")
    _add_fixed_options(parser)
    parser.set_defaults(func=run, parser=parser, takes_parameters=True)


def _full_parser(args: argparse.Namespace, schema) -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(
        prog=f"xoda get {args.instrument} {args.product}", add_help=False, allow_abbrev=False,
        parents=[server_options()], description=args.parser.description, epilog=EXIT_HELP)
    _add_fixed_options(parser)
    destinations = add_parameter_options(parser, schema, f"parameters of {args.instrument} / "
                                         f"{args.product}", reserved=FIXED_OPTIONS)
    return parser, destinations


def run(args: argparse.Namespace) -> int:
    if not (args.instrument and args.product):
        if args.help:
            args.parser.print_help()
            return EXIT_OK
        args.parser.error("give INSTRUMENT and PRODUCT (`xoda describe` lists them)")
    return report_errors("get", lambda: _get(args))


def _get(args: argparse.Namespace) -> int:
    dispatcher = connect(args, cache=args.cache)
    schema = from_server_or_help(args, lambda: dispatcher.schema(args.instrument, args.product),
                                 "parameters")
    if schema is None:
        return EXIT_OK
    parser, destinations = _full_parser(args, schema)
    if args.help:
        parser.print_help()
        return EXIT_OK
    parsed, undeclared = parser.parse_known_args(args.extra, namespace=argparse.Namespace(**{
        k: v for k, v in vars(args).items() if k != "extra"}))
    params = {**undeclared_parameters(undeclared, parser),
              **collect_parameters(parsed, destinations, schema, parser)}
    result = dispatcher.get_product(args.instrument, args.product, params=params,
                                    wait=not args.no_wait, timeout=args.timeout)
    if args.no_wait:
        job = result
        if args.json:
            print_json({"job_id": job.id, "status": job.status, "link": job.link})
        else:
            print(f"job {job.id} {job.status}\nlink: {job.link}\n"
                  f"fetch it with: xoda jobs {job.id} --out {args.out}")
        return EXIT_OK
    return write_results(result, args)


def write_results(collection, args: argparse.Namespace) -> int:
    """Write a collection's files to args.out (and a plot); print what was written."""
    paths = collection.write(args.out, overwrite=args.overwrite)
    plot_path = None
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        figure = collection.plot()
        figure.savefig(args.plot)
        plot_path = str(Path(args.plot))
    if args.json:
        print_json({"job_id": collection.job_id, "status": "done", "link": collection.link,
                    "files": [{"name": p.name, "kind": p.kind, "path": str(path)}
                              for p, path in zip(collection, paths)],
                    "plot": plot_path})
        return EXIT_OK
    progress = collection.job.progress
    print(f"job {collection.job_id} done ({progress.get('computed', 0)} steps computed, "
          f"{progress.get('restored', 0)} restored)")
    for product, path in zip(collection, paths):
        print(f"  {path}  [{product.kind}] {product.description}")
    for product in collection:
        if product.kind == "fit":       # the numbers asked for, not only the file holding them
            print(product.summary())
    if plot_path:
        print(f"  {plot_path}  [plot]")
    print(f"link: {collection.link}")
    sys.stdout.flush()
    return EXIT_OK
