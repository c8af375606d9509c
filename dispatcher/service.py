"""The dispatcher's core, independent of HTTP: queries become jobs, jobs run on the engine.

- `prepare` turns (instrument, product, raw parameters) into a `Prepared` query: parameters
  normalised against the product's JSON Schema (`dataserver.params`), the plugin's plan,
  and the job id, which is the content key of (instrument, product, normalised parameters)
  and nothing else: the same query is the same job, whoever asks.
- `authorise` enforces data rights from the plan's units and the caller's `Identity`.
- `submit` creates the job, or joins the existing one; a failed job is retried, and a done
  job whose products left the cache (or whose steps changed version) runs again. Finished
  units always come back from the cache.
- `execute` runs a claimed job (see `dispatcher.runner`) and records its events.
"""
from __future__ import annotations

import json
import logging
import threading
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

from dataserver import (Engine, Identity, Instrument, Plan, ProductStore, ProductType,
                        QueryError, Settings, content_key)
from dataserver.names import NameResolver
from dataserver.params import InvalidParameters, ParameterProblem, normalise
from dataserver.steps import topological

from .auth import TokenAuthority, load_secret
from .errors import ApiError, invalid_parameters
from .jobstore import Job, JobStore, NewJob
from .runner import JobRunner

log = logging.getLogger(__name__)

FORBIDDEN_MESSAGE = ("access denied: this query needs data that are not public yet; only a "
                     "token of their owner, or of a role granted access, may use them")


@dataclass(frozen=True)
class Prepared:
    instrument: Instrument
    product: ProductType
    params: dict[str, Any]
    plan: Plan
    job: NewJob


def describe_outputs(plan: Plan) -> list[dict[str, Any]]:
    """The plan's output files as JSON: name, kind, node key and the chain of steps."""
    outputs = []
    for output in plan.outputs:
        chain: dict[tuple[str, str], dict[str, Any]] = {}
        for node in topological([output.node]):
            entry = chain.setdefault((node.step.name, str(node.step.VERSION)), {
                "step": node.step.name, "version": node.step.VERSION, "invocations": 0})
            entry["invocations"] += 1
        outputs.append({
            "name": output.name, "kind": output.kind, "description": output.description,
            "key": output.node.key, "unit": output.node.unit,
            "step": output.node.step.name, "version": output.node.step.VERSION,
            "chain": list(chain.values()),
        })
    return outputs


def describe_units(plan: Plan) -> list[dict[str, Any]]:
    """The plan's data units with their access rights and their number of step invocations."""
    per_unit = Counter(n.unit for n in topological(plan.targets) if n.unit)
    return [{"id": u.id, "label": u.label, "owner": u.owner, "public_date": u.public_date,
             "grant_roles": list(u.grant_roles), "nodes": per_unit.get(u.id, 0)}
            for u in plan.units]


def may_access(identity: Identity, units: list[Mapping[str, Any]]) -> bool:
    return all(identity.may_access(u.get("owner"), u.get("public_date"), u.get("grant_roles", ()))
               for u in units)


