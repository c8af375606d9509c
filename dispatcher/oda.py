"""ODA-compatible endpoints, so that the `oda_api` 1.3.5 client works against xoda unchanged.

- `/run_analysis` (GET, or POST with a form body): submit and poll. The client resends the
  whole query with `query_status` and, once known, `job_id`; every call is normalised exactly
  like a REST submission and lands on the same job. Replies use the client's status
  vocabulary (`submitted`, `progress`, `done`, `failed`), `job_monitor` with one
  `full_report_dict_list` entry per unit and step, `exit_status` with every field the client
  indexes, and on `done` the products in the `NumpyDataProduct` encoding.
- `/api/par-names`, `/api/meta-data`, `/api/instr-list`: parameter names, the ODA parameter
  description, the instrument list.

Differences from the ODA dispatcher, on purpose: unknown parameters are refused by name
(400) instead of silently dropped; an invalid or expired token gives 401 (which the client
reports at once, without retrying); the token never appears in any reply.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Mapping

from flask import Blueprint, current_app, jsonify, request

from dataserver import __version__

from .errors import ApiError, error_response
from .jobstore import Job
from .oda_encoding import numpy_data_product, oda_safe
from .service import Service
from .views import base_url, iso, link, oda_snippet, served_outputs

bp = Blueprint("oda", __name__)

# Transport arguments of the ODA protocol: never science parameters.
RESERVED = frozenset({
    "instrument", "product_type", "query_type", "query_status", "session_id", "job_id", "token",
    "api", "oda_api_version", "off_line", "verbose", "async_dispatcher", "allow_unknown_args",
    "run_asynch", "dry_run", "client-name", "return_progress",
})
# The ODA names of the common parameters (its `src_query`).
SOURCE_QUERY = ("src_name", "RA", "DEC", "T1", "T2", "T_format")


def _service() -> Service:
    return current_app.extensions["xoda"]


@bp.errorhandler(ApiError)
def _oda_error(error: ApiError):
    """The one error shape, plus what the ODA client reads in error replies."""
    session_id = request.values.get("session_id", "")
    error.extra.update({
        "error_message": error.message, "query_status": "failed", "job_status": "failed",
        "session_id": session_id, "status_code": error.status, "products": {},
        "exit_status": {"status": 1, "job_status": "failed", "message": error.message,
                        "error_message": error.message, "debug_message": "", "comment": "",
                        "warning": ""},
        "job_monitor": {"job_id": request.values.get("job_id", ""), "session_id": session_id,
                        "status": "failed"},
        "installed_instruments": sorted(_service().instruments),
        "xoda_version": __version__,
    })
    error.extra = oda_safe(error.extra)
    return error_response(error)


def _science_arguments(values) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for name, items in values.lists():
        if name in RESERVED:
            continue
        raw[name] = items if len(items) > 1 else items[0]
    unit = raw.pop("time_bin_format", None)
    if unit is not None and unit not in ("sec", "s", "\x00"):
        raise ApiError(400, f"time_bin_format {unit!r} is not supported: give time_bin in "
                            "seconds (time_bin_format=sec)", code="invalid_parameters")
    return raw


@bp.route("/run_analysis", methods=["GET", "POST"])
def run_analysis():
    service = _service()
    values = request.values
    received = time.time()
    identity = service.tokens.identity(request)
    instrument = values.get("instrument")
    product = values.get("product_type")
    if not instrument or not product:
        missing = [n for n, v in (("instrument", instrument), ("product_type", product)) if not v]
        raise ApiError(400, f"missing request parameter(s): {', '.join(missing)}",
                       code="missing_parameter")
    query_type = values.get("query_type", "Real")
    if query_type != "Real":
        raise ApiError(400, f"query_type {query_type!r} is not supported: xoda runs Real "
                            "queries only", code="invalid_parameters")
    prepared = service.prepare(instrument, product, _science_arguments(values), strings=True)
    asked_job = values.get("job_id")
    if asked_job and asked_job != prepared.job.id:
        raise ApiError(400, f"job_id {asked_job} does not belong to these parameters (their "
                            f"job is {prepared.job.id})", code="job_mismatch")
    status_in = values.get("query_status", "new")
    job = service.jobs.get(prepared.job.id)
    if status_in == "new" or job is None:
        job = service.submit(prepared, identity)
    else:
        service.authorise(identity, job.units)
    session_id = values.get("session_id") or uuid.uuid4().hex[:16].upper()
    return jsonify(oda_safe(_reply(service, job, session_id, received)))


def _analysis_parameters(job: Job) -> dict[str, Any]:
    return {"instrument": job.instrument, "product_type": job.product, "query_type": "Real",
            **job.params}


def _report_entries(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"scwid": ev["unit"] or "", "node": ev["step"], "version": str(ev["version"]),
             "message": ev["message"], "state": ev["state"], "time": iso(ev["time"]),
             "elapsed_s": ev["elapsed"]} for ev in events]


def _reply(service: Service, job: Job, session_id: str, received: float) -> dict[str, Any]:
    base = base_url(service)
    job_link = link(base, job.instrument, job.product, job.params)
    status = job.status
    products: dict[str, Any] = {
        "analysis_parameters": _analysis_parameters(job),
        "api_code": oda_snippet(base, job),
        "input_prod_list": [u["id"] for u in job.units],
        "link": job_link,
    }
    comment = ""
    if status == "done":
        encoded = _encoded_products(service, job, base, job_link)
        if encoded is None:
            job = service.retry(job)
            status = job.status
        else:
            products.update({"numpy_data_product_list": encoded, "binary_data_product_list": [],
                             "prod_process_message": "", "job_id": job.id,
                             "session_id": session_id})
            comment = f"reproducible link: {job_link}"
    events = service.jobs.events(job.id, job.run) if job.run else []
    exit_status = {"status": 0, "job_status": status, "message": "", "error_message": "",
                   "debug_message": "", "comment": comment, "warning": ""}
    if status == "failed":
        error = job.error or {"message": "the job failed", "failures": []}
        exit_status.update({
            "status": 1, "message": f"failed: {error['message']}",
            "error_message": "; ".join(
                f"{f['unit'] + ': ' if f.get('unit') else ''}{f['step']}: {f['message']}"
                for f in error.get("failures", [])) or error["message"]})
    entries = _report_entries(events)
    return {
        "query_status": status, "job_status": status, "session_id": session_id,
        "time_request": received, "exit_status": exit_status,
        "job_monitor": {"job_id": job.id, "session_id": session_id, "status": status,
                        "full_report_dict": entries[-1] if entries else {},
                        "full_report_dict_list": entries},
        "products": products,
    }


def _encoded_products(service: Service, job: Job, base: str, job_link: str) -> list | None:
    """Every output in the NumpyDataProduct encoding; None if one has left the cache."""
    served = served_outputs(service, job, base)
    if served is None:
        return None
    encoded = []
    for output, product, served_file in served:
        meta = {"src_name": str(job.params.get("src_name") or ""), "product": output["kind"],
                "file_name": output["name"], "kind": output["kind"],
                "description": output["description"], "unit": output["unit"] or "",
                "step": output["step"], "version": str(output["version"]),
                "link": job_link, "meta": dict(product.meta)}
        name = output["name"].rsplit(".", 1)[0] if output["name"].lower().endswith(
            (".fits", ".fit", ".pha", ".rmf", ".arf", ".lc", ".gti")) else output["name"]
        with served_file.hdulist() as hdul:
            encoded.append(numpy_data_product(hdul, name, meta))
    return encoded


# ---- parameter descriptions ----------------------------------------------------------------
@bp.get("/api/instr-list")
def instr_list():
    return jsonify(sorted(_service().instruments))


def _described_products(service) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The request's instrument, all its product types and the ones asked about (the
    `product_type` argument, else all)."""
    instrument = request.args.get("instrument")
    if not instrument:
        raise ApiError(400, "missing request parameter: instrument", code="missing_parameter")
    products = service.product_types(instrument)
    product = request.args.get("product_type")
    chosen = {product: service.product_type(instrument, product)} if product else products
    return instrument, products, chosen


