"""OGIP responses (CAL/GEN/92-002): RMF (MATRIX + EBOUNDS) and ARF (SPECRESP).

In memory a response matrix is dense, (energy bins x channels): the largest matrices xoda
meets (HXMT LE: 1536 channels; ISGRI: 2466 x 256) fit in tens of MB, and dense folding is one
matrix product. On disk the writer compresses each row into groups of contiguous elements
above a threshold (N_GRP, F_CHAN, N_CHAN, variable-length MATRIX), as OGIP prescribes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from astropy.io import fits

from .keywords import (CREATOR, ObsKeywords, OgipFormatError, column, column_limit, find_hdu,
                       opened, other_keywords, set_cards)

log = logging.getLogger(__name__)

MATRIX_NAMES = ("MATRIX", "SPECRESP MATRIX", "ISGR-RMF.-RSP", "JMX1-RMF.-RSP", "JMX2-RMF.-RSP",
                "SPI.-RMF.-RSP")
EBOUNDS_NAMES = ("EBOUNDS", "ISGR-EBDS-MOD", "JMX1-FBDS-MOD", "JMX2-FBDS-MOD")
ARF_NAMES = ("SPECRESP", "ISGR-ARF.-RSP", "JMX1-AXIS-ARF", "JMX2-AXIS-ARF")
_RMF_INTERPRETED = frozenset({"DETCHANS", "CHANTYPE", "LO_THRES", "NUMGRP", "NUMELT", "EFFAREA",
                              "CREATOR"})


def _validate_grid(energ_lo: np.ndarray, energ_hi: np.ndarray, what: str) -> None:
    if energ_lo.shape != energ_hi.shape or energ_lo.ndim != 1:
        raise ValueError(f"{what}: ENERG_LO and ENERG_HI must be 1-D arrays of one length")
    if np.any(energ_hi <= energ_lo) or np.any(np.diff(energ_lo) <= 0):
        raise ValueError(f"{what}: energy bins must be increasing with ENERG_HI > ENERG_LO")


@dataclass
class Rmf:
    """A response matrix: probability (or, for an RSP, area) per energy bin and channel."""

    energ_lo: np.ndarray
    energ_hi: np.ndarray
    matrix: np.ndarray                       # (n_energy, n_channel)
    e_min: np.ndarray                        # EBOUNDS, per channel [keV]
    e_max: np.ndarray
    first_channel: int = 0
    lo_thres: float = 0.0
    chantype: str = "PI"
    hduclas3: str = "REDIST"                 # REDIST (normalised) or FULL (area included)
    obs: ObsKeywords = field(default_factory=ObsKeywords)
    keywords: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.energ_lo = np.asarray(self.energ_lo, float)
        self.energ_hi = np.asarray(self.energ_hi, float)
        self.matrix = np.asarray(self.matrix, float)
        self.e_min = np.asarray(self.e_min, float)
        self.e_max = np.asarray(self.e_max, float)
        _validate_grid(self.energ_lo, self.energ_hi, "response matrix")
        if self.matrix.shape != (self.energ_lo.size, self.e_min.size):
            raise ValueError(f"response matrix has shape {self.matrix.shape}; expected "
                             f"({self.energ_lo.size} energies, {self.e_min.size} channels)")

    @property
    def detchans(self) -> int:
        return self.e_min.size

    @property
    def channel(self) -> np.ndarray:
        return np.arange(self.detchans) + self.first_channel

    @property
    def includes_area(self) -> bool:
        """Whether the matrix carries effective area (an RSP) rather than probabilities."""
        return (self.hduclas3.upper() == "FULL"
                or float(self.matrix.sum(axis=1).max(initial=0)) > 1.01)


@dataclass
class Arf:
    """Effective area per energy bin [cm2]."""

    energ_lo: np.ndarray
    energ_hi: np.ndarray
    specresp: np.ndarray
    obs: ObsKeywords = field(default_factory=ObsKeywords)
    keywords: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.energ_lo = np.asarray(self.energ_lo, float)
        self.energ_hi = np.asarray(self.energ_hi, float)
        self.specresp = np.asarray(self.specresp, float)
        _validate_grid(self.energ_lo, self.energ_hi, "ARF")
        if self.specresp.shape != self.energ_lo.shape:
            raise ValueError("ARF: SPECRESP must have one value per energy bin")


def _row_groups(row: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """First channel index and length of each run of elements above `threshold`."""
    kept = np.flatnonzero(row > threshold)
    if kept.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    breaks = np.flatnonzero(np.diff(kept) > 1)
    starts = np.concatenate([[kept[0]], kept[breaks + 1]])
    ends = np.concatenate([kept[breaks], [kept[-1]]])
    return starts, ends - starts + 1


def rmf_hdulist(rmf: Rmf, *, matrix_extname: str = "MATRIX", ebounds_extname: str = "EBOUNDS",
                threshold: float = 1e-6, creator: str = CREATOR) -> fits.HDUList:
    """RMF file: MATRIX (ENERG_LO, ENERG_HI, N_GRP, F_CHAN, N_CHAN, MATRIX) + EBOUNDS.

    Elements <= `threshold` are dropped (LO_THRES); F_CHAN/N_CHAN are scalars when no row has
    more than one group and variable-length arrays otherwise; MATRIX is variable-length
    unless every row keeps the same number of elements.
    """
    offset = int(rmf.first_channel)
    groups = [_row_groups(row, threshold) for row in rmf.matrix]
    n_grp = np.array([g[0].size for g in groups], np.int16 if rmf.detchans < 32768 else np.int32)
    values = [np.concatenate([row[s:s + n] for s, n in zip(*g)]) if g[0].size else
              np.zeros(0, np.float32) for row, g in zip(rmf.matrix, groups)]
    lengths = {v.size for v in values}
    cols = [fits.Column(name="ENERG_LO", format="E", unit="keV", array=rmf.energ_lo),
            fits.Column(name="ENERG_HI", format="E", unit="keV", array=rmf.energ_hi),
            fits.Column(name="N_GRP", format="I" if n_grp.dtype == np.int16 else "J", array=n_grp)]
    if n_grp.max(initial=0) <= 1:
        first = np.array([g[0][0] + offset if g[0].size else offset for g in groups], np.int32)
        count = np.array([g[1][0] if g[1].size else 0 for g in groups], np.int32)
        cols += [fits.Column(name="F_CHAN", format="J", array=first),
                 fits.Column(name="N_CHAN", format="J", array=count)]
    else:
        first = np.array([(g[0] + offset).astype(np.int32) for g in groups], dtype=object)
        count = np.array([g[1].astype(np.int32) for g in groups], dtype=object)
        cols += [fits.Column(name="F_CHAN", format="PJ()", array=first),
                 fits.Column(name="N_CHAN", format="PJ()", array=count)]
    if len(lengths) == 1 and lengths != {0}:
        cols.append(fits.Column(name="MATRIX", format=f"{lengths.pop()}E",
                                array=np.array(values, np.float32)))
    else:
        ragged = np.array([v.astype(np.float32) for v in values], dtype=object)
        cols.append(fits.Column(name="MATRIX", format="PE()", array=ragged))
    matrix_hdu = fits.BinTableHDU.from_columns(cols, name=matrix_extname)
    header = matrix_hdu.header
    header["TLMIN4"] = offset
    header["TLMAX4"] = offset + rmf.detchans - 1
    set_cards(header, [
        ("HDUCLASS", "OGIP", "format conforms to OGIP standard"),
        ("HDUCLAS1", "RESPONSE", "dataset relates to spectral response"),
        ("HDUCLAS2", "RSP_MATRIX", "dataset is a spectral response matrix"),
        ("HDUCLAS3", rmf.hduclas3.upper(), "REDIST: probabilities; FULL: area included"),
        ("HDUVERS", "1.3.0", "version of the format (OGIP CAL/GEN/92-002)"),
        ("CREATOR", creator, "software that made this file"),
        *rmf.obs.cards(times=False),
        ("CHANTYPE", rmf.chantype, "channel type (PHA or PI)"),
        ("DETCHANS", int(rmf.detchans), "number of detector channels"),
        ("LO_THRES", float(threshold), "lower threshold of stored matrix elements"),
        ("NUMGRP", int(n_grp.sum()), "total number of channel groups"),
        ("NUMELT", int(sum(v.size for v in values)), "total number of matrix elements"),
    ])
    set_cards(header, [(k, v, "") for k, v in rmf.keywords.items() if k not in header])
    ebounds = fits.BinTableHDU.from_columns(
        [fits.Column(name="CHANNEL", format="J", array=rmf.channel.astype(np.int32)),
         fits.Column(name="E_MIN", format="E", unit="keV", array=rmf.e_min),
         fits.Column(name="E_MAX", format="E", unit="keV", array=rmf.e_max)], name=ebounds_extname)
    eheader = ebounds.header
    eheader["TLMIN1"] = offset
    eheader["TLMAX1"] = offset + rmf.detchans - 1
    set_cards(eheader, [
        ("HDUCLASS", "OGIP", "format conforms to OGIP standard"),
        ("HDUCLAS1", "RESPONSE", "dataset relates to spectral response"),
        ("HDUCLAS2", "EBOUNDS", "nominal energy bounds of the channels"),
        ("HDUVERS", "1.2.0", "version of the format (OGIP CAL/GEN/92-002)"),
        ("CREATOR", creator, "software that made this file"),
        *rmf.obs.cards(times=False),
        ("CHANTYPE", rmf.chantype, "channel type (PHA or PI)"),
        ("DETCHANS", int(rmf.detchans), "number of detector channels"),
    ])
    return fits.HDUList([fits.PrimaryHDU(), matrix_hdu, ebounds])


def arf_hdulist(arf: Arf, *, extname: str = "SPECRESP", creator: str = CREATOR) -> fits.HDUList:
    """ARF file: SPECRESP (ENERG_LO, ENERG_HI, SPECRESP [cm2])."""
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name="ENERG_LO", format="E", unit="keV", array=arf.energ_lo),
         fits.Column(name="ENERG_HI", format="E", unit="keV", array=arf.energ_hi),
         fits.Column(name="SPECRESP", format="E", unit="cm**2", array=arf.specresp)], name=extname)
    set_cards(hdu.header, [
        ("HDUCLASS", "OGIP", "format conforms to OGIP standard"),
        ("HDUCLAS1", "RESPONSE", "dataset relates to spectral response"),
        ("HDUCLAS2", "SPECRESP", "dataset is an effective area"),
        ("HDUVERS", "1.1.0", "version of the format (OGIP CAL/GEN/92-002)"),
        ("CREATOR", creator, "software that made this file"),
        *arf.obs.cards(times=False),
    ])
    set_cards(hdu.header, [(k, v, "") for k, v in arf.keywords.items() if k not in hdu.header])
    return fits.HDUList([fits.PrimaryHDU(), hdu])


def _cell_array(cell) -> np.ndarray:
    return np.atleast_1d(np.asarray(cell)).ravel()


def read_rmf(source: Any) -> Rmf:
    """The response matrix of `source`, found by HDUCLAS RESPONSE/RSP_MATRIX (and EBOUNDS)
    or by name (MATRIX, SPECRESP MATRIX, OSA's ISGR-RMF.-RSP, ...). Handles F_CHAN/N_CHAN as
    scalars, fixed or variable-length arrays, variable-length or fixed MATRIX, and the
    channel offset from TLMIN of F_CHAN (else EBOUNDS' first channel, else 1)."""
    with opened(source) as hdul:
        matrix_hdu = find_hdu(hdul, "RESPONSE", ("RSP_MATRIX",), MATRIX_NAMES, "response matrix")
        ebounds_hdu = find_hdu(hdul, "RESPONSE", ("EBOUNDS",), EBOUNDS_NAMES, "EBOUNDS")
        e_channel = np.asarray(column(ebounds_hdu, "CHANNEL"), np.int64)
        e_min = np.asarray(column(ebounds_hdu, "E_MIN"), float)
        e_max = np.asarray(column(ebounds_hdu, "E_MAX"), float)
        header = matrix_hdu.header
        detchans = int(header.get("DETCHANS", e_channel.size))
        if detchans != e_channel.size:
            raise OgipFormatError(f"{matrix_hdu.name}: DETCHANS={detchans} but EBOUNDS has "
                                  f"{e_channel.size} channels")
        offset = column_limit(matrix_hdu, "F_CHAN")
        if offset is None:
            offset = int(e_channel.min()) if e_channel.size else 1
        energ_lo = np.asarray(column(matrix_hdu, "ENERG_LO"), float)
        energ_hi = np.asarray(column(matrix_hdu, "ENERG_HI"), float)
        n_grp = np.asarray(column(matrix_hdu, "N_GRP"), np.int64)
        f_chan = column(matrix_hdu, "F_CHAN")
        n_chan = column(matrix_hdu, "N_CHAN")
        values = column(matrix_hdu, "MATRIX")
        dense = np.zeros((energ_lo.size, detchans))
        for row in range(energ_lo.size):
            groups = int(n_grp[row])
            if groups == 0:
                continue
            firsts = _cell_array(f_chan[row])[:groups] - offset
            counts = _cell_array(n_chan[row])[:groups]
            elements = _cell_array(values[row])
            position = 0
            for first, count in zip(firsts, counts):
                first, count = int(first), int(count)
                if first < 0 or first + count > detchans:
                    raise OgipFormatError(f"{matrix_hdu.name} row {row}: channels {first + offset}"
                                          f"-{first + offset + count - 1} outside the "
                                          f"{detchans} channels from {offset}")
                dense[row, first:first + count] = elements[position:position + count]
                position += count
        order = np.argsort(e_channel)
        return Rmf(energ_lo=energ_lo, energ_hi=energ_hi, matrix=dense, e_min=e_min[order],
                   e_max=e_max[order], first_channel=offset,
                   lo_thres=float(header.get("LO_THRES", 0.0) or 0.0),
                   chantype=str(header.get("CHANTYPE",
                                           ebounds_hdu.header.get("CHANTYPE", "PI"))).strip(),
                   hduclas3=("FULL" if matrix_hdu.name.upper() == "SPECRESP MATRIX"
                             else str(header.get("HDUCLAS3", "REDIST")).strip().upper()),
                   obs=ObsKeywords.from_header(header),
                   keywords=other_keywords(header, _RMF_INTERPRETED))


def read_arf(source: Any) -> Arf:
    """The effective area of `source`, by HDUCLAS RESPONSE/SPECRESP or by name (SPECRESP,
    ISGR-ARF.-RSP, ...)."""
    with opened(source) as hdul:
        hdu = find_hdu(hdul, "RESPONSE", ("SPECRESP",), ARF_NAMES, "ARF")
        return Arf(energ_lo=np.asarray(column(hdu, "ENERG_LO"), float),
                   energ_hi=np.asarray(column(hdu, "ENERG_HI"), float),
                   specresp=np.asarray(column(hdu, "SPECRESP"), float),
                   obs=ObsKeywords.from_header(hdu.header),
                   keywords=other_keywords(hdu.header, frozenset({"CREATOR"})))


def has_extension(source: Any, kind: str) -> bool:
    """Whether `source` holds an RMF ('rmf'), an ARF ('arf') or a spectrum ('spectrum')."""
    from .spectra import SPECTRUM_NAMES
    lookups = {"rmf": ("RESPONSE", ("RSP_MATRIX",), MATRIX_NAMES),
               "arf": ("RESPONSE", ("SPECRESP",), ARF_NAMES),
               "spectrum": ("SPECTRUM", None, SPECTRUM_NAMES)}
    hduclas1, hduclas2, names = lookups[kind]
    with opened(source) as hdul:
        try:
            find_hdu(hdul, hduclas1, hduclas2, names)
        except OgipFormatError:
            return False
        return True


def combine_responses(rmfs: Sequence[Rmf], arfs: Sequence[Arf | None] | None,
                      weights: Sequence[float]) -> tuple[Rmf, Arf | None]:
    """One response for spectra summed over exposures, weighted by `weights` (exposures).

    With ARFs: ARF = sum w_i A_i and RMF = sum w_i A_i R_i / ARF (row by row), so that
    ARF x RMF is exactly the weighted mean of the exposures' A_i R_i. Without: the weighted
    mean of the matrices. All must share the energy grid and channels.
    """
    rmfs = list(rmfs)
    if not rmfs:
        raise ValueError("no responses to combine")
    w = np.asarray(weights, float)
    if w.shape != (len(rmfs),) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be one non-negative number per response, not all zero")
    w = w / w.sum()
    first = rmfs[0]
    for index, rmf in enumerate(rmfs[1:], start=1):
        if rmf.matrix.shape != first.matrix.shape or not np.allclose(rmf.energ_lo, first.energ_lo) \
                or rmf.first_channel != first.first_channel:
            raise ValueError(f"response {index} has another energy grid or channels "
                             "than response 0")
    arfs = list(arfs) if arfs is not None else [None] * len(rmfs)
    if len(arfs) != len(rmfs):
        raise ValueError("give one ARF per RMF (or none)")
    if all(a is None for a in arfs):
        matrix = sum(wi * r.matrix for wi, r in zip(w, rmfs))
        return _replace_matrix(first, matrix), None
    if any(a is None for a in arfs):
        raise ValueError("give an ARF for every response or for none")
    for index, arf in enumerate(arfs):
        if (arf.energ_lo.shape != first.energ_lo.shape
                or not np.allclose(arf.energ_lo, first.energ_lo)):
            raise ValueError(f"ARF {index} has another energy grid than the response matrices")
    area = sum(wi * a.specresp for wi, a in zip(w, arfs))
    weighted = sum(wi * a.specresp[:, None] * r.matrix for wi, a, r in zip(w, arfs, rmfs))
    plain = sum(wi * r.matrix for wi, r in zip(w, rmfs))
    safe = np.where(area > 0, area, 1.0)
    matrix = np.where(area[:, None] > 0, weighted / safe[:, None], plain)
    combined_arf = Arf(arfs[0].energ_lo, arfs[0].energ_hi, area, obs=arfs[0].obs,
                       keywords=dict(arfs[0].keywords))
    return _replace_matrix(first, matrix), combined_arf


def _replace_matrix(rmf: Rmf, matrix: np.ndarray) -> Rmf:
    return Rmf(energ_lo=rmf.energ_lo, energ_hi=rmf.energ_hi, matrix=matrix, e_min=rmf.e_min,
               e_max=rmf.e_max, first_channel=rmf.first_channel, lo_thres=rmf.lo_thres,
               chantype=rmf.chantype, hduclas3=rmf.hduclas3, obs=rmf.obs,
               keywords=dict(rmf.keywords))
