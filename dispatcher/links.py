"""Reproducible links: `/q/<instrument>/<product>?<parameters>` is the permanent link of a query.

Opening it submits the query (the same job for the same normalised parameters, so it comes
from the cache when the results are there, and is recomputed otherwise). A browser gets the
web form opened on that query and its job (`templates/query.html`: the form filled with the
parameters, the live status, plots, fit table and downloads; without JavaScript, the job's
status, files and report as plain HTML); with `Accept: application/json` it answers the job
record, like `POST /api/v1/jobs`. Invalid parameters in a browser show the form with each
problem next to its field (HTTP 400); as JSON they are the usual error. Data the caller may
not see give a browser the form saying so (HTTP 403; the page retries with the tab's token),
and a program the usual 403.
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from .api import job_response
from .errors import ApiError
from .service import Service
from .views import job_json
from .web import boot_data

bp = Blueprint("links", __name__)


def _service() -> Service:
    return current_app.extensions["xoda"]


@bp.get("/q/<instrument>/<product>")
def query_link(instrument: str, product: str):
    service = _service()
    identity = service.tokens.identity(request)
    raw = {k: (v if len(v) > 1 else v[0]) for k, v in request.args.lists() if k != "token"}
    wants_json = request.accept_mimetypes.best_match(["text/html", "application/json"]) \
        == "application/json"
    try:
        prepared = service.prepare(instrument, product, raw, strings=True)
    except ApiError as exc:
        # Only browsers (which ask for HTML by name) get the form; programs get the error.
        browser = "text/html" in request.headers.get("Accept", "")
        if wants_json or not browser or exc.status != 400 or not exc.problems:
            raise
        link = {"instrument": instrument, "product": product, "params": raw,
                "errors": exc.body(), "job_id": None}
        return render_template("query.html", job=None, error=exc.body(),
                               boot=boot_data(service, link)), 400
    try:
        job = service.submit(prepared, identity)
    except ApiError as exc:
        # A browser following a link carries no token (the page keeps it out of URLs and
        # cookies): it gets the form on the query, saying the data are not available, and
        # the page asks again with the token of the tab if it has one. The answer is the
        # service's generic 403 and the parameters the link itself holds: nothing more.
        if wants_json or "text/html" not in request.headers.get("Accept", "") \
                or exc.status != 403:
            raise
        link = {"instrument": instrument, "product": product, "params": prepared.params,
                "errors": exc.body(), "job_id": None}
        return render_template("query.html", job=None, error=exc.body(),
                               boot=boot_data(service, link)), 403
    if wants_json:
        return job_response(service, job)
    record = job_json(service, job)
    link = {"instrument": instrument, "product": product, "params": job.params,
            "job_id": job.id, "errors": None}
    return render_template("query.html", job=record, error=None,
                           schema=prepared.product.schema()["properties"],
                           boot=boot_data(service, link)), 200 if job.complete else 202
