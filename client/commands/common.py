"""What the client subcommands share: the server options, parameter options built from a
JSON Schema (`--NAME VALUE`), and the mapping of errors to messages and exit codes."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Mapping, Sequence

from client.cli import EXIT_AUTH, EXIT_BAD_INPUT, EXIT_JOB_FAILED, EXIT_OTHER
from client.params import types_of

SERVER_HELP = ("The server is --url, else XODA_URL, else http://127.0.0.1:8000. The token is "
               "--token, else XODA_TOKEN, else the first line of ~/.xoda-token (preferred: a "
               "command line is visible to other users of the machine).")
EXIT_HELP = "Exit codes: 0 ok, 1 other error, 2 bad input, 3 authentication, 4 job failed."


def server_options() -> argparse.ArgumentParser:
    """A parent parser with --url and --token."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("server")
    group.add_argument("--url", help="xoda server URL (default: XODA_URL, else http://127.0.0.1:8000)")
    group.add_argument("--token", help="user token (default: XODA_TOKEN, else ~/.xoda-token)")
    return parent


def connect(args: argparse.Namespace, *, cache: Any = None):
    from client import Dispatcher

    return Dispatcher(url=args.url, token=args.token, cache=cache,
                      progress=sys.stderr if not getattr(args, "quiet", False) else False)


