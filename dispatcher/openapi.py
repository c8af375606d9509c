"""The OpenAPI 3.1 description of every route, served at `/api/v1/openapi.json`.

`tests/test_dispatcher_openapi.py` checks it against the Flask URL map in both directions,
so a route added without its description (or described but gone) fails the suite.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from dataserver import __version__

from .views import base_url

bp = Blueprint("openapi", __name__)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    meaning = {400: "Invalid request: every bad parameter is listed in `errors`",
               401: "Invalid or expired token", 403: "The data are not public and the token "
               "does not grant them", 404: "Unknown instrument, product, job or output",
               409: "The job is not in a state that allows this", 415: "Body is not JSON",
               422: "The output cannot be read as its kind says"}
    return {str(code): {"description": meaning[code], "content": {"application/json": {
        "schema": _ref("Error")}}} for code in codes}


def _param(name: str, where: str, description: str, schema: dict[str, Any] | None = None,
           required: bool | None = None) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description,
            "required": where == "path" if required is None else required,
            "schema": schema or {"type": "string"}}


INSTRUMENT = _param("instrument", "path", "Instrument name, e.g. hxmt_he")
PRODUCT = _param("product", "path", "Product name, e.g. spectrum")
JOB_ID = _param("job_id", "path", "Job id: the sha256 content key of the normalised query")
WAIT = _param("wait", "query", "Long poll: seconds (at most 25) to wait for the job to finish "
              "or move (a step finished) before answering",
              {"type": "number", "minimum": 0, "maximum": 25}, False)
TOKEN = _param("token", "query", "User token, for clients that cannot send "
               "`Authorization: Bearer` (e.g. oda_api)", required=False)
REPORT = _param("report", "query", "false: leave out the per-unit/per-step report (the "
                "progress counts stay)", {"type": "boolean"}, False)
JOB_ANSWERS = {"200": _json(_ref("Job"), "The job, finished (done or failed)"),
               "202": _json(_ref("Job"), "The job, submitted or in progress; poll its URL")}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["status", "code", "error"], "properties": {
        "status": {"type": "integer"}, "code": {"type": "string"},
        "error": {"type": "string", "description": "One-line message"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "parameter": {"type": "string"}, "path": {"type": "string",
                                                      "description": "JSON pointer"},
            "reason": {"type": "string"}}}},
        "reference": {"type": "string", "description": "For 5xx: reference in the server log"}}},
    "ProductSummary": {"type": "object", "properties": {
        "name": {"type": "string"}, "title": {"type": "string"},
        "description": {"type": "string"}, "url": {"type": "string"}}},
    "Instrument": {"type": "object", "properties": {
        "name": {"type": "string"}, "title": {"type": "string"}, "mission": {"type": "string"},
        "description": {"type": "string"},
        "products": {"type": "array", "items": _ref("ProductSummary")},
        "search": {"type": ["object", "null"], "properties": {
            "schema": {"type": "object"}, "url": {"type": "string"}}}}},
    "Product": {"type": "object", "properties": {
        "instrument": {"type": "string"}, "name": {"type": "string"},
        "title": {"type": "string"}, "description": {"type": "string"},
        "schema": {"type": "object", "description": "JSON Schema of the parameters, with "
                   "`unit`, bounds, defaults, enums and descriptions"}}},
    "Submission": {"type": "object", "required": ["instrument", "product"],
                   "additionalProperties": False, "properties": {
                       "instrument": {"type": "string"}, "product": {"type": "string"},
                       "params": {"type": "object"}}},
    "ReportEntry": {"type": "object", "properties": {
        "unit": {"type": ["string", "null"]}, "step": {"type": "string"},
        "version": {"type": ["integer", "string"]},
        "state": {"enum": ["computed", "restored", "failed"]}, "message": {"type": "string"},
        "time": {"type": "string"}, "elapsed_s": {"type": ["number", "null"]}}},
    "Job": {"type": "object", "properties": {
        "job_id": {"type": "string"}, "instrument": {"type": "string"},
        "product": {"type": "string"}, "params": {"type": "object"},
        "status": {"enum": ["submitted", "progress", "done", "failed"]},
        "created": {"type": "string"}, "updated": {"type": "string"},
        "started": {"type": ["string", "null"]}, "finished": {"type": ["string", "null"]},
        "elapsed_s": {"type": ["number", "null"]}, "run": {"type": "integer"},
        "progress": {"type": "object", "properties": {
            k: {"type": "integer"} for k in ("steps_total", "steps_done", "units_total",
                                             "units_done", "computed", "restored", "failed")}},
        "units": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "string"}, "label": {"type": "string"}}}},
        "summary": {"type": "object"},
        "error": {"type": ["object", "null"], "properties": {
            "message": {"type": "string"}, "failures": {"type": "array", "items": {
                "type": "object", "properties": {"unit": {"type": ["string", "null"]},
                                                 "step": {"type": "string"},
                                                 "message": {"type": "string"}}}}}},
        "outputs": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "kind": {"type": "string"},
            "description": {"type": "string"}, "unit": {"type": ["string", "null"]},
            "url": {"type": "string"}}}},
        "report": {"type": "array", "items": _ref("ReportEntry")},
        "link": {"type": "string", "description": "Reproducible link"},
        "urls": {"type": "object"}, "snippets": {"type": "object", "properties": {
            "python": {"type": "string"}, "oda_api": {"type": "string"}}},
        "poll_after_s": {"type": "number"}, "xoda_version": {"type": "string"}}},
    "JobSummary": {"type": "object", "properties": {
        k: {"type": "string"} for k in ("job_id", "instrument", "product", "status", "created",
                                        "updated", "url", "link")}},
    "Output": {"type": "object", "properties": {
        "name": {"type": "string"}, "kind": {"type": "string"},
        "description": {"type": "string"}, "unit": {"type": ["string", "null"]},
        "step": {"type": "string"}, "version": {"type": ["integer", "string"]},
        "chain": {"type": "array", "items": {"type": "object"}}, "key": {"type": "string"},
        "size": {"type": "integer", "description": "Bytes of the served file"},
        "meta": {"type": "object", "description": "The step's metadata record (fit results, "
                 "GTI summaries, ...)"}, "url": {"type": "string"}}},
    "Products": {"type": "object", "properties": {
        "job_id": {"type": "string"}, "status": {"type": "string"}, "link": {"type": "string"},
        "archive": {"type": "string"}, "outputs": {"type": "array", "items": _ref("Output")}}},
    "TableData": {"type": "object", "properties": {
        "job_id": {"type": "string"}, "name": {"type": "string"}, "kind": {"type": "string"},
        "columns": {"type": "object", "description": "Column name -> list of numbers (null "
                    "where not finite)"},
        "units": {"type": "object"}, "rows": {"type": "integer"},
        "rows_total": {"type": "integer", "description": "Rows in the file"},
        "binning": {"type": "integer", "description": "Rows of the file per row sent"},
        "dropped": {"type": "integer", "description": "Rows left out for non-finite values"},
        "time_reference": {"type": "object", "description": "Light curves and GTIs: TIMESYS, "
                           "TIMEUNIT, MJDREF(I/F), t0 (start of the first bin) and t0_iso"}}},
    "Whoami": {"type": "object", "required": ["anonymous", "subject", "roles", "expires"],
               "properties": {
                   "anonymous": {"type": "boolean", "description": "True when no token was sent"},
                   "subject": {"type": ["string", "null"], "description": "The token's subject"},
                   "roles": {"type": "array", "items": {"type": "string"}},
                   "issued": {"type": ["string", "null"], "description": "ISO 8601 UTC"},
                   "expires": {"type": ["string", "null"], "description": "ISO 8601 UTC"},
                   "expires_in_s": {"type": ["integer", "null"],
                                    "description": "Seconds of validity left"}}},
    "OdaReply": {"type": "object", "description": "ODA dispatcher reply (see the README)",
                 "properties": {"query_status": {"type": "string"},
                                "exit_status": {"type": "object"},
                                "job_monitor": {"type": "object"},
                                "products": {"type": "object"}}},
}


def document(base: str) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/health": {"get": {"summary": "Liveness and the instruments served",
                            "responses": {"200": _json({"type": "object"}, "OK")}}},
        "/": {"get": {"summary": "The web form (HTML + JavaScript): search, parameters, GTI "
                                 "step, job status, plots, fits, downloads, links",
                      "responses": {"200": {"description": "HTML page"}}}},
        "/web/plotly.min.js": {"get": {
            "summary": "The plotly package's bundled plotly.min.js, for the web form's plots",
            "responses": {"200": {"description": "JavaScript", "content": {
                "text/javascript": {}}}, **_errors(404)}}},
        "/static/{filename}": {"get": {
            "summary": "Static files of the web pages (scripts, styles)",
            "parameters": [_param("filename", "path", "File name")],
            "responses": {"200": {"description": "The file"}, **_errors(404)}}},
        "/q/{instrument}/{product}": {"get": {
            "summary": "Reproducible link: submit the query given by the query string; a "
                       "browser gets the web form opened on the query and its results (HTML; "
                       "400 with each problem next to its field; 403 saying only that the data "
                       "are not available, the page then retrying with its token), a program "
                       "the job (Accept: application/json)",
            "parameters": [INSTRUMENT, PRODUCT, TOKEN],
            "responses": {**JOB_ANSWERS, **_errors(400, 401, 403, 404)}}},
        "/api/v1/openapi.json": {"get": {"summary": "This document",
                                         "responses": {"200": _json({"type": "object"}, "OK")}}},
        "/api/v1/instruments": {"get": {
            "summary": "Instruments, their products and observation search",
            "responses": {"200": _json({"type": "object", "properties": {"instruments": {
                "type": "array", "items": _ref("Instrument")}}}, "OK")}}},
        "/api/v1/instruments/{instrument}": {"get": {
            "summary": "One instrument", "parameters": [INSTRUMENT],
            "responses": {"200": _json(_ref("Instrument"), "OK"), **_errors(404)}}},
        "/api/v1/instruments/{instrument}/products/{product}": {"get": {
            "summary": "A product and the JSON Schema of its parameters",
            "parameters": [INSTRUMENT, PRODUCT],
            "responses": {"200": _json(_ref("Product"), "OK"), **_errors(404)}}},
        "/api/v1/instruments/{instrument}/search": {
            "get": {"summary": "Observation search; criteria in the query string (see the "
                               "instrument's search schema); rows are those the caller may see",
                    "parameters": [INSTRUMENT, TOKEN],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "total": {"type": "integer"}, "rows": {"type": "array"},
                        "columns": {"type": "array"}, "criteria": {"type": "object"}}}, "OK"),
                        **_errors(400, 401, 404)}},
            "post": {"summary": "Observation search with criteria as a JSON object",
                     "parameters": [INSTRUMENT],
                     "requestBody": {"content": {"application/json": {"schema": {
                         "type": "object"}}}},
                     "responses": {"200": _json({"type": "object"}, "OK"),
                                   **_errors(400, 401, 404, 415)}}},
        "/api/v1/whoami": {"get": {
            "summary": "Check the caller's token on the server: its subject, roles and expiry "
                       "(never the token), or anonymous without one; not cached",
            "parameters": [TOKEN],
            "responses": {"200": _json(_ref("Whoami"), "Who the token says the caller is"),
                          **_errors(401)}}},
        "/api/v1/resolve": {"get": {
            "summary": "Resolve a source name to coordinates",
            "parameters": [_param("name", "query", "Source name, e.g. Crab", required=True)],
            "responses": {"200": _json({"type": "object", "properties": {
                "query": {"type": "string"}, "name": {"type": "string"},
                "ra": {"type": "number"}, "dec": {"type": "number"},
                "aliases": {"type": "array", "items": {"type": "string"}},
                "type": {"type": "string"}, "origin": {"enum": ["catalogue", "sesame"]}}},
                "Canonical name and J2000 coordinates (deg)"),
                **_errors(400, 404)}}},
        "/api/v1/jobs": {
            "post": {"summary": "Submit a query; the same normalised query is the same job",
                     "parameters": [WAIT, REPORT],
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": _ref("Submission")}}},
                     "responses": {**JOB_ANSWERS, **_errors(400, 401, 403, 404, 415)}},
            "get": {"summary": "Jobs the caller may see, most recently updated first",
                    "parameters": [
                        _param("status", "query", "Only jobs in this status", {
                            "enum": ["submitted", "progress", "done", "failed"]}, False),
                        _param("instrument", "query", "Only this instrument", required=False),
                        _param("mine", "query", "Only jobs the token's subject submitted",
                               {"type": "boolean"}, False),
                        _param("limit", "query", "At most this many (default 50)",
                               {"type": "integer", "maximum": 500}, False)],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "jobs": {"type": "array", "items": _ref("JobSummary")},
                        "count": {"type": "integer"}}}, "OK"), **_errors(400, 401)}}},
        "/api/v1/jobs/{job_id}": {"get": {
            "summary": "A job: status, per-unit/per-step report, outputs, link, snippets",
            "parameters": [JOB_ID, WAIT, REPORT],
            "responses": {**JOB_ANSWERS, **_errors(400, 401, 403, 404)}}},
        "/api/v1/jobs/{job_id}/retry": {"post": {
            "summary": "Run a failed job again; finished units come from the cache",
            "parameters": [JOB_ID],
            "responses": {**JOB_ANSWERS, **_errors(401, 403, 404, 409)}}},
        "/api/v1/jobs/{job_id}/products": {"get": {
            "summary": "JSON metadata of every output of a done job",
            "parameters": [JOB_ID],
            "responses": {"200": _json(_ref("Products"), "OK"),
                          **_errors(401, 403, 404, 409)}}},
        "/api/v1/jobs/{job_id}/products/{name}": {"get": {
            "summary": "One output as a FITS file, with the job's provenance in its header",
            "parameters": [JOB_ID, _param("name", "path", "Output file name")],
            "responses": {"200": {"description": "FITS file", "content": {
                "application/fits": {}}}, **_errors(401, 403, 404, 409)}}},
        "/api/v1/jobs/{job_id}/products/{name}/data": {"get": {
            "summary": "The columns of one output for plotting: light curve (time, rate, "
                       "error, fracexp), spectrum or background (rate and error per keV with "
                       "the response's energies, scaled background), fit (grouped data, "
                       "folded model, residuals), GTI, ARF, EBOUNDS; rebinned beyond "
                       "max_points rows; no NaN (null or dropped)",
            "parameters": [JOB_ID, _param("name", "path", "Output file name"),
                           _param("max_points", "query", "Rebin tables longer than this "
                                  "(default 5000)", {"type": "integer", "minimum": 10,
                                                     "maximum": 100000}, False)],
            "responses": {"200": _json(_ref("TableData"), "OK"),
                          **_errors(400, 401, 403, 404, 409, 422)}}},
        "/api/v1/instruments/{instrument}/products/{product}/times": {"get": {
            "summary": "Convert the product's time parameters (e.g. T1, T2) from the format "
                       "named by their format parameter (e.g. T_format=mjd) to `to` (any "
                       "format the schema declares: isot, mjd, hxmt_met, ...)",
            "parameters": [INSTRUMENT, PRODUCT,
                           _param("to", "query", "Target format", required=True),
                           _param("T_format", "query", "Format of the given times (default: "
                                  "the schema's default)", required=False),
                           _param("T1", "query", "A time parameter (any the product has)",
                                  required=False),
                           _param("T2", "query", "Another time parameter", required=False)],
            "responses": {"200": _json({"type": "object", "properties": {
                "format": {"type": "string"}, "values": {"type": "object"},
                "iso": {"type": "object", "description": "The same instants, ISO 8601 UTC"}}},
                "The times in the target format"), **_errors(400, 404)}}},
        "/api/v1/jobs/{job_id}/archive": {"get": {
            "summary": "All outputs, the job record and reproduction scripts as one tar.gz",
            "parameters": [JOB_ID],
            "responses": {"200": {"description": "tar.gz archive", "content": {
                "application/gzip": {}}}, **_errors(401, 403, 404, 409)}}},
        "/api/v1/jobs/{job_id}/snippet": {"get": {
            "summary": "Ready-to-run Python that reproduces the job",
            "parameters": [JOB_ID, _param("lang", "query", "python (xoda client) or oda_api",
                                          {"enum": ["python", "oda_api"]}, False)],
            "responses": {"200": {"description": "Python source", "content": {
                "text/x-python": {}}}, **_errors(400, 401, 403, 404)}}},
        "/run_analysis": {
            method: {"summary": "ODA protocol: submit or poll a query (oda_api 1.3.5)",
                     "parameters": [
                         _param("instrument", "query", "Instrument", required=True),
                         _param("product_type", "query", "Product name", required=True),
                         _param("query_status", "query", "new, or the last status received",
                                required=False),
                         _param("job_id", "query", "Job id, once known", required=False),
                         _param("session_id", "query", "Client session, echoed", required=False),
                         TOKEN],
                     "responses": {"200": _json(_ref("OdaReply"), "ODA reply"),
                                   **_errors(400, 401, 403, 404)}}
            for method in ("get", "post")},
        "/api/par-names": {"get": {
            "summary": "ODA: the parameter names of a product",
            "parameters": [_param("instrument", "query", "Instrument", required=True),
                           _param("product_type", "query", "Product", required=False)],
            "responses": {"200": _json({"type": "array", "items": {"type": "string"}}, "OK"),
                          **_errors(400, 404)}}},
        "/api/meta-data": {"get": {
            "summary": "ODA: parameter descriptions of an instrument or one product",
            "parameters": [_param("instrument", "query", "Instrument", required=True),
                           _param("product_type", "query", "Product", required=False), TOKEN],
            "responses": {"200": _json({"type": "array"}, "OK"), **_errors(400, 404)}}},
        "/api/instr-list": {"get": {
            "summary": "ODA: instrument names",
            "responses": {"200": _json({"type": "array", "items": {"type": "string"}}, "OK")}}},
    }
    return {"openapi": "3.1.0",
            "info": {"title": "xoda", "version": __version__,
                     "description": "Online data analysis for high-energy astronomy. Tokens: "
                                    "`Authorization: Bearer <token>` or the `token` parameter."},
            "servers": [{"url": base}],
            "components": {"schemas": SCHEMAS, "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
            "security": [{}, {"bearer": []}],
            "paths": paths}


@bp.get("/api/v1/openapi.json")
def openapi_json():
    return jsonify(document(base_url(current_app.extensions["xoda"])))
