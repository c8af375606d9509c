"""Response files from the one response model (`response.PayloadResponse`), as the *rspgen
tasks make them, split in two:

- the redistribution matrix (RMF): the same for every detector and exposure of a payload in
  xoda's model, so it is one cached product per payload and response version;
- the effective area (ARF) of one exposure: A_geo x eff(E) x the collimator transmission of
  each selected detector at the source position, averaged over the good time with the
  attitude of every second (ATT_Pointing) and each detector's live time, so that
  ARF x EXPOSURE is exactly sum_d A(E) integral T_d(t) L_d(t) dt with EXPOSURE the mean live
  exposure of the detectors (what specgen writes).
"""
from __future__ import annotations

import numpy as np

from dataserver import ogip

from . import gti as gtimod
from .livetime import LiveTable
from .response import RESPONSE_VERSION, PayloadResponse, collimator_transmission, offset_in_payload_frame


def obs_keywords(payload: str, **values) -> ogip.ObsKeywords:
    return ogip.ObsKeywords.hxmt(payload, **values)


def rmf_for(payload: str) -> ogip.Rmf:
    response = PayloadResponse(payload)
    edges, pi_edges = response.edges, response.pi_edges
    return ogip.Rmf(edges[:-1], edges[1:], response.rmf(), pi_edges[:-1], pi_edges[1:], first_channel=0,
                    obs=obs_keywords(payload),
                    keywords={"RSPVERSN": RESPONSE_VERSION, "RESPMODL": "xoda HXMT response model"})


def attitude(exposure) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(Time, RA, Dec of the pointing per row, roll in deg) from the Att file. The roll is the
    position angle of the payload X axis: PA_PNT when the file has it, else from the Euler
    angle psi of ATT_Euler (roll = 180 deg - psi in the ZYZ convention of the Att file)."""
    with exposure.table("Att", "ATT_Pointing") as table:
        data = table.read(["Time", "Ra", "Dec"])
        roll = table.header.get("PA_PNT")
    if roll is None:
        with exposure.table("Att", "ATT_Euler") as table:
            psi = table.read(["Euler_Psi"])["Euler_Psi"]
        roll = float(180.0 - np.degrees(np.angle(np.mean(np.exp(1j * np.radians(psi))))))
    return data["Time"], data["Ra"], data["Dec"], float(roll)


def mean_transmission(payload: str, exposure, ra: float, dec: float, detectors, intervals,
                      live: LiveTable) -> tuple[np.ndarray, np.ndarray]:
    """(sum over detectors of the live-time weighted transmission integral (s), per-detector
    live exposure (s)) over the good time."""
    time, ra_pnt, dec_pnt, roll = attitude(exposure)
    detectors = list(detectors)
    covered = gtimod.coverage(intervals, time - 0.5, time + 0.5)
    keep = covered > 0
    if not keep.any():
        return np.zeros(len(detectors)), np.zeros(len(detectors))
    x, y = offset_in_payload_frame(ra, dec, ra_pnt[keep], dec_pnt[keep], roll)
    transmission = collimator_transmission(payload, detectors, x, y)           # (rows, dets)
    weight = covered[keep][:, None] * live.live[live.rows_of(time[keep])][:, detectors]
    return (transmission * weight).sum(axis=0), weight.sum(axis=0)


def arf_for(payload: str, exposure, ra: float, dec: float, detectors, intervals, live: LiveTable,
            obs: ogip.ObsKeywords) -> tuple[ogip.Arf, dict]:
    response = PayloadResponse(payload)
    integral, exposures = mean_transmission(payload, exposure, ra, dec, detectors, intervals, live)
    mean_exposure = float(exposures.mean()) if exposures.size else 0.0
    if mean_exposure <= 0:
        raise ValueError(f"exposure {exposure.exp_id}: no good time with attitude data; no response")
    effective = float(integral.sum() / mean_exposure)                          # sum_d <T_d>
    arf = ogip.Arf(response.edges[:-1], response.edges[1:], response.area * effective, obs=obs,
                   keywords={"RSPVERSN": RESPONSE_VERSION, "DETNAM": _detnam(detectors),
                             "SUMTRANS": effective})
    per_detector = integral / np.where(exposures > 0, exposures, 1.0)
    return arf, {"transmission_sum": effective, "detectors": len(list(detectors)),
                 "mean_transmission": float(per_detector.mean()) if per_detector.size else 0.0}


def _detnam(detectors) -> str:
    from .instrument import format_id_list
    return format_id_list(detectors)
