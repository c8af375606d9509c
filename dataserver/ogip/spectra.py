"""OGIP PHA type I spectra (OGIP/92-007): write, read, and sum over exposures."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
from astropy.io import fits

from .keywords import (CREATOR, ObsKeywords, OgipFormatError, column, column_limit, file_name,
                       find_hdu, keyword_or_column, opened, other_keywords, set_cards)

log = logging.getLogger(__name__)

SPECTRUM_NAMES = ("SPECTRUM", "ISGR-EVTS-SPE", "JMX1-PHA1-SPE", "JMX2-PHA1-SPE",
                  "SPI.-PHA1-SPE")
_INTERPRETED = frozenset({"EXPOSURE", "BACKFILE", "RESPFILE", "ANCRFILE", "CORRFILE",
                          "BACKSCAL", "AREASCAL", "CORRSCAL", "POISSERR", "DETCHANS", "CHANTYPE",
                          "QUALITY", "GROUPING", "STATERR", "SYSERR", "PHAVERSN", "CREATOR"})


@dataclass
class Spectrum:
    """A type I spectrum: COUNTS (Poisson) or RATE with STAT_ERR, per channel.

    `stat_err` has the unit of the data column (counts or counts/s); `sys_err` is the OGIP
    fractional systematic error. BACKSCAL and AREASCAL are scalars or per-channel arrays.
    """

    channel: np.ndarray
    counts: np.ndarray | None = None
    rate: np.ndarray | None = None
    stat_err: np.ndarray | None = None
    sys_err: np.ndarray | None = None
    quality: np.ndarray | None = None
    grouping: np.ndarray | None = None
    exposure: float = 0.0
    backscal: float | np.ndarray = 1.0
    areascal: float | np.ndarray = 1.0
    corrscal: float = 1.0
    kind: str = "TOTAL"                      # HDUCLAS2: TOTAL, NET or BKG
    poisserr: bool | None = None             # None: True for COUNTS, False for RATE
    backfile: str = "NONE"
    respfile: str = "NONE"
    ancrfile: str = "NONE"
    corrfile: str = "NONE"
    chantype: str = "PI"
    detchans: int | None = None
    first_channel: int | None = None         # TLMIN1; None: the first CHANNEL value
    obs: ObsKeywords = field(default_factory=ObsKeywords)
    keywords: dict[str, Any] = field(default_factory=dict)
    extname: str = "SPECTRUM"

    def __post_init__(self) -> None:
        self.channel = np.asarray(self.channel, dtype=np.int64)
        if (self.counts is None) == (self.rate is None):
            raise ValueError("a spectrum holds either counts or rate (exactly one)")
        n = self.channel.size
        for name in ("counts", "rate", "stat_err", "sys_err", "quality", "grouping"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.int64 if name in ("quality", "grouping")
                                   else float)
                if value.shape != (n,):
                    raise ValueError(f"spectrum {name} has shape {value.shape}, expected ({n},)")
                setattr(self, name, value)
        if self.rate is not None and self.stat_err is None:
            raise ValueError("a RATE spectrum needs stat_err")
        if not np.isfinite(self.exposure) or self.exposure < 0:
            raise ValueError(f"spectrum exposure must be >= 0, got {self.exposure}")
        if self.poisserr is None:
            self.poisserr = self.counts is not None and self.stat_err is None
        if self.first_channel is None:
            self.first_channel = int(self.channel[0]) if n else 0
        if self.detchans is None:
            self.detchans = n

    @property
    def is_rate(self) -> bool:
        return self.rate is not None

    @property
    def total_counts(self) -> np.ndarray:
        """Counts per channel (RATE times EXPOSURE for a rate spectrum)."""
        return self.counts if self.counts is not None else self.rate * self.exposure

    @property
    def count_errors(self) -> np.ndarray | None:
        """Statistical errors in counts, when the file gives them."""
        if self.stat_err is None:
            return None
        return self.stat_err if self.counts is not None else self.stat_err * self.exposure

    @property
    def good(self) -> np.ndarray:
        """Channels of good quality (QUALITY == 0)."""
        return np.ones(self.channel.size, bool) if self.quality is None else self.quality == 0


def _scale_card_or_column(name: str, value, n: int):
    """BACKSCAL/AREASCAL as a keyword when scalar, as a column otherwise."""
    if np.ndim(value) == 0:
        return (name, float(value), ""), None
    array = np.asarray(value, dtype=float)
    if array.shape != (n,):
        raise ValueError(f"{name} has shape {array.shape}, expected ({n},)")
    return None, fits.Column(name=name, format="E", array=array)


def spectrum_hdulist(spec: Spectrum, *, extname: str | None = None,
                     creator: str = CREATOR) -> fits.HDUList:
    """PHA type I file: CHANNEL, COUNTS (or RATE + STAT_ERR), [SYS_ERR], QUALITY, GROUPING."""
    n = spec.channel.size
    cols = [fits.Column(name="CHANNEL", format="J", array=spec.channel)]
    if spec.counts is not None:
        integral = (np.all(spec.counts == np.round(spec.counts))
                    and spec.counts.max(initial=0) < 2**31)
        cols.append(fits.Column(name="COUNTS", format="J" if integral else "D", unit="count",
                                array=spec.counts.astype(np.int64 if integral else float)))
        if spec.stat_err is not None:
            cols.append(fits.Column(name="STAT_ERR", format="D", unit="count", array=spec.stat_err))
    else:
        cols += [fits.Column(name="RATE", format="D", unit="count/s", array=spec.rate),
                 fits.Column(name="STAT_ERR", format="D", unit="count/s", array=spec.stat_err)]
    if spec.sys_err is not None:
        cols.append(fits.Column(name="SYS_ERR", format="D", array=spec.sys_err))
    quality = spec.quality if spec.quality is not None else np.zeros(n, np.int64)
    grouping = spec.grouping if spec.grouping is not None else np.ones(n, np.int64)
    cols += [fits.Column(name="QUALITY", format="I", array=quality),
             fits.Column(name="GROUPING", format="I", array=grouping)]
    cards: list[tuple[str, Any, str]] = []
    for name, value in (("BACKSCAL", spec.backscal), ("AREASCAL", spec.areascal)):
        card, col = _scale_card_or_column(name, value, n)
        if card:
            cards.append(card)
        else:
            cols.append(col)
    hdu = fits.BinTableHDU.from_columns(cols, name=extname or spec.extname)
    header = hdu.header
    header["TLMIN1"] = int(spec.first_channel)
    header["TLMAX1"] = int(spec.first_channel + spec.detchans - 1)
    set_cards(header, [
        ("HDUCLASS", "OGIP", "format conforms to OGIP standard"),
        ("HDUCLAS1", "SPECTRUM", "PHA dataset (OGIP/92-007)"),
        ("HDUCLAS2", spec.kind.upper(), "TOTAL, NET or BKG spectrum"),
        ("HDUCLAS3", "RATE" if spec.is_rate else "COUNT", "data stored as counts or rates"),
        ("HDUCLAS4", "TYPE:I", "single spectrum"),
        ("HDUVERS", "1.2.1", "version of the format"),
        ("PHAVERSN", "1992a", "obsolete version keyword, as HXMTDAS writes it"),
        ("CREATOR", creator, "software that made this file"),
    ])
    set_cards(header, spec.obs.cards())
    set_cards(header, [
        ("EXPOSURE", float(spec.exposure), "[s] exposure time"),
        ("BACKFILE", spec.backfile, "background file"),
        ("RESPFILE", spec.respfile, "redistribution matrix file"),
        ("ANCRFILE", spec.ancrfile, "ancillary response file"),
        ("CORRFILE", spec.corrfile, "correction file"),
        ("CORRSCAL", float(spec.corrscal), "correction file scaling"),
        *cards,
        ("POISSERR", bool(spec.poisserr), "Poisson errors apply"),
        ("STATERR", spec.stat_err is not None, "statistical errors given"),
        ("SYSERR", spec.sys_err is not None, "systematic errors given"),
        ("DETCHANS", int(spec.detchans), "number of detector channels"),
        ("CHANTYPE", spec.chantype, "channel type (PHA or PI)"),
    ])
    set_cards(header, [(k, v, "") for k, v in spec.keywords.items() if k not in header])
    return fits.HDUList([fits.PrimaryHDU(), hdu])


def read_spectrum(source: Any) -> Spectrum:
    """The type I spectrum of `source` (path, HDUList or Product), found by HDUCLAS1=SPECTRUM
    or by name (SPECTRUM, OSA's ISGR-EVTS-SPE, JMX1-PHA1-SPE, ...)."""
    with opened(source) as hdul:
        hdu = find_hdu(hdul, "SPECTRUM", names=SPECTRUM_NAMES, what="spectrum")
        header = hdu.header
        if str(header.get("HDUCLAS4", "")).strip().upper() == "TYPE:II":
            raise OgipFormatError(f"extension {hdu.name} is a type II PHA (several spectra); "
                                  "only type I spectra are supported")
        counts = column(hdu, "COUNTS", required=False)
        rate = column(hdu, "RATE", required=False) if counts is None else None
        data = counts if counts is not None else rate
        if data is None:
            raise OgipFormatError(f"extension {hdu.name}: no COUNTS or RATE column")
        if np.ndim(data) != 1:
            raise OgipFormatError(f"extension {hdu.name} holds {np.shape(data)[0]} spectra "
                                  "(type II); only type I spectra are supported")
        n = len(data)
        channel = column(hdu, "CHANNEL", required=False)
        tlmin = column_limit(hdu, "CHANNEL")
        if channel is None:
            channel = np.arange(n) + (tlmin if tlmin is not None else 1)
        stat_err = column(hdu, "STAT_ERR", required=False)
        if stat_err is None and "STAT_ERR" in header and rate is not None:
            stat_err = np.full(n, float(header["STAT_ERR"]))
        sys_err = column(hdu, "SYS_ERR", required=False)
        if sys_err is None and float(header.get("SYS_ERR", 0) or 0) > 0:
            sys_err = np.full(n, float(header["SYS_ERR"]))
        quality = column(hdu, "QUALITY", required=False)
        grouping = column(hdu, "GROUPING", required=False)
        poisserr = header.get("POISSERR")
        detchans = header.get("DETCHANS")
        return Spectrum(
            channel=np.asarray(channel),
            counts=None if counts is None else np.asarray(counts, float),
            rate=None if rate is None else np.asarray(rate, float),
            stat_err=None if stat_err is None else np.asarray(stat_err, float),
            sys_err=None if sys_err is None else np.asarray(sys_err, float),
            quality=None if quality is None else np.asarray(quality),
            grouping=None if grouping is None else np.asarray(grouping),
            exposure=float(header.get("EXPOSURE", 0.0)),
            backscal=keyword_or_column(hdu, "BACKSCAL", 1.0),
            areascal=keyword_or_column(hdu, "AREASCAL", 1.0),
            corrscal=float(header.get("CORRSCAL", 1.0) or 1.0),
            kind=str(header.get("HDUCLAS2", "TOTAL")).strip().upper() or "TOTAL",
            poisserr=None if poisserr is None else bool(poisserr),
            backfile=file_name(header.get("BACKFILE")), respfile=file_name(header.get("RESPFILE")),
            ancrfile=file_name(header.get("ANCRFILE")), corrfile=file_name(header.get("CORRFILE")),
            chantype=str(header.get("CHANTYPE", "PI")).strip(),
            detchans=int(detchans) if detchans is not None else None,
            first_channel=tlmin, obs=ObsKeywords.from_header(header),
            keywords=other_keywords(header, _INTERPRETED), extname=hdu.name)


def _weighted(values: Sequence, weights: np.ndarray) -> float | np.ndarray:
    """Exposure-weighted mean of scalars or per-channel arrays (a scalar when constant)."""
    arrays = [np.asarray(v, float) for v in values]
    if all(np.array_equal(a, arrays[0]) for a in arrays):
        return _scalar_if_constant(arrays[0])
    return _scalar_if_constant(sum(w * a for w, a in zip(weights, arrays)) / weights.sum())


def _check_same_channels(spectra: Sequence[Spectrum], what: str) -> None:
    first = spectra[0].channel
    for index, spec in enumerate(spectra[1:], start=1):
        if not np.array_equal(spec.channel, first):
            raise ValueError(f"{what} {index} has channels {spec.channel[0]}-{spec.channel[-1]} "
                             f"({spec.channel.size}); {what} 0 has {first[0]}-{first[-1]} "
                             f"({first.size})")


def _merged_obs(spectra: Sequence[Spectrum]) -> ObsKeywords:
    obs = spectra[0].obs
    starts = [s.obs.tstart for s in spectra if s.obs.tstart is not None]
    stops = [s.obs.tstop for s in spectra if s.obs.tstop is not None]
    dates_obs = [s.obs.date_obs for s in spectra if s.obs.date_obs]
    dates_end = [s.obs.date_end for s in spectra if s.obs.date_end]
    objects = {s.obs.object for s in spectra}
    return replace(obs, tstart=min(starts) if starts else None, tstop=max(stops) if stops else None,
                   date_obs=min(dates_obs) if dates_obs else None,
                   date_end=max(dates_end) if dates_end else None,
                   object=obs.object if len(objects) == 1 else None)


def _common_keywords(spectra: Sequence[Spectrum]) -> dict[str, Any]:
    first = spectra[0].keywords
    return {k: v for k, v in first.items() if all(s.keywords.get(k) == v for s in spectra[1:])}


def sum_spectra(spectra: Sequence[Spectrum],
                backgrounds: Sequence[Spectrum | None] | None = None
                ) -> tuple[Spectrum, Spectrum | None]:
    """Sum spectra of several exposures, and their backgrounds.

    Counts and exposures add up; rate spectra combine as exposure-weighted rates with their
    errors added in quadrature. BACKSCAL/AREASCAL of the sum are exposure-weighted means.
    Backgrounds are combined so that the background expected in the summed source spectrum
    is the sum of each exposure's scaled background: Poisson backgrounds keep their counts and
    get a BACKSCAL (per channel if the exposures' scalings differ) that reproduces the summed
    scaled counts; rate backgrounds (HXMT model backgrounds) are combined as the source
    exposure-weighted rate already scaled to the source region (BACKSCAL = source's).
    """
    spectra = list(spectra)
    if not spectra:
        raise ValueError("no spectra to sum")
    _check_same_channels(spectra, "spectrum")
    kinds = {s.is_rate for s in spectra}
    if len(kinds) > 1:
        raise ValueError("cannot sum COUNTS spectra with RATE spectra")
    t = np.array([s.exposure for s in spectra], float)
    if t.sum() <= 0:
        raise ValueError("the spectra to sum have no exposure")
    bad = np.max([np.asarray(s.quality if s.quality is not None else np.zeros(s.channel.size))
                  for s in spectra], axis=0)
    groupings = [s.grouping for s in spectra]
    same_grouping = all(g is not None and np.array_equal(g, groupings[0]) for g in groupings)
    common = dict(channel=spectra[0].channel, quality=bad.astype(np.int64),
                  grouping=groupings[0] if same_grouping else None, exposure=float(t.sum()),
                  backscal=_weighted([s.backscal for s in spectra], t),
                  areascal=_weighted([s.areascal for s in spectra], t),
                  kind=spectra[0].kind, chantype=spectra[0].chantype,
                  detchans=spectra[0].detchans, first_channel=spectra[0].first_channel,
                  obs=_merged_obs(spectra), keywords=_common_keywords(spectra))
    if spectra[0].is_rate:
        rate = sum(ti * s.rate for ti, s in zip(t, spectra)) / t.sum()
        err = np.sqrt(sum((ti * s.stat_err) ** 2 for ti, s in zip(t, spectra))) / t.sum()
        sys_errs = [s.sys_err for s in spectra]
        sys_err = sys_errs[0] if all(e is not None and np.array_equal(e, sys_errs[0])
                                     for e in sys_errs) else None
        total = Spectrum(rate=rate, stat_err=err, sys_err=sys_err, **common)
    else:
        errs = [s.stat_err for s in spectra]
        err = (np.sqrt(sum(e**2 for e in errs)) if all(e is not None for e in errs) else None)
        total = Spectrum(counts=sum(s.counts for s in spectra), stat_err=err, **common)
    if backgrounds is None or all(b is None for b in backgrounds):
        return total, None
    backgrounds = list(backgrounds)
    if len(backgrounds) != len(spectra) or any(b is None for b in backgrounds):
        raise ValueError("give a background for every spectrum or for none")
    return total, _sum_backgrounds(spectra, backgrounds, total)


def _sum_backgrounds(spectra: Sequence[Spectrum], backgrounds: Sequence[Spectrum],
                     total: Spectrum) -> Spectrum:
    _check_same_channels([spectra[0], *backgrounds], "background")
    if len({b.is_rate for b in backgrounds}) > 1:
        raise ValueError("cannot sum COUNTS backgrounds with RATE backgrounds")
    t_s = np.array([s.exposure for s in spectra], float)
    t_b = np.array([b.exposure for b in backgrounds], float)
    # Region/area ratio of each exposure's source to its background (without exposures).
    beta = [np.asarray(s.backscal, float) * np.asarray(s.areascal, float)
            / (np.asarray(b.backscal, float) * np.asarray(b.areascal, float))
            for s, b in zip(spectra, backgrounds)]
    base = dict(channel=total.channel, quality=np.max([b.quality if b.quality is not None else
                                                       np.zeros(total.channel.size, np.int64)
                                                       for b in backgrounds], axis=0),
                exposure=float(t_b.sum()), kind="BKG", chantype=total.chantype,
                detchans=total.detchans, first_channel=total.first_channel,
                obs=_merged_obs(backgrounds), keywords=_common_keywords(backgrounds), areascal=1.0)
    source_scale = np.asarray(total.backscal, float) * np.asarray(total.areascal, float)
    if backgrounds[0].is_rate:
        counts_in_source = sum(ts * b.rate * be for ts, b, be in zip(t_s, backgrounds, beta))
        err = np.sqrt(sum((ts * b.stat_err * be) ** 2 for ts, b, be in zip(t_s, backgrounds, beta)))
        return Spectrum(rate=counts_in_source / t_s.sum(), stat_err=err / t_s.sum(),
                        backscal=_scalar_if_constant(source_scale), **base)
    if np.any(t_b <= 0):
        raise ValueError("a COUNTS background has no exposure")
    alpha = [ts / tb * be for ts, tb, be in zip(t_s, t_b, beta)]
    counts = sum(b.counts for b in backgrounds)
    scaled = sum(a * b.counts for a, b in zip(alpha, backgrounds))
    fallback = sum(a * tb for a, tb in zip(alpha, t_b)) / t_b.sum()
    alpha_total = np.where(counts > 0, scaled / np.where(counts > 0, counts, 1.0), fallback)
    backscal = t_s.sum() * source_scale / (t_b.sum() * alpha_total)
    return Spectrum(counts=counts, backscal=_scalar_if_constant(backscal), **base)


def _scalar_if_constant(values) -> float | np.ndarray:
    values = np.asarray(values, float)
    if values.ndim == 0:
        return float(values)
    return float(values[0]) if np.allclose(values, values[0], rtol=1e-12, atol=0) else values