def report_errors(command: str, action: Callable[[], int]) -> int:
    """Run `action`; print any client error in the server's words; the exit code."""
    from client import AuthError, JobFailed, NotFound, ValidationError, XodaError

    try:
        return action()
    except ValidationError as exc:
        if exc.problems:
            count = len(exc.problems)
            print(f"xoda {command}: {count} invalid parameter{'s' if count != 1 else ''}",
                  file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
        else:
            print(f"xoda {command}: {exc.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except NotFound as exc:
        print(f"xoda {command}: {exc.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except AuthError as exc:
        print(f"xoda {command}: {exc.message}", file=sys.stderr)
        return EXIT_AUTH
    except JobFailed as exc:
        print(f"xoda {command}: {exc.message}", file=sys.stderr)
        for failure in exc.failures[1:]:
            where = f"unit {failure.get('unit')}, " if failure.get("unit") else ""
            print(f"  also: {where}step {failure.get('step')}: {failure.get('message')}",
                  file=sys.stderr)
        return EXIT_JOB_FAILED
    except XodaError as exc:
        print(f"xoda {command}: {exc.message}", file=sys.stderr)
        return EXIT_OTHER
    except BrokenPipeError:
        # The reader went away (`xoda jobs | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OTHER
    except (ValueError, OSError) as exc:
        # Configuration (a URL without http://, an unreadable token file) or local files.
        print(f"xoda {command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(exc, ValueError) else EXIT_OTHER
    except KeyboardInterrupt:
        print(f"xoda {command}: interrupted (a submitted job goes on on the server; "
              "`xoda jobs` shows it)", file=sys.stderr)
        return EXIT_OTHER


# ---- parameters as options -----------------------------------------------------------------
def from_server_or_help(args: argparse.Namespace, fetch: Callable[[], Any], what: str) -> Any:
    """What `fetch` reads from the server; under --help, a server that cannot answer still
    gets the command's own help (then None), saying what is missing."""
    from client import XodaError

    try:
        return fetch()
    except XodaError as exc:
        if not args.help:
            raise
        args.parser.print_help()
        print(f"\n({what} unavailable: {exc.message})")
        return None


def converter(fragment: Mapping[str, Any]) -> Callable[[str], Any]:
    """Text -> the value the schema wants (number, integer, boolean, null, JSON object)."""
    kinds = types_of(fragment)

    def convert(text: str) -> Any:
        stripped = text.strip()
        if "null" in kinds and stripped.lower() in ("null", "none", ""):
            return None
        if "x-time" in fragment:
            return stripped              # read by the client in the query's time format
        if "array" in kinds:
            # One option value that is itself an array (e.g. a [start, stop] interval of
            # an array of intervals): JSON, or its items separated by commas.
            if stripped.startswith("["):
                try:
                    return json.loads(stripped)
                except ValueError:
                    raise argparse.ArgumentTypeError(f"{text!r} is not a JSON array") from None
            item = converter(fragment.get("items", {}))
            return [item(part) for part in stripped.split(",") if part.strip()]
        if "integer" in kinds:
            try:
                return int(stripped)
            except ValueError:
                if "number" not in kinds:
                    raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if "number" in kinds:
            try:
                return float(stripped)
            except ValueError:
                if "string" not in kinds:
                    raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if "boolean" in kinds:
            if stripped.lower() in ("true", "yes", "on", "1"):
                return True
            if stripped.lower() in ("false", "no", "off", "0"):
                return False
            raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (true/false)")
        if "object" in kinds:
            try:
                return json.loads(stripped)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r} is not JSON") from None
        return text

    convert.__name__ = " or ".join(k for k in kinds if k != "null") or "value"
    return convert


def _item_fragment(fragment: Mapping[str, Any]) -> Mapping[str, Any]:
    return fragment.get("items", {}) if "array" in types_of(fragment) else fragment


def _help(info: Any) -> str:
    parts = [info.description or info.name]
    details = []
    if info.unit:
        details.append(f"in {info.unit}")
    if info.has_default:
        default = info.default
        plain = not isinstance(default, (list, dict, bool)) and default is not None
        details.append(f"default {default if plain else json.dumps(default)}")
    elif info.required:
        details.append("required")
    if info.allowed:
        details.append(info.allowed)
    if "array" in types_of(_item_fragment(info.fragment)):
        details.append("each VALUE as A,B or as JSON [A, B]")
    text = parts[0] + (f" ({'; '.join(details)})" if details else "")
    return text.replace("%", "%%")


def add_parameter_options(parser: argparse.ArgumentParser, schema: Mapping[str, Any],
                          title: str, reserved: Sequence[str] = ()) -> dict[str, str]:
    """--NAME for every parameter of `schema` (arrays take several values); returns
    {dest: parameter name}. Names taken by fixed options are only reachable by -p."""
    from client.describe import parameter_infos

    group = parser.add_argument_group(title)
    destinations = {}
    for name, info in parameter_infos(schema).items():
        option = f"--{name}"
        if option in reserved:
            continue
        dest = f"param__{name}"
        fragment = info.fragment
        item = _item_fragment(fragment)
        kwargs: dict[str, Any] = {"dest": dest, "default": None, "help": _help(info),
                                  "type": converter(item), "metavar": "VALUE"}
        if "array" in types_of(fragment):
            kwargs["nargs"] = "+"
        if "enum" in item and all(isinstance(v, str) for v in item["enum"]):
            kwargs["choices"] = item["enum"]
            kwargs["metavar"] = "{" + ",".join(item["enum"]) + "}"
        group.add_argument(option, **kwargs)
        destinations[dest] = name
    return destinations


def add_generic_parameter_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter by name (for names that clash with options above); "
                             "repeatable")


def collect_parameters(args: argparse.Namespace, destinations: Mapping[str, str],
                       schema: Mapping[str, Any], parser: argparse.ArgumentParser) -> dict[str, Any]:
    values = {name: getattr(args, dest) for dest, name in destinations.items()
              if getattr(args, dest, None) is not None}
    properties = schema.get("properties", {})
    for item in getattr(args, "param", []) or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            parser.error(f"-p/--param takes NAME=VALUE (got {item!r})")
        name = name.strip()
        fragment = properties.get(name, {})
        try:
            if "array" in types_of(fragment):
                # NAME=A,B,C or a JSON array (needed for arrays of arrays).
                values[name] = converter(fragment)(text)
            else:
                values[name] = converter(fragment)(text) if fragment else text
        except argparse.ArgumentTypeError as exc:
            parser.error(f"-p {name}: {exc}")
    return values


def undeclared_parameters(tokens: Sequence[str], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """`--NAME VALUE`, `--NAME=VALUE` or `--NAME V1 V2 ...` options the schema does not declare,
    as raw parameters: the client's check then reports them with every other problem."""
    values: dict[str, Any] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if not token.startswith("--") or len(token) == 2:
            parser.error(f"unexpected argument {token!r} (parameters are --NAME VALUE)")
        name, sep, text = token[2:].partition("=")
        index += 1
        if sep:
            values[name] = text
            continue
        following = []
        while index < len(tokens) and not tokens[index].startswith("--"):
            following.append(tokens[index])
            index += 1
        values[name] = following[0] if len(following) == 1 else (following or True)
    return values


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=1, default=str))
