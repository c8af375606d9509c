"""The web form's routes: the page itself, its Plotly bundle, and two small JSON helpers.

- `GET /`: the web form (`templates/index.html` + `static/web/*.js`): a token field, instrument tabs,
  observation search, parameter forms generated from the products' JSON Schemas, GTI step,
  live job status, plots, fits, downloads and the reproducible link. The same page answers
  the reproducible links (`dispatcher.links`), opened on the query's results.
- `GET /web/plotly.min.js`: the plotly package's own bundle, so the page needs nothing from
  outside the server (no CDN, no copy in the repository).
- `GET /api/v1/jobs/<job_id>/products/<name>/data`: the columns of an output for plotting
  (`dispatcher.plotdata`).
- `GET /api/v1/instruments/<i>/products/<p>/times`: time parameters written in one of the
  product's declared time formats, converted to another (the form's format selector), with
  the same astropy conversion as the normaliser.
"""
from __future__ import annotations

import math
from importlib import resources
from typing import Any, Mapping

from flask import Blueprint, current_app, jsonify, render_template, request, send_file

from dataserver import __version__
from dataserver.ogip import OgipFormatError
from dataserver.params import ISOT, ParameterProblem, iso_utc

from .api import done_job, evicted
from .errors import ApiError, invalid_parameters
from .plotdata import DEFAULT_POINTS, MAX_POINTS, NoTableView, output_table, unique_response
from .service import Service
from .views import base_url

bp = Blueprint("web", __name__)

# Digits kept when writing an instant as a number: 1 ms in seconds, under 1 ms in days, so
# converting back to ISO (millisecond precision) gives the same instant, hence the same job.
_DIGITS = {"s": 3, "d": 10}


def _service() -> Service:
    return current_app.extensions["xoda"]


