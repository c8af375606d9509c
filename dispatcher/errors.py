"""One JSON error shape for every 4xx and 5xx answer, and the JSON encoder of the service.

    {"status": 400, "code": "invalid_parameters",
     "error": "2 invalid parameters: E1_keV: must be at most 250 keV (got 300.0); ...",
     "errors": [{"parameter": "E1_keV", "path": "/E1_keV", "reason": "..."}]}

`error` is always a one-line string (the `oda_api` client prints it); `errors` lists every
parameter problem when there are any. A 5xx answer carries a reference that appears in the
server log next to the traceback; no traceback, path or configuration is ever sent.
"""
from __future__ import annotations

import json
import logging
import math
import uuid
from typing import Any, Iterable, Mapping

from flask import Flask, Response, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from dataserver.params import ParameterProblem

log = logging.getLogger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
          413: "too_large", 415: "unsupported_media_type", 500: "internal_error",
          503: "unavailable"}


class ApiError(Exception):
    """An answer other than success, raised anywhere in a request."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 problems: Iterable[ParameterProblem] = (), headers: Mapping[str, str] | None = None,
                 extra: Mapping[str, Any] | None = None):
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "error")
        self.problems = list(problems)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "code": self.code, "error": self.message}
        if self.problems:
            body["errors"] = [p.as_dict() for p in self.problems]
        body.update(self.extra)
        return body


def invalid_parameters(problems: list[ParameterProblem]) -> ApiError:
    count = len(problems)
    summary = "; ".join(str(p) for p in problems)
    return ApiError(400, f"{count} invalid parameter{'s' if count != 1 else ''}: {summary}",
                    code="invalid_parameters", problems=problems)


def finite(value: Any) -> Any:
    """A copy of `value` with NaN and infinities replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


class StrictJSONProvider(DefaultJSONProvider):
    """Never writes NaN or Infinity (invalid JSON, and fatal to the oda_api client)."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", True)
        return json.dumps(finite(obj), allow_nan=False, **kwargs)


def error_response(error: ApiError) -> Response:
    response = Response(json.dumps(finite(error.body()), allow_nan=False),
                        status=error.status, mimetype="application/json")
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        if status == 404:
            message = f"no such resource: {request.path}"
        elif status == 405:
            message = f"method {request.method} is not allowed on {request.path}"
        else:
            message = error.description or error.name
        headers = {}
        valid_methods = getattr(error, "valid_methods", None)
        if status == 405 and valid_methods:
            headers["Allow"] = ", ".join(sorted(valid_methods))
        return error_response(ApiError(status, message, headers=headers))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        reference = uuid.uuid4().hex[:12]
        log.exception("internal error %s on %s %s", reference, request.method, request.path)
        return error_response(ApiError(500, f"internal error; it was logged with reference "
                                            f"{reference}", extra={"reference": reference}))