@bp.get("/api/par-names")
def par_names():
    _, _, chosen = _described_products(_service())
    names: list[str] = []
    for ptype in chosen.values():
        for name in ptype.schema()["properties"]:
            if name not in names:
                names.append(name)
    # Also accepted, as by the ODA dispatcher: the token, and the unit companion of time_bin.
    names += ["token"] + (["time_bin_format"] if "time_bin" in names else [])
    return jsonify(oda_safe(names))


def _oda_parameter(name: str, fragment: Mapping[str, Any], required: bool) -> dict[str, Any]:
    restrictions: dict[str, Any] = {"is_optional": not required and "default" not in fragment}
    if "enum" in fragment:
        restrictions["allowed_values"] = list(fragment["enum"])
    for key, oda_key in (("minimum", "min_value"), ("exclusiveMinimum", "min_value"),
                         ("maximum", "max_value"), ("exclusiveMaximum", "max_value")):
        if key in fragment:
            restrictions[oda_key] = fragment[key]
    kind = fragment.get("type")
    if "x-time" in fragment:
        units = "isot"
    elif fragment.get("unit"):
        units = fragment["unit"]
    else:
        units = "str" if kind == "string" else (kind if isinstance(kind, str) else None)
    entry = {"name": name, "units": units, "value": fragment.get("default"),
             "restrictions": restrictions,
             "extra_metadata": {"description": fragment.get("description", ""),
                                "schema": dict(fragment)}}
    return entry


@bp.get("/api/meta-data")
def meta_data():
    service = _service()
    instrument, products, chosen = _described_products(service)
    plugin = service.instrument(instrument)
    description: list[Any] = [{"instrumet": plugin.name},
                              {"prod_dict": {name: f"{name}_query" for name in products}}]
    for name, ptype in chosen.items():
        schema = ptype.schema()
        required = set(schema.get("required", []))
        source = [{"query_name": "src_query"}]
        specific = [{"query_name": f"{name}_query"}, {"product_name": name}]
        for pname, fragment in schema["properties"].items():
            target = source if pname in SOURCE_QUERY else specific
            target.append(_oda_parameter(pname, fragment, pname in required))
        description.extend([source, specific])
    return jsonify(oda_safe([description]))