class Service:
    def __init__(self, settings: Settings, instruments: Mapping[str, Instrument]):
        self.settings = settings
        self.instruments = dict(instruments)
        self.tokens = TokenAuthority(load_secret(settings))
        self.jobs = JobStore(settings.data_path / "jobs")
        try:
            self.jobs.bind_cache(settings.cache_path)
        except ValueError:
            self.jobs.close()
            raise
        self.products = ProductStore(settings.cache_path, int(settings.cache_size_gb * 1e9))
        self.runner = JobRunner(self.jobs, self.execute, settings.job_threads,
                                settings.data_path / "jobs" / "runners")
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self._product_types: dict[str, Mapping[str, ProductType]] = {}

    def start(self) -> None:
        self.runner.ensure_started()

    def close(self) -> None:
        self.runner.stop(timeout=10)
        with self._engine_lock:
            if self._engine is not None:
                self._engine.close()
                self._engine = None
        self.products.close()
        self.jobs.close()

    @cached_property
    def names(self) -> NameResolver:
        """The shared source-name resolver (loads its catalogue on first use)."""
        return NameResolver.from_settings(self.settings)

    @property
    def engine(self) -> Engine:
        """Created on first use: a web worker that never runs a job starts no executor."""
        with self._engine_lock:
            if self._engine is None:
                preload = sorted({m for i in self.instruments.values() for m in i.step_modules()})
                self._engine = Engine.from_settings(self.settings, preload=preload)
            return self._engine

    # ---- instruments and products --------------------------------------------------------
    def instrument(self, name: str) -> Instrument:
        try:
            return self.instruments[name]
        except KeyError:
            raise ApiError(404, f"unknown instrument {name!r}; available: "
                                f"{', '.join(sorted(self.instruments)) or 'none'}",
                           code="unknown_instrument") from None

    def product_types(self, instrument: str) -> Mapping[str, ProductType]:
        if instrument not in self._product_types:
            self._product_types[instrument] = dict(self.instrument(instrument).products())
        return self._product_types[instrument]

    def product_type(self, instrument: str, product: str) -> ProductType:
        products = self.product_types(instrument)
        try:
            return products[product]
        except KeyError:
            raise ApiError(404, f"instrument {instrument!r} has no product {product!r}; "
                                f"available: {', '.join(sorted(products))}",
                           code="unknown_product") from None

    # ---- queries -------------------------------------------------------------------------
    def normalise(self, instrument: str, product: str, raw: Mapping[str, Any],
                  strings: bool) -> dict[str, Any]:
        try:
            return normalise(self.product_type(instrument, product).schema(), raw, strings=strings)
        except InvalidParameters as exc:
            raise invalid_parameters(exc.problems) from None

    def prepare(self, instrument: str, product: str, raw: Mapping[str, Any], *,
                strings: bool = False) -> Prepared:
        plugin = self.instrument(instrument)
        ptype = self.product_type(instrument, product)
        params = self.normalise(instrument, product, raw, strings)
        plan = self._plan(ptype, params)
        job_id = content_key({"instrument": instrument, "product": product, "params": params})
        new = NewJob(id=job_id, instrument=instrument, product=product,
                     params_json=json.dumps(params, sort_keys=True, allow_nan=False),
                     outputs=describe_outputs(plan),
                     units=describe_units(plan), nodes=len(topological(plan.targets)),
                     summary=dict(plan.summary))
        return Prepared(plugin, ptype, params, plan, new)

    @staticmethod
    def _plan(ptype: ProductType, params: dict[str, Any]) -> Plan:
        try:
            plan = ptype.plan(params)
        except QueryError as exc:
            raise invalid_parameters([ParameterProblem(
                exc.parameter, "/" + exc.parameter, exc.reason)]) from None
        if not plan.outputs:
            raise invalid_parameters([ParameterProblem(
                "", "/", "this query selects no data: the plan has no output")])
        return plan

    def authorise(self, identity: Identity, units: list[Mapping[str, Any]]) -> None:
        if not may_access(identity, units):
            raise ApiError(403, FORBIDDEN_MESSAGE + ("" if not identity.anonymous else
                                                    " (no token was given)"))

    def submit(self, prepared: Prepared, identity: Identity) -> Job:
        self.authorise(identity, prepared.job.units)
        job, queued = self.jobs.submit(prepared.job, rerun=self._products_missing)
        if identity.subject is not None:
            self.jobs.record_submission(job.id, identity.subject)
        if queued:
            log.info("job %s (%s/%s) queued", job.id, job.instrument, job.product)
            self.runner.wake()
        return job

    def retry(self, job: Job) -> Job:
        requeued = self.jobs.requeue(job.id) or job
        if requeued.status == "submitted":
            self.runner.wake()
        return requeued

    def _products_missing(self, job: Job) -> bool:
        return not all(self.products.contains(o["key"]) for o in job.outputs)

    def job(self, job_id: str, identity: Identity) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r}", code="unknown_job")
        self.authorise(identity, job.units)
        return job

    # ---- execution (runner threads) ------------------------------------------------------
    def execute(self, job: Job, claimant: str) -> None:
        try:
            ptype = self.product_type(job.instrument, job.product)
            plan = ptype.plan(job.params)
        except (ApiError, QueryError) as exc:
            message = exc.message if isinstance(exc, ApiError) else str(exc)
            self.jobs.finish(job.id, claimant, "failed",
                             {"message": f"the query can no longer be planned: {message}",
                              "failures": []})
            return
        except Exception:  # noqa: BLE001 - a plugin bug fails the job, not the runner
            self._fail_internal(job, claimant, "planning")
            return
        outputs = describe_outputs(plan)
        if outputs != job.outputs:
            self.jobs.update_plan(job.id, claimant, outputs, describe_units(plan),
                                  len(topological(plan.targets)), dict(plan.summary))
        try:
            result = self.engine.run(plan.targets,
                                     on_event=lambda ev: self.jobs.add_event(job.id, job.run, ev))
        except Exception:  # noqa: BLE001 - executor errors fail the job with a reference
            self._fail_internal(job, claimant, "running")
            return
        missing = [o.name for o in plan.outputs if o.node.key not in result.products]
        if result.ok and not missing:
            self.jobs.finish(job.id, claimant, "done")
            log.info("job %s done: %s", job.id, result.counts())
            return
        failures = [{"unit": ev.get("unit"), "step": ev["step"], "message": ev["message"]}
                    for ev in result.failures]
        first = failures[0] if failures else None
        if first:
            where = f"unit {first['unit']}, " if first["unit"] else ""
            message = f"{where}step {first['step']} failed: {first['message']}"
            if len(failures) > 1:
                message += f" (and {len(failures) - 1} more failure{'s' if len(failures) > 2 else ''})"
        else:
            message = f"outputs missing after the run: {', '.join(missing)}"
        self.jobs.finish(job.id, claimant, "failed", {"message": message, "failures": failures})
        log.info("job %s failed: %s", job.id, message)

    def _fail_internal(self, job: Job, claimant: str, stage: str) -> None:
        reference = uuid.uuid4().hex[:12]
        log.error("job %s: internal error while %s (reference %s):\n%s", job.id, stage,
                  reference, traceback.format_exc())
        self.jobs.finish(job.id, claimant, "failed", {
            "message": f"internal error while {stage} the job; it was logged with reference "
                       f"{reference}", "failures": []})
