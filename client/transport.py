"""HTTP to one xoda server: the token, the error shape, and patient retries.

Every request goes to the configured server, built from its base URL and a path; URLs found
in answers are never followed, so the token is only ever sent to the server the user named.
Transient failures (the connection, 502/503/504, 429) are retried a few times with a growing
pause that honours `Retry-After`; every other error answer becomes a typed exception
(`client.errors`) at once. Submissions may be retried too: a job is identified by its query,
so sending the same one twice is the same job.
"""
from __future__ import annotations

import email.utils
import logging
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Iterator, Mapping

import requests

from .errors import ServerError, XodaError, error_from_answer

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 502, 503, 504)
CHUNK_BYTES = 1 << 20


def client_version() -> str:
    try:
        return version("xoda")
    except PackageNotFoundError:
        return "unknown"


def retry_after(headers: Mapping[str, str], default: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    value = headers.get("Retry-After")
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, moment.timestamp() - time.time())


class Transport:
    def __init__(self, url: str, token: str | None, *, timeout: float = 60.0, retries: int = 3,
                 session: requests.Session | None = None):
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.session = session or requests.Session()
        self._headers = {"Accept": "application/json",
                         "User-Agent": f"xoda-client/{client_version()}"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, stream: bool = False,
                timeout: float | None = None) -> requests.Response:
        """The answer to a request on `path` (below the base URL); raises the typed error of
        an error answer, after retrying transient failures."""
        if not path.startswith("/"):
            raise ValueError(f"request path must start with '/': {path!r}")
        url = self.url + path
        pause = 0.25
        for attempt in range(self.retries + 1):
            last_try = attempt == self.retries
            try:
                response = self.session.request(method, url, params=params, json=json,
                                                headers=self._headers, stream=stream,
                                                timeout=timeout or self.timeout)
            except requests.RequestException as exc:
                if last_try:
                    raise ServerError(f"could not reach the xoda server at {self.url}: "
                                      f"{_reason(exc)}") from None
                log.info("%s %s: %s; retrying in %.1f s", method, path, _reason(exc), pause)
                time.sleep(pause)
                pause = min(pause * 2, 8.0)
                continue
            if response.status_code in RETRY_STATUSES and not last_try:
                wait = retry_after(response.headers, pause)
                log.info("%s %s: HTTP %d; retrying in %.1f s", method, path,
                         response.status_code, wait)
                response.close()
                time.sleep(min(wait, 30.0))
                pause = min(pause * 2, 8.0)
                continue
            if response.status_code >= 400:
                raise self.error(response)
            return response
        raise AssertionError("unreachable")

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.decode(self.request("GET", path, **kwargs))

    def post_json(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.decode(self.request("POST", path, json=body, **kwargs))

    def decode(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ServerError(f"{response.request.method} {response.url} answered HTTP "
                              f"{response.status_code} with something that is not JSON "
                              f"(is {self.url} a xoda server?)", status=response.status_code) from None

    def download(self, path: str) -> Iterator[bytes]:
        """The body of a (large) answer, chunk by chunk; checks the announced length."""
        response = self.request("GET", path, stream=True)
        expected = response.headers.get("Content-Length")
        received = 0
        with response:
            for chunk in response.iter_content(CHUNK_BYTES):
                received += len(chunk)
                yield chunk
        if expected is not None and received != int(expected):
            raise ServerError(f"download of {path} was cut short: {received} of {expected} bytes")

    @staticmethod
    def error(response: requests.Response) -> XodaError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            text = " ".join(response.text.split())[:200]
            fallback = f"HTTP {response.status_code} from {response.url}: {text or response.reason}"
            return error_from_answer(response.status_code, None, fallback)
        return error_from_answer(response.status_code, body, f"HTTP {response.status_code}")


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed (is the server running?)"
    return type(exc).__name__
