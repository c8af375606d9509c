"""Runs one task on a worker: make sure a node's product is in the store.

A task is the flattened sub-graph of one target node (see `steps.task_spec`). The worker
restores the target if it is cached; otherwise it takes the target's single-flight lock,
makes sure each input is in the store (recomputing any that were evicted or corrupted since
the engine looked), runs the step into a staging file and commits it. It returns its
progress events and never raises: failures come back as data, the same way from a local
process, a dask worker or a container (`python -m dataserver.worker TASK RESULT`).
"""
from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from .steps import StepContext, meta_json, resolve_step
from .store import Product, ProductStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerContext:
    """Where a worker finds the store and the archive (never part of any key)."""

    cache_dir: str
    cache_size_bytes: int
    archive_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Reads of an input that keeps being evicted before it can be pinned (a cache far too small).
_PIN_ATTEMPTS = 3


class StepFailure(Exception):
    pass


@functools.lru_cache(maxsize=8)
def open_store(cache_dir: str, cache_size_bytes: int) -> ProductStore:
    """One store object per worker process and cache (opening diskcache costs milliseconds)."""
    return ProductStore(cache_dir, cache_size_bytes)


def event(node: Mapping[str, Any], key: str, state: str, message: str,
          elapsed: float | None = None) -> dict[str, Any]:
    return {"key": key, "unit": node.get("unit"), "step": node["name"],
            "version": node["version"], "state": state, "message": message,
            "time": time.time(), "elapsed": elapsed}


class _Runner:
    def __init__(self, store: ProductStore, nodes: Mapping[str, Mapping[str, Any]],
                 context: WorkerContext):
        self.store = store
        self.nodes = nodes
        self.context = context
        self.events: list[dict[str, Any]] = []
        self._done: dict[str, Product] = {}

    def ensure(self, key: str) -> Product:
        if key in self._done:
            return self._done[key]
        node = self.nodes[key]
        product = self.store.get(key)
        if product is not None:
            self.events.append(event(node, key, "restored", "restored from cache"))
        else:
            with self.store.lock(key):
                product = self.store.get(key)
                if product is not None:
                    self.events.append(event(node, key, "restored",
                                             "restored from cache (computed by a concurrent request)"))
                else:
                    product = self._compute(key, node)
        self._done[key] = product
        return product

    def _inputs(self, key: str, node: Mapping[str, Any], pin) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        for name, keys in node["inputs"].items():
            try:
                inputs[name] = (self._pinned(keys, pin) if isinstance(keys, str)
                                else [self._pinned(k, pin) for k in keys])
            except StepFailure:
                self.events.append(event(node, key, "failed", f"input {name!r} failed"))
                raise
        return inputs

    def _pinned(self, key: str, pin) -> Product:
        """The input `key`, pinned for the step: another writer's eviction cannot take it
        away mid-read. Gone since it was read: read (or recompute) it again."""
        for _ in range(_PIN_ATTEMPTS - 1):
            try:
                return pin(self.ensure(key))
            except FileNotFoundError:
                self._done.pop(key, None)
        return pin(self.ensure(key))

    def _compute(self, key: str, node: Mapping[str, Any]) -> Product:
        with self.store.pins(key) as pin:
            return self._compute_pinned(key, node, pin)

    def _compute_pinned(self, key: str, node: Mapping[str, Any], pin) -> Product:
        inputs = self._inputs(key, node, pin)
        staged = self.store.staging_path(key)
        started = time.perf_counter()
        output = None
        try:
            step = resolve_step(node["module"], node["name"], node["version"])
            params = step.normalise(node["params"])
            context = StepContext(unit=node.get("unit"), output_path=staged,
                                  archive_dir=Path(self.context.archive_dir) if self.context.archive_dir else None,
                                  log=logging.getLogger(f"xoda.step.{step.name}"))
            output = step.run(inputs, params, context)
            record = {"step": step.name, "version": step.VERSION, "unit": node.get("unit"),
                      "params": node["params"], "inputs": node["inputs"],
                      "meta": json.loads(meta_json(output.meta))}
            if output.hdul is not None:
                product = self.store.put_hdul(key, output.hdul, record)
            elif staged.exists():
                product = self.store.put_file(key, staged, record)
            else:
                raise RuntimeError(f"step {step.name} returned no HDUList and wrote no output file")
        except Exception as exc:  # noqa: BLE001 - any step error becomes a reported failure
            log.error("step %s failed for unit %s:\n%s", node["name"], node.get("unit"),
                      traceback.format_exc())
            self.events.append(event(node, key, "failed", f"{type(exc).__name__}: {exc}",
                                     time.perf_counter() - started))
            raise StepFailure(str(exc)) from exc
        finally:
            staged.unlink(missing_ok=True)
            if output is not None and output.hdul is not None:
                # It may hold memory-mapped inputs open for this long-lived process.
                output.hdul.close()
        elapsed = time.perf_counter() - started
        self.store.count_computed()
        self.events.append(event(node, key, "computed", f"computed in {elapsed:.3g} s", elapsed))
        return product


def run_task(task: Mapping[str, Any], context: Mapping[str, Any] | WorkerContext) -> dict[str, Any]:
    """Ensure `task['target']` is in the store; return {'target', 'state', 'events'}."""
    if not isinstance(context, WorkerContext):
        context = WorkerContext(**context)
    events: list[dict[str, Any]] = []
    try:
        store = open_store(context.cache_dir, context.cache_size_bytes)
        runner = _Runner(store, task["nodes"], context)
        events = runner.events
        runner.ensure(task["target"])
        state = "done"
    except StepFailure:
        state = "failed"
    except Exception as exc:  # noqa: BLE001 - the store or the lock failed, not a step
        # Reported as data like a step failure, but without the text: it names server paths.
        log.exception("worker error on %s", task["target"])
        state = "failed"
        events.append(event(task["nodes"][task["target"]], task["target"], "failed",
                            f"worker error: {type(exc).__name__} (details are in the worker's log)"))
    return {"target": task["target"], "state": state, "events": events}


def main(argv: list[str]) -> int:
    """Container entry point: `python -m dataserver.worker TASK.json RESULT.json`."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    task_path, result_path = Path(argv[0]), Path(argv[1])
    payload = json.loads(task_path.read_text())
    result = run_task(payload["task"], payload["context"])
    partial = result_path.with_suffix(".part")
    partial.write_text(json.dumps(result))
    os.replace(partial, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
