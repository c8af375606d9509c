"""Products as astropy objects: what `get_product` returns.

A `ProductCollection` holds the files of one finished job, in the server's order, each as a
`Product` of its kind (the `kind` the plugin declared):

| kind | class | `.data` |
|---|---|---|
| lightcurve | `LightCurve` | `astropy.table.Table` with units (`.times()`: astropy `Time`) |
| catalog | `Catalog` | `Table` with units (`.coordinates()`: `SkyCoord`) |
| gti | `GoodTimes` | `Table` of START, STOP |
| table | `TableProduct` | `Table` |
| fit | `Fit` | `Table` of fitted parameters; `.parameters`, `.statistic`, `.flux`, ... |
| spectrum, background | `Spectrum` | `HDUList` |
| rmf, arf | `Response` | `HDUList` |
| image | `Image` | `HDUList` (`.wcs`, `.image`) |
| events, other | `Product` | `HDUList` |

Every product keeps the bytes the server sent (its FITS file with the provenance header), so
`.write(directory)` writes exactly that file under its original name.
"""
from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence, TextIO

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from . import plotting
from .cache import safe_file_name

if TYPE_CHECKING:
    from .dispatcher import Dispatcher
    from .jobs import Job

_COUNT_WORDS = re.compile(r"\b(counts|cts|ct)\b")


def parse_unit(text: str | None) -> u.UnitBase | None:
    """An OGIP unit string as an astropy unit ('counts/s' -> ct / s); None if unknown."""
    if not text or not str(text).strip():
        return None
    cleaned = _COUNT_WORDS.sub("count", str(text).strip())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unit = u.Unit(cleaned, parse_strict="silent")
    return None if isinstance(unit, u.UnrecognizedUnit) else unit


def table_from_hdu(hdu: fits.BinTableHDU) -> Table:
    """A FITS table as an astropy Table with units (OGIP spellings understood) and the
    header keywords in `meta`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u.UnitsWarning)
        table = Table.read(hdu, unit_parse_strict="silent")
    for index, column in enumerate(table.itercols(), start=1):
        declared = hdu.header.get(f"TUNIT{index}")
        if isinstance(column.unit, u.UnrecognizedUnit) or (declared and column.unit is None):
            column.unit = parse_unit(declared)
            if column.unit is None and declared:
                column.meta["unit_text"] = declared
    return table


def find_table(hdul: fits.HDUList, hduclas1: str | None = None,
               names: Sequence[str] = ()) -> fits.BinTableHDU:
    """The table extension with HDUCLAS1 `hduclas1`, else one of `names`, else the first."""
    tables = [h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)]
    if not tables:
        raise ValueError("the file holds no table extension")
    if hduclas1:
        for hdu in tables:
            if str(hdu.header.get("HDUCLAS1", "")).upper() == hduclas1:
                return hdu
    upper = [n.upper() for n in names]
    for hdu in tables:
        if hdu.name.upper() in upper:
            return hdu
    return tables[0]


def column_name(table: Table, *candidates: str, required: bool = True) -> str | None:
    """The first column named like one of `candidates`, ignoring case."""
    by_upper = {name.upper(): name for name in table.colnames}
    for candidate in candidates:
        if candidate.upper() in by_upper:
            return by_upper[candidate.upper()]
    if required:
        raise KeyError(f"no column {' or '.join(candidates)} (have {', '.join(table.colnames)})")
    return None


class Product:
    """One FITS file of a job. `.hdul` opens it with astropy; `.data` is its astropy object."""

    def __init__(self, info: Mapping[str, Any], content: bytes | Path):
        self.info = dict(info)
        self.name: str = info["name"]
        self.kind: str = info.get("kind", "")
        self.description: str = info.get("description", "")
        self.unit: str | None = info.get("unit")       # the data unit, None for combined products
        self.meta: dict[str, Any] = dict(info.get("meta") or {})
        self._content = content
        self._hdul: fits.HDUList | None = None

    @property
    def size(self) -> int:
        if isinstance(self._content, Path):
            return self._content.stat().st_size
        return len(self._content)

    @property
    def hdul(self) -> fits.HDUList:
        if self._hdul is None:
            source = self._content if isinstance(self._content, Path) else io.BytesIO(self._content)
            self._hdul = fits.open(source, memmap=isinstance(self._content, Path))
        return self._hdul

    @property
    def header(self) -> fits.Header:
        """The primary header (provenance: XODAJOB, XODALINK, HISTORY of the steps)."""
        return self.hdul[0].header

    @property
    def data(self) -> Any:
        return self.hdul

    def table(self, extension: int | str | None = None) -> Table:
        """A table extension (by index or name; default the first) as an astropy Table."""
        hdu = self.hdul[extension] if extension is not None else find_table(self.hdul)
        if not isinstance(hdu, fits.BinTableHDU):
            raise ValueError(f"extension {extension!r} of {self.name} is not a table")
        return table_from_hdu(hdu)

    def write(self, directory: str | Path = ".", overwrite: bool = False) -> Path:
        """Write the file as served, under its original name, into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / safe_file_name(self.name)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} already exists (overwrite=True, or --overwrite, "
                                  "replaces it)")
        partial = target.with_name(target.name + ".part")
        if isinstance(self._content, Path):
            partial.write_bytes(self._content.read_bytes())
        else:
            partial.write_bytes(self._content)
        partial.replace(target)
        return target

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        raise TypeError(f"{self.name}: products of kind {self.kind!r} have no plot")

    def close(self) -> None:
        if self._hdul is not None:
            self._hdul.close()
            self._hdul = None

    def __repr__(self) -> str:
        where = f", unit {self.unit}" if self.unit else ""
        return f"<{type(self).__name__} {self.name} ({self.kind}{where}): {self.description}>"


