"""The REST API, `/api/v1`: instruments, products and their parameter schemas, jobs and their
products, observation search and name resolution. The routes are described by the OpenAPI
document at `/api/v1/openapi.json` (`dispatcher.openapi`)."""
from __future__ import annotations

import time
from typing import Any, Mapping

from flask import Blueprint, Response, current_app, jsonify, request, send_file

from dataserver import QueryError
from dataserver.params import InvalidParameters, ParameterProblem, normalise

from .errors import ApiError, invalid_parameters
from .jobstore import STATUSES, Job
from .provenance import json_text, write_archive
from .service import Service, may_access
from .views import (base_url, iso, job_json, job_summary_json, link, oda_snippet, output_url,
                    python_snippet, served_output, served_outputs)

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_WAIT_S = 25.0
PROGRESS_SETTLE_S = 0.2
MAX_LIST = 500


def _service() -> Service:
    return current_app.extensions["xoda"]


@bp.before_request
def _refuse_bad_tokens() -> None:
    """A token that is sent is checked on every route, also where anonymous callers are
    served: an expired or foreign token is a 401 everywhere, not only where data are private."""
    _service().tokens.identity(request)


def _json_body() -> Mapping[str, Any]:
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(415 if not request.is_json else 400,
                       "the request body must be a JSON object (Content-Type: application/json)",
                       code="invalid_body")
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_body")
    return body


def _number_arg(name: str, default: float, maximum: float) -> float:
    text = request.args.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise invalid_parameters([ParameterProblem(name, "/" + name, f"{text!r} is not a number")]) from None
    if not 0 <= value <= maximum:
        raise invalid_parameters([ParameterProblem(name, "/" + name,
                                                   f"must be between 0 and {maximum}")])
    return value


# ---- instruments and products --------------------------------------------------------------
def _instrument_json(name: str) -> dict[str, Any]:
    service = _service()
    plugin = service.instrument(name)
    base = base_url(service)
    search = plugin.search_parameters()
    return {
        "name": plugin.name, "title": plugin.title, "mission": plugin.mission,
        "description": plugin.description,
        "products": [{"name": pname, "title": ptype.title, "description": ptype.description,
                      "url": f"{base}/api/v1/instruments/{plugin.name}/products/{pname}"}
                     for pname, ptype in service.product_types(name).items()],
        "search": None if search is None else {
            "schema": _search_schema(search),
            "url": f"{base}/api/v1/instruments/{plugin.name}/search"},
    }


@bp.get("/instruments")
def instruments():
    service = _service()
    return jsonify({"instruments": [_instrument_json(n) for n in sorted(service.instruments)]})


@bp.get("/instruments/<instrument>")
def instrument(instrument: str):
    return jsonify(_instrument_json(instrument))


@bp.get("/instruments/<instrument>/products/<product>")
def product(instrument: str, product: str):
    ptype = _service().product_type(instrument, product)
    return jsonify({"instrument": instrument, "name": product, "title": ptype.title,
                    "description": ptype.description, "schema": ptype.schema()})


# ---- who is asking --------------------------------------------------------------------------
# The last second datetime can write: a token minted for "forever" still gets a date.
_LAST_INSTANT = 253402300799


def _clamped(timestamp: int | None) -> int | None:
    return None if timestamp is None else max(0, min(timestamp, _LAST_INSTANT))


@bp.get("/whoami")
def whoami():
    """What the caller's token proves (checked here, with the service's secret), or that the
    caller is anonymous. Never the token itself. The web form shows it next to its token field."""
    service = _service()
    token = service.tokens.token_of(request)
    if token is None:
        body: dict[str, Any] = {"anonymous": True, "subject": None, "roles": [], "issued": None,
                                "expires": None, "expires_in_s": None}
    else:
        claims = service.tokens.claims(token)
        body = {"anonymous": False, "subject": claims["sub"], "roles": claims["roles"],
                "issued": iso(_clamped(claims["iat"])), "expires": iso(_clamped(claims["exp"])),
                "expires_in_s": max(0, int(claims["exp"] - time.time()))}
    response = jsonify(body)
    # The answer depends on the Authorization header: no shared cache may keep or reuse it.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Authorization"
    return response


# ---- search and names ----------------------------------------------------------------------
def _search_schema(fragments: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": {k: dict(v) for k, v in fragments.items()},
            "additionalProperties": False}


