"""`xoda jobs [JOB_ID] [--wait] [--out DIR] [--retry]`: jobs on the server.

Without JOB_ID: the jobs this token may see, newest first (`--mine`: the ones it submitted).
With JOB_ID (or a unique prefix of one listed): its status, progress, failure and files;
`--wait` waits for it with a progress bar, `--out DIR` also writes its files, `--retry` runs a
failed job again. The exit code is 4 when the job failed.
"""
from __future__ import annotations

import argparse
import sys

from client.cli import EXIT_BAD_INPUT, EXIT_JOB_FAILED, EXIT_OK
from client.commands.common import (EXIT_HELP, SERVER_HELP, connect, print_json, report_errors,
                                    server_options)
from client.commands.get import write_results
from client.describe import render_table

FULL_ID_LENGTH = 64
STATUSES = ("submitted", "progress", "done", "failed")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "jobs", help="list jobs, or show, wait for and fetch one",
        description=__doc__.split("\n\n")[1] + " " + SERVER_HELP,
        epilog="Examples: xoda jobs --mine; xoda jobs 9f2c41 --out results/. " + EXIT_HELP,
        parents=[server_options()])
    parser.add_argument("job_id", nargs="?", help="a job id, or a unique prefix of one")
    listing = parser.add_argument_group("listing")
    listing.add_argument("--status", choices=STATUSES, help="only jobs in this state")
    listing.add_argument("-i", "--instrument", help="only jobs of this instrument")
    listing.add_argument("--mine", action="store_true", help="only jobs this token submitted")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    one = parser.add_argument_group("one job")
    one.add_argument("--wait", action="store_true", help="wait until the job is finished")
    one.add_argument("--timeout", type=float, metavar="S", help="stop waiting after S seconds")
    one.add_argument("-o", "--out", metavar="DIR", help="wait, then write the job's files here")
    one.add_argument("--overwrite", action="store_true", help="replace existing files")
    one.add_argument("--plot", metavar="FILE", help="with --out: also save a plot")
    one.add_argument("--retry", action="store_true", help="run a failed job again")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return report_errors("jobs", lambda: _jobs(args))


def _jobs(args: argparse.Namespace) -> int:
    dispatcher = connect(args)
    if args.job_id is None:
        jobs = dispatcher.jobs(status=args.status, instrument=args.instrument, mine=args.mine,
                               limit=args.limit)
        if args.json:
            print_json([job.record for job in jobs])
        elif not jobs:
            print("no jobs")
        else:
            print(render_table(("Job id", "Status", "Instrument", "Product", "Updated (UTC)"),
                               [(j.id, j.status, j.instrument, j.product,
                                 j.record.get("updated") or "") for j in jobs], indent=""))
        return EXIT_OK

    job_id = _full_id(dispatcher, args.job_id)
    if job_id is None:
        return EXIT_BAD_INPUT
    job = dispatcher.job(job_id)
    if args.retry:
        if job.status != "failed":
            print(f"xoda jobs: job {job.id} is {job.status}; only a failed job is retried",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        job.retry()
    if args.out:
        return write_results(job.result(timeout=args.timeout), args)
    if args.wait:
        dispatcher.wait([job], timeout=args.timeout)
    if args.json:
        print_json(job.record)
    else:
        _show(job)
    return EXIT_JOB_FAILED if job.failed else EXIT_OK


def _full_id(dispatcher, text: str) -> str | None:
    if len(text) >= FULL_ID_LENGTH:
        return text
    matches = [job.id for job in dispatcher.jobs(limit=500) if job.id.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    print(f"xoda jobs: {'no' if not matches else 'more than one'} job id starts with {text!r}"
          " among the latest 500", file=sys.stderr)
    return None


def _show(job) -> None:
    progress = job.progress
    print(f"job {job.id}: {job.instrument}/{job.product}, {job.status}")
    if progress:
        print(f"  units {progress.get('units_done', 0)}/{progress.get('units_total', 0)}, "
              f"steps {progress.get('steps_done', 0)}/{progress.get('steps_total', 0)} "
              f"(computed {progress.get('computed', 0)}, restored {progress.get('restored', 0)}, "
              f"failed {progress.get('failed', 0)})")
    if job.error:
        print(f"  error: {job.error.get('message')}")
        for failure in job.error.get("failures") or []:
            print(f"    unit {failure.get('unit')}, step {failure.get('step')}: "
                  f"{failure.get('message')}")
    # A job that is not done has no files yet (a failed one never will): listing the names
    # it would have made would suggest they can be fetched.
    for output in (job.record.get("outputs") or []) if job.done else []:
        print(f"  {output['name']}  [{output['kind']}] {output.get('description', '')}")
    print(f"  link: {job.link}")
