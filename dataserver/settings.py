"""The one settings table of xoda.

Every tunable of the service (engine, dispatcher, plugins) is declared here once, with its
default and a help text; `Settings.from_env()` reads them once from `XODA_<NAME>`
environment variables (and optional keyword overrides) into an immutable object that is
passed explicitly to whatever needs it. The README's settings table is generated from
`SETTINGS` (see `settings_table_markdown`) and a test keeps the two in step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected a boolean (yes/no), got {text!r}")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str

    @property
    def env_name(self) -> str:
        return "XODA_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", ".xoda", "Root directory of the service's state: product cache, jobs, "
            "observation index. Relative paths are taken from the working directory."),
    Setting("cache_dir", "", "Product cache directory; empty means `<data_dir>/cache`."),
    Setting("cache_size_gb", 50.0, "Size limit of the product cache in GB; least recently used "
            "products are evicted beyond it.", float),
    Setting("archive_dir", "", "Root of the Level-1 archive (HXMT proposal/ObsID/ExpID tree); "
            "empty means `<data_dir>/archive`."),
    Setting("hxmt_index", "", "SQLite file of the HXMT observation index; empty means "
            "`<data_dir>/hxmt_index.sqlite`."),
    Setting("name_resolver_online", False, "Also ask CDS Sesame (3 s timeout) for source names that the "
            "shipped catalogue of bright X-ray sources lacks; needs a network.", bool),
    Setting("executor", "local", "Where analysis steps run: `local` (a pool of worker processes), "
            "`dask` (a dask.distributed scheduler) or `docker` (one container per step)."),
    Setting("workers", 0, "Number of parallel worker processes of the `local` executor; 0 means "
            "one per CPU core.", int),
    Setting("dask_scheduler", "", "Address of the dask scheduler (e.g. `tcp://10.0.0.5:8786`) for "
            "the `dask` executor; empty starts a local cluster of `workers` processes.", str),
    Setting("docker_image", "xoda-worker:latest", "Default image of the `docker` executor; a "
            "plugin may name its own image."),
    Setting("docker_code_dir", "", "Directory holding the `dataserver` and `plugins` packages, "
            "mounted read-only into worker containers so they run exactly the engine's code; "
            "empty means the installed source tree."),
    Setting("host", "127.0.0.1", "Interface the web service listens on."),
    Setting("port", 8000, "TCP port of the web service.", int),
    Setting("public_url", "", "External base URL used in reproducible links "
            "(e.g. `https://xoda.example.org`); empty means the URL of the incoming request."),
    Setting("web_workers", 4, "Number of gunicorn worker processes of `xoda serve`.", int),
    Setting("keepalive_s", 75.0, "Seconds `xoda serve` keeps an idle HTTP connection open for "
            "the client's next request; longer than any client's polling interval, so that a "
            "poll rarely meets a connection the server is just closing.", float),
    Setting("job_threads", 2, "Jobs run concurrently by each dispatcher process.", int),
    Setting("secret_key", "", "HS256 secret that signs and verifies user tokens. Empty means a "
            "random secret kept in `<data_dir>/secret_key` (created on first use, mode 0600)."),
    Setting("token_lifetime_h", 24.0 * 30, "Default lifetime in hours of tokens minted by "
            "`xoda token mint`.", float),
    Setting("log_level", "INFO", "Logging level of the service (DEBUG, INFO, WARNING, ERROR)."),
    Setting("extra_instruments", "", "Instrument plugins to serve besides the installed ones "
            "(entry points), as comma-separated `module:Class` (e.g. a plugin under "
            "development, or `tests.engine_instrument:EngineTestInstrument`)."),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}


class Settings(Mapping[str, Any]):
    """Immutable, read-once values of `SETTINGS`; attribute and mapping access."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]):
        unknown = set(values) - set(_BY_NAME)
        if unknown:
            raise KeyError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        merged = {s.name: s.default for s in SETTINGS}
        merged.update(values)
        object.__setattr__(self, "_values", merged)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            if setting.env_name in environ:
                raw = environ[setting.env_name]
                try:
                    values[setting.name] = _bool(raw) if setting.parse is bool else setting.parse(raw)
                except ValueError as exc:
                    raise ValueError(f"setting {setting.env_name}: {exc}") from None
        values.update(overrides)
        return cls(values)

    def replace(self, **changes: Any) -> "Settings":
        return Settings({**self._values, **changes})

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Settings are immutable; use replace()")

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shown = {k: ("***" if k == "secret_key" and v else v) for k, v in self._values.items()}
        return f"Settings({shown})"

    # Derived locations, resolved against the working directory at the time of the call.
    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser().resolve() if self.cache_dir else self.data_path / "cache"

    @property
    def archive_path(self) -> Path:
        return (Path(self.archive_dir).expanduser().resolve() if self.archive_dir
                else self.data_path / "archive")

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


def settings_table_markdown() -> str:
    """The README's settings table."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        default = setting.default if setting.default != "" else "(empty)"
        lines.append(f"| `{setting.env_name}` | `{default}` | {setting.help} |")
    return "\n".join(lines)