@bp.route("/instruments/<instrument>/search", methods=["GET", "POST"])
def search(instrument: str):
    service = _service()
    plugin = service.instrument(instrument)
    identity = service.tokens.identity(request)
    fragments = plugin.search_parameters()
    if fragments is None:
        raise ApiError(404, f"instrument {instrument!r} offers no observation search",
                       code="no_search")
    if request.method == "POST":
        raw, strings = _json_body(), False
    else:
        raw = {k: (v if len(v) > 1 else v[0]) for k, v in request.args.lists() if k != "token"}
        strings = True
    try:
        criteria = normalise(_search_schema(fragments), raw, strings=strings)
    except InvalidParameters as exc:
        raise invalid_parameters(exc.problems) from None
    try:
        found = plugin.search(criteria, identity)
    except QueryError as exc:
        raise invalid_parameters([ParameterProblem(exc.parameter, "/" + exc.parameter,
                                                   exc.reason)]) from None
    except LookupError as exc:
        raise ApiError(404, str(exc), code="not_found") from None
    return jsonify({"instrument": instrument, "criteria": criteria, **found})


@bp.get("/resolve")
def resolve():
    name = request.args.get("name", "").strip()
    if not name:
        raise invalid_parameters([ParameterProblem("name", "/name", "missing: give a source name")])
    try:
        found = _service().names.resolve(name)
    except LookupError as exc:
        raise ApiError(404, str(exc), code="unknown_name",
                       extra={"suggestions": list(getattr(exc, "suggestions", []))}) from None
    return jsonify(found.to_dict())


# ---- jobs ----------------------------------------------------------------------------------
def _wait_for(service: Service, job: Job, wait_s: float) -> Job:
    """The job once it has finished or moved (a step ended, it was claimed), or after
    `wait_s`. A move is answered only after PROGRESS_SETTLE_S, so that a burst of steps
    restored from the cache comes back as one answer rather than one request per step."""
    start = time.monotonic()
    deadline = start + wait_s
    seen = job.updated
    pause = 0.02
    while not job.complete and time.monotonic() < deadline:
        if job.updated != seen and time.monotonic() - start >= PROGRESS_SETTLE_S:
            break
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 1.5, 0.25)
        job = service.jobs.get(job.id) or job
    return job


def job_response(service: Service, job: Job) -> Response:
    with_report = request.args.get("report", "true").lower() not in ("0", "false", "no")
    response = jsonify(job_json(service, job, with_report=with_report))
    response.status_code = 200 if job.complete else 202
    response.headers["Location"] = f"{base_url(service)}/api/v1/jobs/{job.id}"
    if not job.complete:
        response.headers["Retry-After"] = "1"
    return response


@bp.post("/jobs")
def submit_job():
    service = _service()
    identity = service.tokens.identity(request)
    wait_s = _number_arg("wait", 0, MAX_WAIT_S)
    body = _json_body()
    unknown = sorted(set(body) - {"instrument", "product", "params"})
    problems = [ParameterProblem(k, "/" + k, "unknown field (expected instrument, product, "
                                 "params)") for k in unknown]
    for field in ("instrument", "product"):
        if not isinstance(body.get(field), str) or not body.get(field):
            problems.append(ParameterProblem(field, "/" + field, "missing: a name is required"))
    params = body.get("params", {})
    if not isinstance(params, dict):
        problems.append(ParameterProblem("params", "/params", "must be a JSON object"))
    if problems:
        raise invalid_parameters(problems)
    prepared = service.prepare(body["instrument"], body["product"], params)
    job = service.submit(prepared, identity)
    return job_response(service, _wait_for(service, job, wait_s))


@bp.get("/jobs")
def list_jobs():
    service = _service()
    identity = service.tokens.identity(request)
    limit = int(_number_arg("limit", 50, MAX_LIST))
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        raise invalid_parameters([ParameterProblem("status", "/status",
                                                   f"must be one of {', '.join(STATUSES)}")])
    mine = request.args.get("mine", "false").lower() in ("1", "true", "yes")
    if mine and identity.anonymous:
        raise ApiError(401, "listing your own jobs needs a token (mine=true)",
                       code="token_required")
    found = []
    for job in service.jobs.list(status=status, instrument=request.args.get("instrument"),
                                 subject=identity.subject if mine else None):
        if len(found) >= limit:
            break
        if may_access(identity, job.units):
            found.append(job_summary_json(service, job))
    return jsonify({"jobs": found, "count": len(found)})


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    service = _service()
    job = service.job(job_id, service.tokens.identity(request))
    return job_response(service, _wait_for(service, job, _number_arg("wait", 0, MAX_WAIT_S)))


