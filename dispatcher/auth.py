"""User tokens: HS256 JSON Web Tokens with a subject, roles and an expiry.

Administrators mint them with `xoda token mint`; users send them as `Authorization: Bearer
<token>` or, as the ODA client does, as the `token` request parameter. A request without a
token is anonymous (public data only); an invalid or expired token is refused with 401 and
a message saying which. The token itself is never stored, logged or echoed: only the
`Identity` (subject and roles) it proves goes further, and that never enters a job id, a
cache key or a link.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any, Iterable

import jwt
from flask import Request

from dataserver import Identity, Settings

from .errors import ApiError

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
ISSUER = "xoda"
SECRET_FILE = "secret_key"


def load_secret(settings: Settings) -> bytes:
    """The signing secret: the `secret_key` setting, else `<data_dir>/secret_key`.

    The file is created on first use (mode 0600) atomically, so concurrent web workers and
    the `xoda token` command always agree on one secret.
    """
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.data_path / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(staged, path)        # fails if another process created it first
        except FileExistsError:
            pass
        finally:
            staged.unlink()
        log.info("created a new token signing secret in the data directory")
    return Path(path).read_text().strip().encode()


class TokenError(ApiError):
    def __init__(self, message: str, code: str = "invalid_token"):
        super().__init__(401, message, code=code,
                         headers={"WWW-Authenticate": f'Bearer error="{code}"'})


class TokenAuthority:
    """Mints and verifies tokens with one secret."""

    def __init__(self, secret: bytes):
        self._secret = secret

    def mint(self, subject: str, roles: Iterable[str] = (), hours: float = 24.0,
             now: float | None = None) -> str:
        subject = subject.strip()
        if not subject:
            raise ValueError("the subject must not be empty")
        if not hours > 0:
            raise ValueError("the lifetime must be positive")
        issued = int(now if now is not None else time.time())
        payload = {"sub": subject, "roles": sorted({r.strip() for r in roles if r.strip()}),
                   "iat": issued, "exp": issued + int(round(hours * 3600)), "iss": ISSUER}
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def claims(self, token: str) -> dict[str, Any]:
        """The checked claims of a token: `sub`, `roles` (a sorted list), `exp` and `iat` (POSIX
        seconds, `iat` None when absent); `TokenError` (401) saying what is wrong otherwise."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                options={"require": ["sub", "exp"]})
        except jwt.ExpiredSignatureError:
            expired = _expiry_text(token)
            raise TokenError(f"the token expired{expired}; ask for a new one",
                             code="token_expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"invalid token: it has no {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise TokenError("invalid token: its signature does not match this service's "
                             "secret (was it minted for another server?)") from None
        except jwt.DecodeError:
            raise TokenError("invalid token: it is not a well-formed JSON Web Token") from None
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"invalid token: {exc}") from None
        roles = claims.get("roles", [])
        if isinstance(roles, str):
            roles = roles.split(",")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise TokenError("invalid token: 'roles' must be a list of names")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise TokenError("invalid token: 'sub' must be a non-empty string")
        issued = claims.get("iat")
        return {"sub": subject, "roles": sorted({r.strip() for r in roles if r.strip()}),
                "exp": int(claims["exp"]),
                "iat": int(issued) if isinstance(issued, (int, float)) else None}

    def verify(self, token: str) -> Identity:
        """The identity a token proves; `TokenError` (401) saying what is wrong otherwise."""
        claims = self.claims(token)
        return Identity(subject=claims["sub"], roles=frozenset(claims["roles"]))

    @staticmethod
    def token_of(request: Request) -> str | None:
        """The token a request carries: `Authorization: Bearer`, else the `token` parameter;
        None when anonymous."""
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise TokenError("the Authorization header must be 'Bearer <token>'")
            token = value.strip()
        else:
            token = request.values.get("token") or None
        return None if token == "\x00" else token

    def identity(self, request: Request) -> Identity:
        """Who is asking: from `Authorization: Bearer`, else the `token` parameter."""
        token = self.token_of(request)
        return Identity() if token is None else self.verify(token)


def _expiry_text(token: str) -> str:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        when = dt.datetime.fromtimestamp(int(claims["exp"]), dt.timezone.utc)
        return f" at {when.strftime('%Y-%m-%d %H:%M:%S')} UTC"
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError, OverflowError):
        return ""
