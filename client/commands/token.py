"""`xoda token`: mint and check user tokens (for administrators of a xoda server).

Tokens are signed with the server's secret (`XODA_SECRET_KEY`, or the secret file in the data
directory), so run this where the server's settings are. `mint` prints the token on standard
output, its only output; give it to the user, who passes it to the client or as `token=` to
oda_api.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys

from client.cli import EXIT_AUTH, EXIT_BAD_INPUT, EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("token", help="mint or check user tokens (administrators)",
                                   description=__doc__.split("\n\n")[1])
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    mint = actions.add_parser("mint", help="sign a new token and print it",
                              description="Sign a token for SUBJECT with the server's secret "
                              "and print it. Data whose owner is SUBJECT, or that grant one of "
                              "the ROLES, become visible to its holder until it expires.")
    mint.add_argument("--subject", required=True,
                      help="who the token is for (e.g. the e-mail or id a PI is known by)")
    mint.add_argument("--roles", default="", help="comma-separated roles, matched exactly by the data's "
                      "granting roles (HXMT: hxmt_team, admin)")
    mint.add_argument("--hours", type=float,
                      help="lifetime in hours (default: XODA_TOKEN_LIFETIME_H)")
    mint.set_defaults(func=run_mint)
    check = actions.add_parser("check", help="verify a token and show what it grants",
                               description="Verify a token read from standard input against "
                               "this server's secret; print its subject, roles and expiry.")
    check.set_defaults(func=run_check)


def _authority():
    # Imported here: only administrators on the server machine use these commands.
    from dataserver import Settings
    from dispatcher.auth import TokenAuthority, load_secret

    settings = Settings.from_env()
    return settings, TokenAuthority(load_secret(settings))


def run_mint(args: argparse.Namespace) -> int:
    settings, authority = _authority()
    hours = args.hours if args.hours is not None else settings.token_lifetime_h
    try:
        token = authority.mint(args.subject, args.roles.split(","), hours)
    except ValueError as exc:
        print(f"xoda token mint: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(token)
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    from dispatcher.auth import TokenError
    import jwt

    _, authority = _authority()
    token = sys.stdin.readline().strip()
    if not token:
        print("xoda token check: give the token on standard input", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        identity = authority.verify(token)
    except TokenError as exc:
        print(f"xoda token check: {exc.message}", file=sys.stderr)
        return EXIT_AUTH
    expiry = dt.datetime.fromtimestamp(
        jwt.decode(token, options={"verify_signature": False})["exp"], dt.timezone.utc)
    print(f"subject: {identity.subject}\nroles: {', '.join(sorted(identity.roles)) or '(none)'}\n"
          f"expires: {expiry:%Y-%m-%d %H:%M:%S} UTC")
    return EXIT_OK
