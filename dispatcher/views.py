"""JSON views of jobs, reproducible links and ready-to-run snippets.

The reproducible link of a job is `<base>/q/<instrument>/<product>?<sorted parameters>`: the
complete normalised query and nothing else (no token, no session), so it is permanent and
works for anyone allowed to see the data. `<base>` is the `public_url` setting, or the URL the
request came in on.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping
from urllib.parse import quote, urlencode

from flask import request

from dataserver import Product, __version__
from dataserver.params import query_pairs

from .jobstore import Job
from .provenance import ServedFile, provenance_cards
from .runner import POLL_S
from .service import Service


def base_url(service: Service) -> str:
    return (service.settings.public_url or request.url_root).rstrip("/")


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    moment = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def link(base: str, instrument: str, product: str, params: Mapping[str, Any]) -> str:
    return (f"{base}/q/{quote(instrument, safe='')}/{quote(product, safe='')}?"
            + urlencode(query_pairs(params)))


def _python_args(params: Mapping[str, Any], indent: str) -> str:
    lines = []
    for name in sorted(params):
        value = params[name]
        if name.isidentifier():
            lines.append(f"{indent}{name}={value!r},")
        else:
            lines.append(f"{indent}**{{{name!r}: {value!r}}},")
    return "\n".join(lines)


def python_snippet(base: str, job: Job) -> str:
    return (f"# Reproduces xoda job {job.id}\n"
            f"# ({job.instrument} / {job.product}) with the xoda Python client.\n"
            "# Proprietary data need a token: Dispatcher(url, token=...) or XODA_TOKEN.\n"
            "from client import Dispatcher\n\n"
            f"disp = Dispatcher(url={base!r})\n"
            "products = disp.get_product(\n"
            f"    {job.instrument!r}, {job.product!r},\n"
            f"{_python_args(job.params, '    ')}\n"
            ")\n")


def oda_snippet(base: str, job: Job) -> str:
    return (f"# Reproduces xoda job {job.id}\n"
            f"# ({job.instrument} / {job.product}) with the ODA client, oda_api.\n"
            "# Proprietary data need a token: add token=... to get_product.\n"
            "from oda_api.api import DispatcherAPI\n\n"
            f"disp = DispatcherAPI(url={base!r})\n"
            "data_collection = disp.get_product(\n"
            f"    instrument={job.instrument!r},\n"
            f"    product={job.product!r},\n"
            "    product_type='Real',\n"
            f"{_python_args(job.params, '    ')}\n"
            ")\n")


def progress(job: Job, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts for progress bars: steps and units done, computed, restored, failed."""
    states = {"computed": 0, "restored": 0, "failed": 0}
    finished_per_unit: dict[str, int] = {}
    for ev in events:
        states[ev["state"]] = states.get(ev["state"], 0) + 1
        if ev["unit"] and ev["state"] != "failed":
            finished_per_unit[ev["unit"]] = finished_per_unit.get(ev["unit"], 0) + 1
    units_done = sum(1 for u in job.units
                     if u.get("nodes") and finished_per_unit.get(u["id"], 0) >= u["nodes"])
    return {"steps_total": job.nodes, "steps_done": states["computed"] + states["restored"],
            "units_total": len(job.units), "units_done": units_done, **states}


def report(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"unit": ev["unit"], "step": ev["step"], "version": ev["version"],
             "state": ev["state"], "message": ev["message"], "time": iso(ev["time"]),
             "elapsed_s": ev["elapsed"]} for ev in events]


def job_urls(base: str, job: Job) -> dict[str, str]:
    api = f"{base}/api/v1/jobs/{job.id}"
    return {"self": api, "products": f"{api}/products", "archive": f"{api}/archive",
            "python": f"{api}/snippet?lang=python", "oda_api": f"{api}/snippet?lang=oda_api",
            "link": link(base, job.instrument, job.product, job.params)}


def output_url(base: str, job: Job, name: str) -> str:
    return f"{base}/api/v1/jobs/{job.id}/products/{quote(name, safe='')}"


def job_json(service: Service, job: Job, *, with_report: bool = True) -> dict[str, Any]:
    base = base_url(service)
    events = service.jobs.events(job.id, job.run) if job.run else []
    urls = job_urls(base, job)
    body: dict[str, Any] = {
        "job_id": job.id, "instrument": job.instrument, "product": job.product,
        "params": job.params, "status": job.status,
        "created": iso(job.created), "updated": iso(job.updated),
        "started": iso(job.started), "finished": iso(job.finished),
        "elapsed_s": (job.finished - job.started) if job.finished and job.started else None,
        "run": job.run, "progress": progress(job, events),
        "units": [{"id": u["id"], "label": u.get("label", "")} for u in job.units],
        "summary": job.summary, "error": job.error,
        "outputs": [{"name": o["name"], "kind": o["kind"], "description": o["description"],
                     "unit": o["unit"], "url": output_url(base, job, o["name"])}
                    for o in job.outputs],
        "link": urls["link"], "urls": urls,
        "snippets": {"python": python_snippet(base, job), "oda_api": oda_snippet(base, job)},
        "xoda_version": __version__,
    }
    if with_report:
        body["report"] = report(events)
    if not job.complete:
        body["poll_after_s"] = POLL_S
    return body


def job_summary_json(service: Service, job: Job) -> dict[str, Any]:
    """The short form used in job listings."""
    base = base_url(service)
    return {"job_id": job.id, "instrument": job.instrument, "product": job.product,
            "status": job.status, "created": iso(job.created), "updated": iso(job.updated),
            "url": f"{base}/api/v1/jobs/{job.id}",
            "link": link(base, job.instrument, job.product, job.params)}


def served_output(service: Service, job: Job, output: Mapping[str, Any],
                  base: str) -> tuple[Product, ServedFile] | None:
    """One output with the job's provenance, or None if it is no longer in the cache."""
    product = service.products.get(output["key"])
    if product is None:
        return None
    cards, history = provenance_cards(job.id, job.instrument, job.product, output,
                                      link(base, job.instrument, job.product, job.params))
    return product, ServedFile.open(product, cards, history)


def served_outputs(service: Service, job: Job,
                   base: str) -> list[tuple[dict[str, Any], Product, ServedFile]] | None:
    """Every output of a done job, served; None if any has left the cache."""
    result = []
    for output in job.outputs:
        served = served_output(service, job, output, base)
        if served is None:
            return None
        result.append((output, *served))
    return result
