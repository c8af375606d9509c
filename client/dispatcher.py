"""`Dispatcher`: one xoda server, seen from Python.

    from client import Dispatcher
    import astropy.units as u
    from astropy.time import Time

    disp = Dispatcher("http://127.0.0.1:8000")          # token: argument, XODA_TOKEN, ~/.xoda-token
    disp.describe("hxmt_he", "spectrum")                  # parameters with units, defaults, bounds
    products = disp.get_product("hxmt_he", "spectrum", T1=Time("2017-08-27T02:00:00"),
                                T2=Time("2017-08-27T08:00:00"), E1_keV=28 * u.keV)
    products.write("out/"); products.plot(); products.link
    fit = products.fit(model="powerlaw", emin=28, emax=250)

Only the HTTP API is used; nothing of the server is imported.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, Iterable, Mapping, TextIO
from urllib.parse import quote

import numpy as np
from astropy.table import Column, MaskedColumn, Table

from . import config
from .cache import LocalCache
from .describe import InstrumentDescription, ProductDescription
from .errors import JobFailed, NotFound, ValidationError, XodaError
from .jobs import Job, PollPolicy, gather as gather_jobs, wait_all
from .params import prepare
from .products import ProductCollection, make_product, parse_unit
from .transport import Transport, retry_after

log = logging.getLogger(__name__)

# The parameter that makes a product a spectral fit: the choice of a spectral model.
FIT_MARKER = "model"
REQUEUE_ATTEMPTS = 3


def _quoted(name: str) -> str:
    return quote(name, safe="")


class Dispatcher:
    """A connection to a xoda server.

    - `url`: the server (default `XODA_URL`, else http://127.0.0.1:8000).
    - `token`: sent as `Authorization: Bearer` with every request (default `XODA_TOKEN`,
      else the first line of `~/.xoda-token`; none: anonymous, public data only).
    - `cache`: keep finished results locally, keyed by job id: True (`~/.cache/xoda`), a
      directory, or False; default `XODA_CLIENT_CACHE` when set, else off.
    - `progress`: progress bars on standard error (True), on a stream, or none (False).
    - `poll`: a `PollPolicy` (how patiently to poll); `timeout`: seconds per HTTP request.
    """

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 cache: bool | str | os.PathLike | None = None, progress: bool | TextIO = True,
                 poll: PollPolicy | None = None, timeout: float = 60.0):
        self.url = config.resolve_url(url)
        source = config.resolve_token(token)
        self.token_origin = source.origin
        self._transport = Transport(self.url, source.token, timeout=timeout)
        cache_dir = config.resolve_cache(cache)
        self.cache = LocalCache(cache_dir, self.url) if cache_dir is not None else None
        self.progress = progress
        self.poll = poll or PollPolicy()
        self._schemas: dict[tuple[str, str], dict[str, Any]] = {}
        self._instruments: dict[str, dict[str, Any]] | None = None

    def __repr__(self) -> str:
        token = f"token from {self.token_origin}" if self.token_origin else "anonymous"
        cache = f", cache {self.cache.root}" if self.cache else ""
        return f"Dispatcher({self.url!r}, {token}{cache})"

    def _progress_target(self, progress: bool | TextIO | None) -> tuple[TextIO | None, bool]:
        chosen = self.progress if progress is None else progress
        if chosen is False:
            return None, False
        if chosen is True:
            return sys.stderr, True
        return chosen, True

    # ---- discovery -----------------------------------------------------------------------
    def _instrument_records(self, refresh: bool = False) -> dict[str, dict[str, Any]]:
        if self._instruments is None or refresh:
            answer = self._transport.get_json("/api/v1/instruments")
            self._instruments = {i["name"]: i for i in answer.get("instruments", [])}
        return self._instruments

    def instrument_info(self, instrument: str) -> dict[str, Any]:
        """The server's record of an instrument: title, mission, description, products and
        the JSON Schema of its observation search (None without one)."""
        records = self._instrument_records()
        if instrument not in records:
            # Ask the server itself: its words name what it serves.
            return self._transport.get_json(f"/api/v1/instruments/{_quoted(instrument)}")
        return records[instrument]

    def instruments(self) -> Table:
        """The instruments served: name, title, mission, products, search (yes/no)."""
        rows = list(self._instrument_records(refresh=True).values())
        return Table({"name": [r["name"] for r in rows], "title": [r.get("title", "") for r in rows],
                      "mission": [r.get("mission", "") for r in rows],
                      "products": [", ".join(p["name"] for p in r.get("products", [])) for r in rows],
                      "search": [r.get("search") is not None for r in rows]},
                     meta={"url": self.url})

    def products(self, instrument: str) -> Table:
        """The products of `instrument`: name, title, description."""
        products = self.instrument_info(instrument).get("products", [])
        return Table({"name": [p["name"] for p in products],
                      "title": [p.get("title", "") for p in products],
                      "description": [p.get("description", "") for p in products]},
                     meta={"instrument": instrument})

    def schema(self, instrument: str, product: str) -> dict[str, Any]:
        """The JSON Schema of a product's parameters (what the server validates with)."""
        key = (instrument, product)
        if key not in self._schemas:
            answer = self._transport.get_json(
                f"/api/v1/instruments/{_quoted(instrument)}/products/{_quoted(product)}")
            self._schemas[key] = answer
        return self._schemas[key]["schema"]

    def describe(self, instrument: str,
                 product: str | None = None) -> ProductDescription | InstrumentDescription:
        """A product's parameters (units, defaults, bounds, descriptions), or, without a
        product, the instrument's products and search criteria; prints readably."""
        if product is None:
            record = self.instrument_info(instrument)
            search = record.get("search")
            return InstrumentDescription(record["name"], record.get("title", ""),
                                         record.get("mission", ""), record.get("description", ""),
                                         record.get("products", []),
                                         search["schema"] if search else None)
        schema = self.schema(instrument, product)
        answer = self._schemas[(instrument, product)]
        return ProductDescription(instrument, product, answer.get("title", ""),
                                  answer.get("description", ""), schema)

    def resolve(self, name: str) -> dict[str, Any]:
        """A source name's position (the server's resolver): {"name", "ra", "dec", ...}."""
        return self._transport.get_json("/api/v1/resolve", params={"name": name})

    def search(self, instrument: str, **criteria: Any) -> Table:
        """Observations of `instrument` matching `criteria` (see `describe(instrument)`) that
        this token may see, as a Table with units; `meta` holds total and criteria."""
        record = self.instrument_info(instrument)
        if record.get("search") is None:
            raise NotFound(f"instrument {instrument!r} offers no observation search",
                           status=404, code="no_search")
        body = prepare(record["search"]["schema"], criteria)
        answer = self._transport.post_json(f"/api/v1/instruments/{_quoted(instrument)}/search", body)
        return _rows_table(answer)

    # ---- queries -------------------------------------------------------------------------
    def prepare(self, instrument: str, product: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters that would be sent for `params`: converted (Quantities, Times) and
        checked against the schema; ValidationError listing every problem."""
        return prepare(self.schema(instrument, product), params)

    def submit(self, instrument: str, product: str, params: Mapping[str, Any] | None = None,
               **kwargs: Any) -> Job:
        """Submit a query and return its job handle at once."""
        return self.get_product(instrument, product, params=params, wait=False, **kwargs)

    def get_product(self, instrument: str, product: str, *, wait: bool = True,
                    progress: bool | TextIO | None = None, timeout: float | None = None,
                    params: Mapping[str, Any] | None = None,
                    **kwargs: Any) -> ProductCollection | Job:
        """Run a query: check the parameters locally, submit, wait with a progress bar, and
        return its `ProductCollection` (or, with `wait=False`, the `Job` at once).

        Parameters are keyword arguments (or a `params` mapping, for names that are not
        Python identifiers or that clash with the options here). `timeout` (s) raises
        JobTimeout if the job is still running then; it goes on on the server.
        """
        values = {**(params or {}), **kwargs}
        if self.cache is not None:
            cached = self._cached_request(instrument, product, values)
            if cached is not None:
                log.info("job %s: from the local cache", cached.id)
                return self._collect(cached) if wait else cached
        sent = self.prepare(instrument, product, values)
        response = self._transport.request(
            "POST", "/api/v1/jobs",
            params={"wait": f"{self.poll.first_wait_s:g}"} if wait and self.poll.first_wait_s else None,
            json={"instrument": instrument, "product": product, "params": sent},
            timeout=self._transport.timeout + self.poll.first_wait_s)
        job = Job(self, self._transport.decode(response), retry_after(response.headers))
        log.info("job %s: %s", job.id, job.status)
        if self.cache is not None:
            self.cache.remember_schema(instrument, product, self.schema(instrument, product))
            self.cache.remember_request(LocalCache.request_key(instrument, product, sent), job.id)
        if not wait:
            return job
        return job.result(timeout=timeout, progress=progress)

    def fit_product(self, instrument: str, params: Mapping[str, Any] | None = None) -> str:
        """The name of `instrument`'s spectral-fit product: the product whose parameters
        include a choice of spectral `model`; among several, the one accepting all of
        `params`, then the one named like a fit."""
        candidates = []
        for entry in self.instrument_info(instrument).get("products", []):
            properties = self.schema(instrument, entry["name"]).get("properties", {})
            if "enum" in properties.get(FIT_MARKER, {}):
                candidates.append((entry["name"], properties))
        if params:
            candidates = [c for c in candidates if set(params) <= set(c[1])] or candidates
        if len(candidates) > 1:
            candidates = [c for c in candidates if "fit" in c[0]] or candidates
        if len(candidates) == 1:
            return candidates[0][0]
        if not candidates:
            raise NotFound(f"instrument {instrument!r} has no spectral-fit product (none of its "
                           f"products takes a {FIT_MARKER})", code="no_fit_product")
        raise ValidationError(f"instrument {instrument!r} has several fit products "
                              f"({', '.join(c[0] for c in candidates)}); name one with product=",
                              local=True)

    def fit(self, instrument: str, product: str | None = None, *, wait: bool = True,
            progress: bool | TextIO | None = None, timeout: float | None = None,
            params: Mapping[str, Any] | None = None, **kwargs: Any) -> ProductCollection | Job:
        """A spectral fit on the server: the instrument's fit product (found by
        `fit_product`, or named) with the spectrum's parameters plus the fit's (model, the
        statistic, the band, ...: `describe` shows them). The result's `main("fit")` holds the
        parameters and the plot."""
        values = {**(params or {}), **kwargs}
        return self.get_product(instrument, product or self.fit_product(instrument, values),
                                params=values, wait=wait, progress=progress, timeout=timeout)

    # ---- jobs ----------------------------------------------------------------------------
    def job(self, job_id: str) -> Job:
        """The handle of an existing job (from the local cache when it is there)."""
        if self.cache is not None:
            cached = self._cached_job(job_id)
            if cached is not None:
                return cached
        response = self._transport.request("GET", f"/api/v1/jobs/{_quoted(job_id)}",
                                           params={"report": "false"})
        return Job(self, self._transport.decode(response), retry_after(response.headers))

    def jobs(self, *, status: str | None = None, instrument: str | None = None,
             mine: bool = False, limit: int = 50) -> list[Job]:
        """Jobs on the server this token may see, newest first (`mine=True`: the ones this
        token's holder submitted)."""
        query: dict[str, Any] = {"limit": limit}
        if status:
            query["status"] = status
        if instrument:
            query["instrument"] = instrument
        if mine:
            query["mine"] = "true"
        answer = self._transport.get_json("/api/v1/jobs", params=query)
        return [Job(self, record) for record in answer.get("jobs", [])]

    def gather(self, jobs: Iterable[Job], *, timeout: float | None = None,
               progress: bool | TextIO | None = None,
               return_exceptions: bool = False) -> list[ProductCollection | JobFailed]:
        """Wait for many jobs with one combined progress bar; see `client.gather`."""
        return gather_jobs(jobs, timeout=timeout, progress=progress,
                           return_exceptions=return_exceptions)

    def wait(self, jobs: Iterable[Job], *, timeout: float | None = None,
             progress: bool | TextIO | None = None) -> None:
        """Wait until every job is finished (done or failed), without fetching products."""
        wait_all(list(jobs), timeout=timeout, progress=progress)

    # ---- products ------------------------------------------------------------------------
    def _cached_request(self, instrument: str, product: str,
                        values: Mapping[str, Any]) -> Job | None:
        """The finished job of this very query in the local cache, found without the server:
        the values are checked against the schema kept with the earlier, identical query."""
        schema = self.cache.schema(instrument, product)
        if schema is None:
            return None
        try:
            sent = prepare(schema, values)
        except ValidationError:
            return None
        job_id = self.cache.job_for_request(LocalCache.request_key(instrument, product, sent))
        return self._cached_job(job_id) if job_id is not None else None

    def _cached_job(self, job_id: str) -> Job | None:
        entry = self.cache.load(job_id) if self.cache is not None else None
        return Job(self, entry.job, cached=True) if entry is not None else None

    def _collect(self, job: Job, timeout: float | None = None) -> ProductCollection:
        """The products of a done job: from the local cache, or downloaded (and cached)."""
        if self.cache is not None:
            entry = self.cache.load(job.id)
            if entry is not None:
                return ProductCollection([make_product(o, entry.files[o["name"]])
                                          for o in entry.outputs], job)
        for attempt in range(REQUEUE_ATTEMPTS):
            try:
                return self._download(job)
            except XodaError as exc:
                # The server's cache evicted a product: it re-runs the job (from what it
                # still has), and we wait for it again.
                if exc.status != 409 or attempt == REQUEUE_ATTEMPTS - 1:
                    raise
                log.info("job %s: %s", job.id, exc.message)
                job.refresh()
                job.wait(timeout=timeout)
        raise AssertionError("unreachable")

    def _download(self, job: Job) -> ProductCollection:
        listing = self._transport.get_json(f"/api/v1/jobs/{job.id}/products")
        outputs = listing.get("outputs", [])
        if job.link is None and listing.get("link"):
            job.record["link"] = listing["link"]

        def chunks(name: str) -> Iterable[bytes]:
            return self._transport.download(f"/api/v1/jobs/{job.id}/products/{_quoted(name)}")

        if self.cache is not None:
            record = job.record if "report" in job.record else self._transport.get_json(
                f"/api/v1/jobs/{job.id}")
            entry = self.cache.store(record, outputs, ((o["name"], chunks(o["name"])) for o in outputs))
            return ProductCollection([make_product(o, entry.files[o["name"]]) for o in outputs], job)
        return ProductCollection([make_product(o, b"".join(chunks(o["name"]))) for o in outputs],
                                 job)

    def load(self, job_id: str) -> ProductCollection:
        """The products of a finished job, by id (from the local cache when there)."""
        return self.job(job_id).result()

    def clear_cache(self) -> None:
        """Forget every result of this server kept in the local cache."""
        if self.cache is not None:
            self.cache.clear()


def _rows_table(answer: Mapping[str, Any]) -> Table:
    """A search answer ({"rows", "columns": [{"name", "unit", "description"}], "total"}) as a
    Table: numeric columns with their units, lists kept as objects."""
    rows = answer.get("rows", [])
    described = {c["name"]: c for c in answer.get("columns", [])}
    # The described columns in their order, then any other key the rows have.
    names = dict.fromkeys([*described, *(k for row in rows for k in row)])
    table = Table(meta={"total": answer.get("total", len(rows)),
                        "criteria": answer.get("criteria", {}),
                        "instrument": answer.get("instrument")})
    for name in names:
        values = [row.get(name) for row in rows]
        info = described.get(name, {})
        description = info.get("description", "")
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            column = MaskedColumn([float("nan") if v is None else v for v in values], name=name,
                                  mask=[v is None for v in values], description=description,
                                  unit=parse_unit(info.get("unit")))
        elif any(isinstance(v, (list, dict)) for v in present):
            cells = np.empty(len(values), dtype=object)
            for index, value in enumerate(values):
                cells[index] = value
            column = Column(cells, name=name, description=description)
        elif present and all(isinstance(v, bool) for v in present):
            column = MaskedColumn([bool(v) for v in values], name=name,
                                  mask=[v is None for v in values], description=description)
        elif any(v is None for v in values):
            # Masked, not "": a missing value (e.g. the public date of data public from the
            # start) must stay missing, as --json and `row[name] is masked` show.
            column = MaskedColumn(["" if v is None else str(v) for v in values], name=name,
                                  mask=[v is None for v in values], description=description)
        else:
            column = Column([str(v) for v in values], name=name, description=description)
        table.add_column(column)
    return table
