"""Pages for people: the home page and the reproducible links.

`/q/<instrument>/<product>?<parameters>` is the permanent link of a query. Opening it submits
the query (the same job for the same normalised parameters, so it comes from the cache when
the results are there, and is recomputed otherwise) and shows the job's results; with
`Accept: application/json` it answers the job record, like `POST /api/v1/jobs`.
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from .api import job_response
from .service import Service
from .views import base_url, job_json

bp = Blueprint("links", __name__)


def _service() -> Service:
    return current_app.extensions["xoda"]


@bp.get("/")
def home():
    service = _service()
    catalogue = [(service.instruments[name], service.product_types(name))
                 for name in sorted(service.instruments)]
    return render_template("index.html", catalogue=catalogue, base=base_url(service))


@bp.get("/q/<instrument>/<product>")
def query_link(instrument: str, product: str):
    service = _service()
    identity = service.tokens.identity(request)
    raw = {k: (v if len(v) > 1 else v[0]) for k, v in request.args.lists() if k != "token"}
    prepared = service.prepare(instrument, product, raw, strings=True)
    job = service.submit(prepared, identity)
    wanted = request.accept_mimetypes.best_match(["text/html", "application/json"])
    if wanted == "application/json":
        return job_response(service, job)
    record = job_json(service, job)
    status = 200 if job.complete else 202
    return render_template("query.html", job=record,
                           schema=prepared.product.schema()["properties"]), status