@bp.post("/jobs/<job_id>/retry")
def retry_job(job_id: str):
    service = _service()
    job = service.job(job_id, service.tokens.identity(request))
    if job.status == "done":
        raise ApiError(409, "the job is done; there is nothing to retry", code="job_done")
    if job.status == "failed":
        job = service.retry(job)
    return job_response(service, job)


def done_job(job_id: str) -> tuple[Service, Job]:
    """The service and the caller's done job `job_id` (404, 403 or 409 otherwise)."""
    service = _service()
    job = service.job(job_id, service.tokens.identity(request))
    if job.status != "done":
        raise ApiError(409, f"the job is {job.status}: its products are available once it is "
                            "done", code="job_not_done")
    return service, job


def evicted(service: Service, job: Job) -> ApiError:
    """Queue a done job whose product left the cache again; the error that says so."""
    service.retry(job)
    return ApiError(409, "a product of this job has left the cache; the job was queued again "
                         "and will restore it", code="job_requeued",
                    headers={"Retry-After": "1"})


@bp.get("/jobs/<job_id>/products")
def products(job_id: str):
    service, job = done_job(job_id)
    base = base_url(service)
    served = served_outputs(service, job, base)
    if served is None:
        raise evicted(service, job)
    outputs = [{"name": o["name"], "kind": o["kind"], "description": o["description"],
                "unit": o["unit"], "step": o["step"], "version": o["version"],
                "chain": o["chain"], "key": o["key"], "size": f.size, "meta": dict(p.meta),
                "url": output_url(base, job, o["name"])}
               for o, p, f in served]
    return jsonify({"job_id": job.id, "status": job.status,
                    "link": link(base, job.instrument, job.product, job.params),
                    "archive": f"{base}/api/v1/jobs/{job.id}/archive", "outputs": outputs})


@bp.get("/jobs/<job_id>/products/<name>")
def product_file(job_id: str, name: str):
    service, job = done_job(job_id)
    output = next((o for o in job.outputs if o["name"] == name), None)
    if output is None:
        raise ApiError(404, f"job {job.id} has no output {name!r}; it has: "
                            f"{', '.join(o['name'] for o in job.outputs)}", code="unknown_output")
    served = served_output(service, job, output, base_url(service))
    if served is None:
        raise evicted(service, job)
    _, served_file = served
    response = Response(served_file.chunks(), mimetype="application/fits")
    response.headers["Content-Length"] = str(served_file.size)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/jobs/<job_id>/archive")
def archive(job_id: str):
    service, job = done_job(job_id)
    base = base_url(service)
    served = served_outputs(service, job, base)
    if served is None:
        raise evicted(service, job)
    folder = f"xoda-{job.instrument}-{job.product}-{job.id[:12]}"
    record = job_json(service, job)
    extras = {"job.json": json_text(record), "reproduce.py": python_snippet(base, job),
              "reproduce_oda_api.py": oda_snippet(base, job),
              "README.txt": f"xoda job {job.id}\n{job.instrument} / {job.product}\n\n"
                            f"Reproducible link:\n{record['link']}\n\nFiles:\n" + "".join(
                                f"  {o['name']}: {o['kind']}. {o['description']}\n"
                                for o, _, _ in served)}
    handle = write_archive(service.settings.data_path / "tmp", folder,
                           [(o["name"], f) for o, _, f in served], extras, mtime=job.finished)
    return send_file(handle, mimetype="application/gzip", as_attachment=True,
                     download_name=f"{folder}.tar.gz")


@bp.get("/jobs/<job_id>/snippet")
def snippet(job_id: str):
    service = _service()
    job = service.job(job_id, service.tokens.identity(request))
    lang = request.args.get("lang", "python")
    makers = {"python": python_snippet, "oda_api": oda_snippet}
    if lang not in makers:
        raise invalid_parameters([ParameterProblem("lang", "/lang",
                                                   "must be one of python, oda_api")])
    return Response(makers[lang](base_url(service), job), mimetype="text/x-python")