class TableProduct(Product):
    """A product whose content is one table."""

    hduclas1: str | None = None
    extension_names: tuple[str, ...] = ()

    @property
    def hdu(self) -> fits.BinTableHDU:
        return find_table(self.hdul, self.hduclas1, self.extension_names)

    @property
    def data(self) -> Table:
        return table_from_hdu(self.hdu)


class LightCurve(TableProduct):
    hduclas1 = "LIGHTCURVE"
    extension_names = ("RATE", "LIGHTCURVE", "LC")

    def times(self) -> Any:
        """The bins' times as an astropy Time (from MJDREF, TIMESYS, TIMEUNIT, TIMEZERO)."""
        table = self.data
        return plotting.absolute_times(np.asarray(table[column_name(table, "TIME")], float),
                                       self.hdu.header)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Rate against time with error bars."""
        return plotting.plot_lightcurves(ax, [(self.data, self.hdu.header, self.unit)], **kwargs)


class GoodTimes(TableProduct):
    hduclas1 = "GTI"
    extension_names = ("GTI0", "GTI", "STDGTI")

    @property
    def exposure(self) -> u.Quantity:
        table = self.data
        return float(np.sum(table["STOP"] - table["START"])) * (table["START"].unit or u.s)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        return plotting.plot_gti(ax, self.data, self.hdu.header, **kwargs)


class Catalog(TableProduct):
    def coordinates(self) -> Any:
        """The sources' positions as a SkyCoord (ICRS, from RA/DEC-like columns)."""
        return plotting.catalog_coordinates(self.data)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        return plotting.plot_catalog(ax, self.data, **kwargs)


class Spectrum(Product):
    @property
    def hdu(self) -> fits.BinTableHDU:
        return find_table(self.hdul, "SPECTRUM", ("SPECTRUM",))

    def plot(self, ax: Any = None, response: "Response | None" = None,
             background: "Spectrum | None" = None, **kwargs: Any) -> Any:
        """Count rate per channel, or per keV against energy when a `response` (RMF with
        EBOUNDS) is given; the scaled `background` too when given."""
        ebounds = response.ebounds if response is not None else None
        return plotting.plot_spectrum(ax, self.hdu, ebounds,
                                      background.hdu if background is not None else None, **kwargs)


class Response(Product):
    @property
    def ebounds(self) -> fits.BinTableHDU | None:
        """The EBOUNDS extension (channel energies), if this file holds one."""
        for hdu in self.hdul[1:]:
            if (str(hdu.header.get("HDUCLAS2", "")).upper() == "EBOUNDS"
                    or hdu.name.upper() == "EBOUNDS"):
                return hdu
        return None


class Image(Product):
    @property
    def image(self) -> fits.ImageHDU | fits.PrimaryHDU:
        """The first HDU holding a 2-D image."""
        for hdu in self.hdul:
            if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)) and hdu.data is not None \
                    and hdu.data.ndim >= 2:
                return hdu
        raise ValueError(f"{self.name} holds no image")

    @property
    def wcs(self) -> Any:
        from astropy.wcs import WCS

        return WCS(self.image.header).celestial

    def plot(self, ax: Any = None, catalog: Catalog | None = None, **kwargs: Any) -> Any:
        """The image on sky axes, with the sources of `catalog` marked."""
        return plotting.plot_image(ax, self.image, catalog.data if catalog is not None else None,
                                   **kwargs)


