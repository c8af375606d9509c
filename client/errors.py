"""The client's exceptions. Each carries the server's own words (`message`), the HTTP status
and error code when there was an answer, and the full error body (`body`).

    XodaError
    ├── ValidationError   bad parameters: `problems` lists every one (local check or HTTP 400)
    ├── AuthError         HTTP 401 (token missing, invalid or expired) or 403 (data not yours)
    ├── NotFound          HTTP 404: unknown instrument, product, job or output
    ├── ServerError       HTTP 5xx, an unreachable server, or an answer that is not xoda's
    ├── JobFailed         the job ran and failed: `unit`, `step`, `failures`
    └── JobTimeout        the job did not finish within the client's timeout (it goes on)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class Problem:
    """One bad parameter: its name, its JSON-pointer path inside the query, the reason."""

    parameter: str
    path: str
    reason: str

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> "Problem":
        parameter = str(item.get("parameter") or "")
        return cls(parameter, str(item.get("path") or "/" + parameter), str(item.get("reason", "")))

    def __str__(self) -> str:
        return f"{self.path.lstrip('/') or self.parameter}: {self.reason}"


class XodaError(Exception):
    """Base class of every error the client raises."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 body: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.body = dict(body or {})


class ValidationError(XodaError, ValueError):
    """Invalid parameters. `problems` lists every one; `local` is True when the client found
    them against the product's schema before sending anything."""

    def __init__(self, message: str, problems: Sequence[Problem] = (), *, local: bool = False,
                 **kwargs: Any):
        super().__init__(message, **kwargs)
        self.problems = list(problems)
        self.local = local

    @classmethod
    def from_problems(cls, problems: Sequence[Problem], *, local: bool) -> "ValidationError":
        count = len(problems)
        summary = "; ".join(str(p) for p in problems)
        return cls(f"{count} invalid parameter{'s' if count != 1 else ''}: {summary}", problems,
                   local=local, status=None if local else 400, code="invalid_parameters")

    @property
    def parameters(self) -> list[str]:
        """The names of the bad parameters, in the order reported."""
        return [p.parameter for p in self.problems]


class AuthError(XodaError, PermissionError):
    """401: no valid token (missing where one is needed, bad signature, expired);
    403: the data are not public and the token does not grant them."""


class NotFound(XodaError, LookupError):
    """404: unknown instrument, product, job, output or source name."""


class ServerError(XodaError):
    """A failure of the server (5xx, with the reference of its log entry when given), an
    unreachable server, or an answer that does not come from a xoda service."""

    @property
    def reference(self) -> str | None:
        return self.body.get("reference")


class JobFailed(XodaError):
    """The job ran and failed. `unit` and `step` name the first failure; `failures` lists all
    of them as the server reported them ({"unit", "step", "message"})."""

    def __init__(self, job_id: str, message: str, failures: Sequence[Mapping[str, Any]] = ()):
        super().__init__(message)
        self.job_id = job_id
        self.failures = [dict(f) for f in failures]
        first = self.failures[0] if self.failures else {}
        self.unit: str | None = first.get("unit")
        self.step: str | None = first.get("step")

    @classmethod
    def from_job(cls, record: Mapping[str, Any]) -> "JobFailed":
        error = record.get("error") or {}
        message = error.get("message") or "the job failed without a message"
        return cls(record.get("job_id", ""), f"job {record.get('job_id', '?')} failed: {message}",
                   error.get("failures") or [])


class JobTimeout(XodaError, TimeoutError):
    """The job was still running when the client's `timeout` ran out. It goes on on the
    server: `Dispatcher.job(job_id)` picks it up again."""

    def __init__(self, job_id: str, message: str):
        super().__init__(message)
        self.job_id = job_id


def error_from_answer(status: int, body: Mapping[str, Any] | None, fallback: str) -> XodaError:
    """The typed exception for an HTTP error answer in xoda's error shape
    ({"status", "code", "error", "errors"}); `fallback` describes answers of another shape."""
    body = dict(body or {})
    message = str(body.get("error") or fallback)
    code = body.get("code")
    if status in (400, 422):
        problems = [Problem.from_json(p) for p in body.get("errors") or [] if isinstance(p, Mapping)]
        return ValidationError(message, problems, status=status, code=code, body=body)
    if status in (401, 403):
        return AuthError(message, status=status, code=code, body=body)
    if status == 404:
        return NotFound(message, status=status, code=code, body=body)
    if status >= 500:
        return ServerError(message, status=status, code=code, body=body)
    return XodaError(message, status=status, code=code, body=body)
