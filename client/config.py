"""Where the client finds its server, token and local cache, when not told explicitly.

- URL: the `url` argument, else `XODA_URL`, else http://127.0.0.1:8000 (`make run`).
- Token: the `token` argument, else `XODA_TOKEN`, else the first line of `~/.xoda-token`
  (keep that file private: `chmod 600 ~/.xoda-token`). An empty value means anonymous.
- Local cache of finished results: the `cache` argument (True, or a directory), else
  `XODA_CLIENT_CACHE` (a directory); off otherwise. `cache=True` uses
  `$XDG_CACHE_HOME/xoda` (default `~/.cache/xoda`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "XODA_URL"
TOKEN_VARIABLE = "XODA_TOKEN"
TOKEN_FILE_NAME = ".xoda-token"
CACHE_VARIABLE = "XODA_CLIENT_CACHE"


def resolve_url(url: str | None) -> str:
    text = (url or os.environ.get(URL_VARIABLE) or DEFAULT_URL).strip()
    if not text.startswith(("http://", "https://")):
        raise ValueError(f"the xoda URL must start with http:// or https:// (got {text!r})")
    return text.rstrip("/")


@dataclass(frozen=True)
class TokenSource:
    token: str | None
    origin: str | None       # "argument", "XODA_TOKEN", "~/.xoda-token" or None (anonymous)


def token_file() -> Path:
    return Path.home() / TOKEN_FILE_NAME


def resolve_token(token: str | None) -> TokenSource:
    """The token and where it came from; never logged nor shown."""
    if token is not None:
        return TokenSource(token.strip() or None, "argument" if token.strip() else None)
    from_env = os.environ.get(TOKEN_VARIABLE, "").strip()
    if from_env:
        return TokenSource(from_env, TOKEN_VARIABLE)
    path = token_file()
    try:
        first_line = path.read_text().strip().splitlines()
    except FileNotFoundError:
        return TokenSource(None, None)
    except OSError as exc:
        raise ValueError(f"cannot read the token file {path}: {exc.strerror}") from None
    if first_line and first_line[0].strip():
        return TokenSource(first_line[0].strip(), f"~/{TOKEN_FILE_NAME}")
    return TokenSource(None, None)


def resolve_cache(cache: bool | str | os.PathLike | None) -> Path | None:
    """The local cache directory, or None when caching is off."""
    if cache is None:
        from_env = os.environ.get(CACHE_VARIABLE, "").strip()
        return Path(from_env).expanduser() if from_env else None
    if cache is False:
        return None
    if cache is True:
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
        return Path(base).expanduser() / "xoda"
    return Path(cache).expanduser()