class Fit(Product):
    """A spectral fit: `parameters` (best value, 1-sigma interval, covariance error, unit),
    `statistic`, `dof`, `goodness`, `flux`; `.plot()` shows data, model and residuals."""

    @property
    def data(self) -> Table:
        table = table_from_hdu(find_table(self.hdul, None, ("FIT",)))
        table.meta.update({k: v for k, v in self.meta.items() if k != "plot"})
        return table

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        """name -> {value, error_lower, error_upper, sigma, limit, unit} (None where
        undefined; limit "lower"/"upper" when the best value is on that hard limit)."""
        if self.meta.get("parameters"):
            return {p["name"]: {k: v for k, v in p.items() if k != "name"}
                    for p in self.meta["parameters"]}
        table = find_table(self.hdul, None, ("FIT",)).data
        return {str(row["PARAMETER"]).strip(): {
            "value": float(row["VALUE"]), "error_lower": _finite(row["ERR_LOW"]),
            "error_upper": _finite(row["ERR_HIGH"]), "sigma": _finite(row["SIGMA"]),
            "limit": (str(row["LIMIT"]).strip() or None) if "LIMIT" in table.names else None,
            "unit": str(row["UNIT"]).strip()} for row in table}

    @property
    def values(self) -> dict[str, Any]:
        """Best-fit values, as Quantities where the parameter has a unit (a qualifier such as
        "ph/cm2/s/keV at 1 keV" is left out of the unit)."""
        out = {}
        for name, p in self.parameters.items():
            unit = parse_unit(str(p.get("unit") or "").split(" at ")[0])
            out[name] = p["value"] * unit if unit is not None else p["value"]
        return out

    @property
    def statistic(self) -> str | None:
        return self.meta.get("statistic") or self._fit_header.get("STAT")

    @property
    def stat(self) -> float | None:
        return self.meta.get("stat", self._fit_header.get("STATVAL"))

    @property
    def dof(self) -> int | None:
        return self.meta.get("dof", self._fit_header.get("DOF"))

    @property
    def goodness(self) -> dict[str, Any]:
        return dict(self.meta.get("goodness") or {})

    @property
    def flux(self) -> dict[str, Any]:
        """Energy flux (erg/cm2/s) in its band: value, error, unabsorbed, emin, emax (keV)."""
        if self.meta.get("flux"):
            return dict(self.meta["flux"])
        header = self._fit_header
        return {"emin": header.get("FLUXEMIN"), "emax": header.get("FLUXEMAX"),
                "value": header.get("FLUX"), "error": header.get("FLUXERR"),
                "unabsorbed": header.get("UFLUX"), "unabsorbed_error": header.get("UFLUXERR")}

    @property
    def _fit_header(self) -> fits.Header:
        return find_table(self.hdul, None, ("FIT",)).header

    def summary(self) -> str:
        """A few lines: model, statistic per degree of freedom, parameters with errors, flux."""
        header = self._fit_header
        lines = [f"{header.get('MODEL', self.meta.get('model', '?'))}"
                 f"{' (absorbed)' if header.get('ABSORBED') else ''}: "
                 f"{self.statistic} = {_g(self.stat)} for {self.dof} dof"]
        pvalue = self.goodness.get("p_value")
        if pvalue is not None:
            lines[0] += f", goodness p = {pvalue:.3g}"
        for name, p in self.parameters.items():
            unit = f" {p['unit']}" if p.get("unit") else ""
            lower, upper = p.get("error_lower"), p.get("error_upper")
            interval = (f" {lower:+.3g} / {upper:+.3g}" if lower is not None and upper is not None
                        else (f" +- {p['sigma']:.3g}" if p.get("sigma") is not None else ""))
            pegged = ""
            if p.get("limit"):
                # The data bound it on one side only: that side's 1-sigma bound.
                side = lower if p["limit"] == "upper" else upper
                bound = (f"; 1-sigma {'lower' if p['limit'] == 'upper' else 'upper'} bound "
                         f"{p['value'] + side:.3g}" if side is not None else "")
                pegged = f" (at its {p['limit']} limit{bound})"
            lines.append(f"  {name} = {p['value']:.5g}{interval}{unit}{pegged}")
        flux = self.flux
        if flux.get("value") is not None:
            error = f" +- {flux['error']:.3g}" if flux.get("error") is not None else ""
            lines.append(f"  flux {_g(flux.get('emin'))}-{_g(flux.get('emax'))} keV = "
                         f"{flux['value']:.4g}{error} erg/cm2/s")
        return "\n".join(lines)

    @property
    def channels(self) -> Table:
        """Every fitted channel: counts, scaled background, folded model and variance (counts),
        with the fit and plot groups."""
        return table_from_hdu(find_table(self.hdul, None, ("CHANNELS",)))

    def grouped(self) -> Table:
        """The fitted channels summed per plot group, in counts/s/keV: net data with its error,
        model, background, and residuals in sigma (what `plot` draws)."""
        return plotting.group_channels(self.channels, float(self._fit_header["EXPOSURE"]))

    def plot(self, figure: Any = None, **kwargs: Any) -> Any:
        """Data and folded model (counts/s/keV) above the residuals in sigma, from the
        per-channel table summed per plot group."""
        return plotting.plot_fit(figure, self.grouped(), self._fit_header, **kwargs)

    def __repr__(self) -> str:
        return super().__repr__() + "\n" + self.summary()


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _g(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) else str(value)