def boot_data(service: Service, link: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the page's script starts from (everything else it asks the API)."""
    return {"api": "/api/v1", "version": __version__, "base": base_url(service), "link": link}


@bp.get("/")
def home():
    service = _service()
    catalogue = [(service.instruments[name], service.product_types(name))
                 for name in sorted(service.instruments)]
    return render_template("index.html", catalogue=catalogue, base=base_url(service),
                           boot=boot_data(service))


@bp.get("/web/plotly.min.js")
def plotly_bundle():
    try:
        bundle = resources.files("plotly") / "package_data" / "plotly.min.js"
    except ModuleNotFoundError:
        raise ApiError(404, "the plotly package is not installed: plots are unavailable",
                       code="not_found") from None
    if not bundle.is_file():
        raise ApiError(404, "the plotly package has no bundled plotly.min.js", code="not_found")
    # A day of caching: the bundle changes only when the package is upgraded.
    return send_file(str(bundle), mimetype="text/javascript", max_age=86400)


# ---- plot data -----------------------------------------------------------------------------
def _max_points() -> int:
    text = request.args.get("max_points")
    if text is None:
        return DEFAULT_POINTS
    try:
        value = int(text)
    except ValueError:
        raise invalid_parameters([ParameterProblem("max_points", "/max_points",
                                                   f"{text!r} is not an integer")]) from None
    if not 10 <= value <= MAX_POINTS:
        raise invalid_parameters([ParameterProblem("max_points", "/max_points",
                                                   f"must be between 10 and {MAX_POINTS}")])
    return value


@bp.get("/api/v1/jobs/<job_id>/products/<name>/data")
def product_data(job_id: str, name: str):
    max_points = _max_points()
    service, job = done_job(job_id)
    by_name = {o["name"]: o for o in job.outputs}
    output = by_name.get(name)
    if output is None:
        raise ApiError(404, f"job {job.id} has no output {name!r}; it has: "
                            f"{', '.join(by_name)}", code="unknown_output")
    product = service.products.get(output["key"])
    if product is None:
        raise evicted(service, job)

    def lookup(other: str):
        found = by_name.get(other)
        return service.products.get(found["key"]) if found else None

    try:
        table = output_table(output["kind"], product, lookup,
                             lambda: unique_response(job.outputs, service.products.get), max_points)
    except NoTableView as exc:
        raise ApiError(404, str(exc), code="no_table_view") from None
    except (OgipFormatError, KeyError, ValueError) as exc:
        raise ApiError(422, f"output {name!r} cannot be read as a {output['kind']}: {exc}",
                       code="unreadable_output") from None
    return jsonify({"job_id": job.id, "name": name, "kind": output["kind"],
                    "description": output["description"], "unit": output["unit"],
                    "max_points": max_points, **table})


# ---- time conversion -----------------------------------------------------------------------
def _write_time(iso: str, fmt: str, spec: Mapping[str, Any]) -> str | float:
    """ISO 8601 UTC -> `fmt` (the inverse of `dataserver.params.iso_utc`)."""
    if fmt == ISOT:
        return iso
    from astropy.time import Time  # deferred: astropy.time costs ~0.3 s to import

    scale = spec.get("scale", "utc")
    unit = spec.get("unit", "d")
    mjdrefi, mjdreff = int(spec.get("mjdrefi", 0)), float(spec.get("mjdreff", 0.0))
    instant = getattr(Time(iso, format="isot", scale="utc"), scale)
    if unit == "d":
        # Days are counted on the scale's own calendar (as iso_utc reads them): MJD - MJDREF.
        value = (instant.jd1 - 2400000.5 - mjdrefi) + (instant.jd2 - mjdreff)
    else:
        value = (instant - Time(mjdrefi, mjdreff, format="mjd", scale=scale)).sec
    return round(float(value), _DIGITS.get(unit, 6))


@bp.get("/api/v1/instruments/<instrument>/products/<product>/times")
def convert_times(instrument: str, product: str):
    """`?T_format=mjd&to=hxmt_met&T1=57992.1&T2=57992.2`: T1 and T2 in the target format."""
    schema = _service().product_type(instrument, product).schema()
    properties = schema.get("properties", {})
    times = {name: prop["x-time"].get("format_parameter", "T_format")
             for name, prop in properties.items() if "x-time" in prop}
    format_parameters = sorted(set(times.values()))
    if not format_parameters:
        raise ApiError(404, f"{instrument}/{product} has no time parameters", code="no_times")
    problems: list[ParameterProblem] = []
    unknown = sorted(set(request.args) - set(times) - set(format_parameters) - {"to", "token"})
    problems += [ParameterProblem(n, "/" + n, "not a time parameter of this product (it has: "
                                  + ", ".join(times) + ")") for n in unknown]
    target = request.args.get("to", "")
    result: dict[str, Any] = {}
    iso: dict[str, str] = {}
    for fmt_param in format_parameters:
        formats = properties[fmt_param].get("x-time-formats") or {ISOT: {}}
        source = request.args.get(fmt_param, properties[fmt_param].get("default", ISOT))
        for name, value in (("to", target), (fmt_param, source)):
            if value not in formats:
                problems.append(ParameterProblem(name, "/" + name, f"must be one of "
                                                 f"{', '.join(formats)} (got {value!r})"))
        if problems:
            continue
        for name in (n for n, p in times.items() if p == fmt_param and n in request.args):
            text = request.args[name].strip()
            if not text:
                continue
            try:
                iso[name] = iso_utc(text, source, formats[source])
                result[name] = _write_time(iso[name], target, formats[target])
            except ValueError as exc:
                problems.append(ParameterProblem(name, "/" + name, str(exc)))
    if problems:
        raise invalid_parameters(problems)
    if any(isinstance(v, float) and not math.isfinite(v) for v in result.values()):
        raise ApiError(400, "the conversion gave a non-finite value", code="invalid_parameters")
    return jsonify({"format": target, "values": result, "iso": iso})
