"""The engine: resolve a graph of step invocations against the cache and run the rest.

Keys are known before anything runs, so resolution starts at the requested products and
walks upstream only where something is missing: a repeated query checks its targets and
returns; an overlapping query computes only the nodes whose keys are new (typically the new
units and the merges). Missing nodes are submitted to the executor as soon as their inputs
are ready, so units proceed in parallel; each finished task reports progress events (unit,
step, state computed / restored / failed, message, time). A failing node fails only what
depends on it; every other result is stored and reused when the query is retried.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from .executors import Executor, create_executor, failure_result
from .settings import Settings
from .steps import Node, task_spec, topological
from .store import Product, ProductStore
from .worker import WorkerContext

log = logging.getLogger(__name__)

EventCallback = Callable[[dict[str, Any]], None]


@dataclass
class RunResult:
    """Outcome of one engine run."""

    products: dict[str, Product]            # target key -> product, for targets that exist
    events: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # failed events (root causes)

    @property
    def ok(self) -> bool:
        return not self.failures

    def counts(self) -> dict[str, int]:
        result = {"computed": 0, "restored": 0, "failed": 0}
        for ev in self.events:
            result[ev["state"]] = result.get(ev["state"], 0) + 1
        return result


def _event(node: Node, state: str, message: str) -> dict[str, Any]:
    return {"key": node.key, "unit": node.unit, "step": node.step.name,
            "version": node.step.VERSION, "state": state, "message": message,
            "time": time.time(), "elapsed": None}


class Engine:
    """Runs graphs of nodes against one product store with one executor."""

    def __init__(self, store: ProductStore, executor: Executor):
        self.store = store
        self.executor = executor

    @classmethod
    def from_settings(cls, settings: Settings, preload: Sequence[str] = ()) -> "Engine":
        store = ProductStore(settings.cache_path, int(settings.cache_size_gb * 1e9))
        context = WorkerContext(str(settings.cache_path), store.size_limit_bytes,
                                str(settings.archive_path))
        return cls(store, create_executor(settings, context, preload=preload))

    def close(self) -> None:
        self.executor.close()
        self.store.close()

    def run(self, targets: Sequence[Node], on_event: EventCallback | None = None) -> RunResult:
        """Make every target's product available; return them with the run's events."""
        result = RunResult(products={})
        reported: set[str] = set()
        failures_seen: set[tuple[str, str]] = set()

        def emit(ev: dict[str, Any]) -> None:
            # Workers report the inputs they load as restored; a node is reported once, by
            # what happened to it first in this run (computed, or restored).
            if ev["state"] == "failed":
                if (ev["key"], ev["message"]) in failures_seen:
                    return
                failures_seen.add((ev["key"], ev["message"]))
            elif ev["key"] in reported:
                return
            reported.add(ev["key"])
            result.events.append(ev)
            if ev["state"] == "failed" and not ev["message"].startswith("input "):
                result.failures.append(ev)
            if on_event is not None:
                on_event(ev)

        order = topological(list(targets))
        by_key = {node.key: node for node in order}
        target_keys = list(dict.fromkeys(t.key for t in targets))

        missing: set[str] = set()
        checked: set[str] = set()
        for key in target_keys:
            product = self.store.get(key)
            if product is not None:
                result.products[key] = product
                checked.add(key)
            else:
                missing.add(key)
        # Walk upstream from what is missing; stop at whatever the cache already holds.
        frontier = [by_key[k] for k in missing]
        while frontier:
            node = frontier.pop()
            for child in node.input_nodes():
                if child.key in missing or child.key in checked:
                    continue
                if self.store.contains(child.key):
                    checked.add(child.key)
                else:
                    missing.add(child.key)
                    frontier.append(child)

        for node in order:
            if node.key in missing:
                continue
            emit(_event(node, "restored", "restored from cache" if node.key in checked
                        else "not needed: a product downstream of it is cached"))

        self._compute([n for n in order if n.key in missing], missing, emit)

        for key in target_keys:
            if key in result.products or not self._succeeded(key, result):
                continue
            product = self.store.get(key)
            if product is None:
                # Evicted or corrupted between its computation and now: one more try. One task
                # suffices: its worker restores (or recomputes) whatever inputs it needs.
                self._compute([by_key[key]], {key}, emit)
                product = self.store.get(key)
            if product is not None:
                result.products[key] = product
            else:
                emit(_event(by_key[key], "failed", "product could not be kept in the cache "
                            "(is the cache size limit too small?)"))
        return result

    @staticmethod
    def _succeeded(key: str, result: RunResult) -> bool:
        return not any(ev["key"] == key and ev["state"] == "failed" for ev in result.events)

    def _compute(self, nodes: list[Node], missing: set[str], emit: EventCallback) -> None:
        """Submit `nodes` (topologically ordered) as their missing inputs complete."""
        waiting = {n.key: {c.key for c in n.input_nodes() if c.key in missing} for n in nodes}
        consumers: dict[str, list[str]] = {}
        for node in nodes:
            for dep in waiting[node.key]:
                consumers.setdefault(dep, []).append(node.key)
        by_key = {n.key: n for n in nodes}
        running: dict[Future, str] = {}
        failed: set[str] = set()

        def submit_ready() -> None:
            for key in [k for k, deps in waiting.items() if not deps]:
                del waiting[key]
                running[self.executor.submit(task_spec(by_key[key]))] = key

        def fail_downstream(key: str) -> None:
            for consumer in consumers.get(key, []):
                if consumer in failed or consumer not in waiting:
                    continue
                failed.add(consumer)
                del waiting[consumer]
                node = by_key[consumer]
                upstream = by_key[key]
                emit(_event(node, "failed", f"input {upstream.step.name} "
                            f"{'of unit ' + upstream.unit + ' ' if upstream.unit else ''}failed"))
                fail_downstream(consumer)

        submit_ready()
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - an executor bug must not sink the run
                    log.exception("executor failed on %s", key)
                    outcome = failure_result(task_spec(by_key[key]),
                                             f"executor error: {type(exc).__name__}: {exc}")
                for ev in outcome["events"]:
                    emit(ev)
                if outcome["state"] == "done":
                    for consumer in consumers.get(key, []):
                        if consumer in waiting:
                            waiting[consumer].discard(key)
                else:
                    failed.add(key)
                    fail_downstream(key)
            submit_ready()