PRODUCT_CLASSES: Mapping[str, type[Product]] = MappingProxyType({
    "lightcurve": LightCurve, "catalog": Catalog, "gti": GoodTimes, "table": TableProduct,
    "fit": Fit, "spectrum": Spectrum, "background": Spectrum, "rmf": Response, "arf": Response,
    "image": Image, "events": Product,
})


def make_product(info: Mapping[str, Any], content: bytes | Path) -> Product:
    return PRODUCT_CLASSES.get(info.get("kind", ""), Product)(info, content)


class ProductCollection(Sequence[Product]):
    """The products of one finished job, in the server's order.

    `collection[0]` or `collection["name.fits"]` gives one product; `main(kind)` the combined
    product of a kind (`of_kind(kind)` all of them); `write(directory)`, `plot()`, `link`,
    `fit(...)` act on the whole.
    """

    def __init__(self, products: Sequence[Product], job: "Job"):
        self._products = list(products)
        self.job = job

    # ---- the job -------------------------------------------------------------------------
    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def instrument(self) -> str:
        return self.job.instrument

    @property
    def product(self) -> str:
        return self.job.product

    @property
    def params(self) -> dict[str, Any]:
        """The normalised parameters of the query (defaults filled, times in ISO UTC)."""
        return self.job.params

    @property
    def link(self) -> str | None:
        """The reproducible link: opening it runs the same query (no token in it)."""
        return self.job.link

    # ---- access --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._products)

    def __iter__(self) -> Iterator[Product]:
        return iter(self._products)

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            for product in self._products:
                if product.name == key:
                    return product
            raise KeyError(f"no product named {key!r}; have: {', '.join(self.names)}")
        return self._products[key]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self._products]

    @property
    def kinds(self) -> list[str]:
        return list(dict.fromkeys(p.kind for p in self._products))

    def of_kind(self, kind: str) -> list[Product]:
        return [p for p in self._products if p.kind == kind]

    def main(self, kind: str) -> Any:
        """The product of `kind` for the whole query: the first combined one (not tied to a
        data unit), else the first of that kind."""
        found = self.of_kind(kind)
        if not found:
            raise KeyError(f"no product of kind {kind!r}; kinds here: {', '.join(self.kinds)}")
        return next((p for p in found if p.unit is None), found[0])

    def _optional(self, kind: str) -> Any:
        return self.main(kind) if self.of_kind(kind) else None

    # ---- actions -------------------------------------------------------------------------
    def write(self, directory: str | Path = ".", overwrite: bool = False) -> list[Path]:
        """Write every file, as served, under its original name; returns the paths."""
        existing = [Path(directory) / p.name for p in self._products
                    if (Path(directory) / p.name).exists()]
        if existing and not overwrite:
            raise FileExistsError(f"already there: {', '.join(map(str, existing))} "
                                  "(overwrite=True, or --overwrite, replaces them)")
        return [p.write(directory, overwrite=overwrite) for p in self._products]

    def plot(self, figsize: tuple[float, float] | None = None) -> Any:
        """One matplotlib figure: the fit (data, model, residuals) or the spectrum, the light
        curves, the image with the catalogue's sources, or the good-time intervals."""
        return plotting.plot_collection(self, figsize=figsize)

    def fit(self, product: str | None = None, *, wait: bool = True,
            progress: bool | TextIO | None = None, timeout: float | None = None,
            **fit_params: Any) -> Any:
        """Ask the server to fit this spectrum: the instrument's fit product with this query's
        parameters plus `fit_params` (the model, statistic, band...: see `describe` of the fit
        product)."""
        dispatcher: Dispatcher = self.job.dispatcher
        fit_product = product or dispatcher.fit_product(self.instrument, self.params)
        properties = dispatcher.schema(self.instrument, fit_product).get("properties", {})
        params = {k: v for k, v in self.params.items() if k in properties}
        params.update(fit_params)
        return dispatcher.get_product(self.instrument, fit_product, params=params, wait=wait,
                                      progress=progress, timeout=timeout)

    def close(self) -> None:
        for product in self._products:
            product.close()

    def __repr__(self) -> str:
        lines = [f"ProductCollection: {self.instrument}/{self.product}, job {self.job_id[:12]}, "
                 f"{len(self)} product{'s' if len(self) != 1 else ''}"]
        lines += [f"  [{i}] {p.name:32s} {p.kind:10s} {p.description}"
                  for i, p in enumerate(self._products)]
        if self.link:
            lines.append(f"  link: {self.link}")
        return "\n".join(lines)
