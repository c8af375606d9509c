"""Docker executor: each task runs in a fresh container of the plugin's image.

The image supplies the run-time (Python and the scientific libraries; see
`dataserver/docker/`); the engine's own source tree is mounted read-only at /opt/xoda, so a
container always runs exactly the step versions the engine planned with. The product cache
and the archive are mounted at their host paths, so keys, records and paths mean the same
inside and outside. The task and its result travel as JSON files next to the cache.
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..worker import WorkerContext, open_store
from . import failure_result

log = logging.getLogger(__name__)

CODE_MOUNT = "/opt/xoda"


def default_code_dir() -> Path:
    return Path(__file__).resolve().parents[2]


class DockerExecutor:
    def __init__(self, context: WorkerContext, image: str, code_dir: str | os.PathLike | None,
                 workers: int, state_dir: str | os.PathLike,
                 environment: dict[str, str] | None = None,
                 extra_volumes: dict[str, dict[str, str]] | None = None):
        import docker

        self._docker = docker.from_env()
        self._docker.ping()
        self._context = context
        self.image = image
        self._docker.images.get(image)  # fail early, with docker's message, if it is missing
        self._code_dir = Path(code_dir) if code_dir else default_code_dir()
        self._task_dir = Path(state_dir) / "docker-tasks"
        self._task_dir.mkdir(parents=True, exist_ok=True)
        self.parallelism = max(1, int(workers))
        self._environment = {"PYTHONPATH": CODE_MOUNT, "HOME": "/tmp", **(environment or {})}
        self._extra_volumes = dict(extra_volumes or {})
        self._threads = ThreadPoolExecutor(max_workers=self.parallelism,
                                           thread_name_prefix="xoda-docker")

    def _volumes(self) -> dict[str, dict[str, str]]:
        volumes = {str(self._code_dir): {"bind": CODE_MOUNT, "mode": "ro"},
                   self._context.cache_dir: {"bind": self._context.cache_dir, "mode": "rw"},
                   str(self._task_dir): {"bind": str(self._task_dir), "mode": "rw"}}
        if self._context.archive_dir and Path(self._context.archive_dir).exists():
            volumes[self._context.archive_dir] = {"bind": self._context.archive_dir, "mode": "ro"}
        volumes.update(self._extra_volumes)
        return volumes

    def submit(self, task: dict[str, Any]) -> "Future[dict[str, Any]]":
        return self._threads.submit(self._run, task)

    def _run(self, task: dict[str, Any]) -> dict[str, Any]:
        name = uuid.uuid4().hex
        task_path = self._task_dir / f"{name}.task.json"
        result_path = self._task_dir / f"{name}.result.json"
        task_path.write_text(json.dumps({"task": task, "context": self._context.to_dict()}))
        container = None
        try:
            container = self._docker.containers.run(
                self.image, [str(task_path), str(result_path)], detach=True,
                volumes=self._volumes(), network_disabled=True,
                user=f"{os.getuid()}:{os.getgid()}",
                environment=self._environment,
                labels={"xoda.step": task["nodes"][task["target"]]["name"],
                        "xoda.key": task["target"]})
            status = container.wait()
            code = status.get("StatusCode")
            if result_path.exists():
                return json.loads(result_path.read_text())
            # The log's tail (often a traceback with server paths) is for the operator only.
            tail = container.logs(tail=20).decode(errors="replace").strip()
            reason = ("was killed (exit code 137)" if code == 137 else f"exited with code {code}")
            log.error("worker container for %s %s; its log ends with:\n%s", task["target"],
                      reason, tail)
            open_store(self._context.cache_dir, self._context.cache_size_bytes).discard_staging(task["target"])
            return failure_result(task, f"worker container {reason} before finishing; "
                                        "nothing was stored for this step")
        except Exception as exc:  # noqa: BLE001 - docker API errors become task failures
            log.error("docker task %s failed: %s", task["target"], exc)
            return failure_result(task, f"docker executor error: {type(exc).__name__}: {exc}")
        finally:
            if container is not None:
                try:
                    container.remove(force=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
            task_path.unlink(missing_ok=True)
            result_path.unlink(missing_ok=True)

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        self._docker.close()
