"""Planning the HXMT payload products: query parameters -> exposures -> step graph -> outputs.

Products (all per selected exposure, and combined over them):

- `gti` (stage 1): the good-time intervals of each exposure (GTI0 + GTIDesc, with the time
  each criterion removed in its metadata) and its raw light curve, to draw them over;
- `spectrum` (stage 2): source spectrum, background, RMF, ARF per exposure and combined;
- `lightcurve` (stage 2): source, background and net light curves, per exposure and joined;
- `spectral_fit`: the combined spectrum fitted through its responses (`fitting.fit_spectrum`).

Stage 2 takes the user's screening expression and/or intervals; the graph shares pical,
gtigen, ... with stage 1, so editing the GTI recomputes only what depends on it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from dataserver import Plan, PlanOutput, QueryError, Unit
from dataserver.fitting import fit_step, resolve_backend

from . import common_steps, gti as gtimod, gtiexpr
from .archive import Archive, ArchiveError
from .instrument import format_id_list
from .parameters import LIGHTCURVE_GROUP, MAX_EXPOSURES
from .pipeline import Chain, ExposureRef
from .tasks_products import MAX_LIGHTCURVE_BINS
from .timeconv import iso_to_met

log = logging.getLogger(__name__)


class Planner:
    """Plans the products of one payload (`Chain`) against the archive and its index."""

    def __init__(self, chain: Chain, archive_root: Path, index_provider):
        self.chain = chain
        self.spec = chain.spec
        self.name = chain.payload
        self.archive_root = Path(archive_root)
        self._index = index_provider

    # ---- parameters the schema cannot check ------------------------------------------------
    def expression(self, params: Mapping[str, Any]) -> str:
        try:
            return str(gtimod.parse_expression(self.name, params["gti_expression"]))
        except gtiexpr.ExpressionError as exc:
            raise QueryError("gti_expression", str(exc)) from None

    def detectors(self, params: Mapping[str, Any]) -> str:
        try:
            return format_id_list(self.spec.parse_detectors(params["detectors"]))
        except ValueError as exc:
            raise QueryError("detectors", str(exc)) from None

    def intervals(self, params: Mapping[str, Any]) -> list[list[float]]:
        try:
            return gtimod.normalise(params.get("gti_intervals") or [])
        except ValueError as exc:
            raise QueryError("gti_intervals", str(exc)) from None

    def energy_band(self, params: Mapping[str, Any], low: str = "E1_keV", high: str = "E2_keV") -> tuple[float, float]:
        first, last = float(self.spec.pi.e_min), float(self.spec.pi.e_min + self.spec.pi.span)
        e1, e2 = float(params[low]), float(params[high])
        for name, value in ((low, e1), (high, e2)):
            if not first <= value <= last:
                raise QueryError(name, f"{value:g} keV is outside the {self.name} range {first:g}-{last:g} keV")
        if e2 <= e1:
            raise QueryError(high, f"must be greater than {low} (got {e1:g}-{e2:g} keV)")
        return e1, e2

    def pi_range(self, params: Mapping[str, Any]) -> tuple[int, int]:
        """PI_min/PI_max when given, else the PI range of E1_keV-E2_keV (HXMTDAS rounding)."""
        given = [params.get("PI_min"), params.get("PI_max")]
        if any(v is not None for v in given):
            if None in given:
                raise QueryError("PI_max" if given[1] is None else "PI_min", "give PI_min and PI_max together")
            if given[1] < given[0]:
                raise QueryError("PI_max", f"must be at least PI_min (got {given[0]}-{given[1]})")
            return int(given[0]), int(given[1])
        e1, e2 = self.energy_band(params)
        low, high = self.spec.pi.band_to_pi(e1, e2)
        return max(int(low), 0), min(int(high), self.spec.pi.nchan - 1)

    def time_bin(self, params: Mapping[str, Any], refs: Sequence[ExposureRef]) -> float:
        value = float(params["time_bin"])
        if value < self.spec.time_resolution:
            raise QueryError("time_bin", f"{value:g} s is below the {self.name} time resolution "
                                         f"({self.spec.time_resolution:g} s)")
        longest = max(ref.tstop - ref.tstart for ref in refs)
        if longest / value > MAX_LIGHTCURVE_BINS:
            raise QueryError("time_bin", f"{value:g} s bins would make {int(longest / value)} bins in an exposure "
                                         f"of {longest:.0f} s; at most {MAX_LIGHTCURVE_BINS}")
        return value

    # ---- exposures ---------------------------------------------------------------------------
    def exposures(self, params: Mapping[str, Any]) -> list[ExposureRef]:
        index = self._index()
        wanted = list(dict.fromkeys(params.get("exposures") or []))
        if wanted:
            rows = index.find_exposures(exp_ids=wanted)
            found = {row["exp_id"] for row in rows}
            missing = [e for e in wanted if e not in found]
            if missing:
                raise QueryError("exposures", f"no exposure {', '.join(missing)} in the archive")
            for row in rows:
                if self.name not in row["payloads"]:
                    raise QueryError("exposures", f"exposure {row['exp_id']} has no {self.name} data "
                                                  f"(it has {', '.join(row['payloads']) or 'no events'})")
        else:
            start, end = iso_to_met(params["T1"]), iso_to_met(params["T2"])
            cone = dict(ra=params["RA"], dec=params["DEC"], radius=params["radius"])
            rows = [r for r in index.find_exposures(start=start, end=end, **cone) if self.name in r["payloads"]]
            if not rows:
                elsewhere = [r for r in index.find_exposures(**cone) if self.name in r["payloads"]]
                if elsewhere:
                    raise QueryError("T1", f"no {self.name} exposure pointed within {params['radius']:g} deg of "
                                           f"RA={params['RA']:g}, DEC={params['DEC']:g} overlaps {params['T1']} - "
                                           f"{params['T2']}; there are {len(elsewhere)} at other times (first: "
                                           f"{elsewhere[0]['exp_id']})")
                raise QueryError("RA", f"no {self.name} exposure is pointed within {params['radius']:g} deg of "
                                       f"RA={params['RA']:g}, DEC={params['DEC']:g}")
            if len(rows) > MAX_EXPOSURES:
                raise QueryError("T1", f"{len(rows)} exposures match; narrow the time range (at most "
                                       f"{MAX_EXPOSURES})")
        return [self._reference(row) for row in rows]

    def _reference(self, row: Mapping[str, Any]) -> ExposureRef:
        root = self.archive_root.resolve()
        path = Path(row["dir"]).resolve()
        try:
            relative = path.relative_to(root)
        except ValueError:
            raise QueryError("exposures", f"exposure {row['exp_id']} is indexed at {path.name}, outside the "
                                          "archive; the observation index belongs to another archive") from None
        if not path.is_dir():
            raise QueryError("exposures", f"exposure {row['exp_id']} is no longer in the archive")
        try:
            exposure = Archive.load_exposure(path)
        except ArchiveError as exc:
            raise QueryError("exposures", f"exposure {row['exp_id']}: {exc.reason}") from None
        if self.name not in exposure.payloads:
            raise QueryError("exposures", f"exposure {row['exp_id']} has no {self.name} data")
        return ExposureRef(row["exp_id"], str(relative), exposure.fingerprint(), float(row["tstart"]),
                           float(row["tstop"]), row.get("target") or "", row.get("owner"), row.get("public_date"))

    def _in_intervals(self, refs: list[ExposureRef], intervals: list[list[float]]) -> list[ExposureRef]:
        if not intervals:
            return refs
        kept = [r for r in refs if gtimod.intersect([[r.tstart, r.tstop]], intervals)]
        if not kept:
            raise QueryError("gti_intervals", "the intervals overlap none of the selected exposures ("
                             + ", ".join(f"{r.exp_id}: {r.tstart:.1f}-{r.tstop:.1f}" for r in refs) + " MET s)")
        return kept

    def units(self, refs: Sequence[ExposureRef]) -> tuple[Unit, ...]:
        roles = tuple(self._index().grant_roles)
        return tuple(Unit(r.exp_id, label=f"{r.exp_id} {r.target}".strip(), owner=r.owner,
                          public_date=r.public_date, grant_roles=roles) for r in refs)

    def _summary(self, refs, expression: str, **more) -> dict[str, Any]:
        return {"payload": self.name, "gti_expression": expression,
                "exposures": [{"exp_id": r.exp_id, "target": r.target, "tstart": r.tstart, "tstop": r.tstop}
                              for r in refs], **more}

    def _common(self, params):
        expression = self.expression(params)
        detectors = self.detectors(params)
        intervals = self.intervals(params)
        refs = self._in_intervals(self.exposures(params), intervals)
        return expression, detectors, intervals, refs

    # ---- plans -------------------------------------------------------------------------------
    def plan_gti(self, params: Mapping[str, Any]) -> Plan:
        expression, detectors, intervals, refs = self._common(params)
        pi_range = self.pi_range(params)
        bin_width = self.time_bin(params, refs)
        outputs = []
        for ref in refs:
            stage = self.chain.stage_one(ref, expression, intervals)
            raw = self.chain.lightcurve(ref, stage, self.chain.screen(ref, None), detectors, pi_range, bin_width,
                                        role="raw")
            outputs += [PlanOutput(f"{ref.exp_id}_{self.name}_gti.fits", stage.gti, "gti",
                                   f"Good-time intervals of {ref.exp_id} ({self.name})"),
                        PlanOutput(f"{ref.exp_id}_{self.name}_raw.lc", raw, "lightcurve",
                                   f"Raw light curve of {ref.exp_id} ({self.name}, before screening)")]
        return Plan(tuple(outputs), self.units(refs), self._summary(refs, expression, detectors=detectors))

    def _spectra(self, params, refs, expression, detectors, intervals):
        rmf = self.chain.rmf()
        per_exposure = []
        for ref in refs:
            stage = self.chain.stage_one(ref, expression, intervals)
            screened = self.chain.screen(ref, stage.gti)
            prefix = f"{ref.exp_id}_{self.name}"
            files = {"backfile": f"{prefix}_bkg.pha", "respfile": f"{prefix}.rmf", "ancrfile": f"{prefix}.arf"}
            spectrum = self.chain.spectrum(ref, stage, screened, detectors, files)
            per_exposure.append((ref, spectrum, self.chain.background_spectrum(ref, spectrum, screened),
                                 self.chain.arf(ref, stage, screened, detectors, params["RA"], params["DEC"])))
        names = {"backfile": f"{self.name}_bkg_combined.pha", "respfile": f"{self.name}_combined.rmf",
                 "ancrfile": f"{self.name}_combined.arf"}
        spectra = [s for _, s, _, _ in per_exposure]
        backgrounds = [b for _, _, b, _ in per_exposure]
        combined = {
            "spectrum": common_steps.sum_spectra.node(spectra=spectra, backgrounds=backgrounds, **names),
            "background": common_steps.sum_backgrounds.node(spectra=spectra, backgrounds=backgrounds),
            "arf": common_steps.combine_arfs.node(arfs=[a for _, _, _, a in per_exposure], spectra=spectra),
            "rmf": rmf}
        return per_exposure, combined, names

    def _combined_outputs(self, combined, names) -> list[PlanOutput]:
        return [PlanOutput(f"{self.name}_spec_combined.pha", combined["spectrum"], "spectrum",
                           f"{self.name} spectrum summed over the exposures"),
                PlanOutput(names["backfile"], combined["background"], "background",
                           f"{self.name} background of the summed spectrum"),
                PlanOutput(names["respfile"], combined["rmf"], "rmf", f"{self.name} redistribution matrix"),
                PlanOutput(names["ancrfile"], combined["arf"], "arf",
                           f"{self.name} effective area, exposure-weighted over the exposures")]

    def plan_spectrum(self, params: Mapping[str, Any]) -> Plan:
        expression, detectors, intervals, refs = self._common(params)
        per_exposure, combined, names = self._spectra(params, refs, expression, detectors, intervals)
        outputs = self._combined_outputs(combined, names)
        for ref, spectrum, background, arf in per_exposure:
            prefix = f"{ref.exp_id}_{self.name}"
            outputs += [PlanOutput(f"{prefix}_spec.pha", spectrum, "spectrum", f"{self.name} spectrum of {ref.exp_id}"),
                        PlanOutput(f"{prefix}_bkg.pha", background, "background",
                                   f"{self.name} background spectrum of {ref.exp_id}"),
                        PlanOutput(f"{prefix}.rmf", combined["rmf"], "rmf", f"{self.name} redistribution matrix"),
                        PlanOutput(f"{prefix}.arf", arf, "arf", f"{self.name} effective area for {ref.exp_id}")]
        return Plan(tuple(outputs), self.units(refs), self._summary(refs, expression, detectors=detectors))

    def plan_lightcurve(self, params: Mapping[str, Any]) -> Plan:
        expression, detectors, intervals, refs = self._common(params)
        pi_range = self.pi_range(params)
        bin_width = self.time_bin(params, refs)
        group = LIGHTCURVE_GROUP[self.name]
        curves: dict[str, list] = {"source": [], "background": [], "net": []}
        outputs = []
        for ref in refs:
            stage = self.chain.stage_one(ref, expression, intervals)
            screened = self.chain.screen(ref, stage.gti)
            source = self.chain.lightcurve(ref, stage, screened, detectors, pi_range, bin_width)
            background = self.chain.background_lightcurve(ref, stage, source, screened, detectors, pi_range)
            net = common_steps.net_lightcurve.node(unit=ref.exp_id, source=source, background=background)
            prefix = f"{ref.exp_id}_{self.name}_g0_{group}"
            for role, node, suffix in (("source", source, ""), ("background", background, "_bkg"),
                                       ("net", net, "_net")):
                curves[role].append(node)
                outputs.append(PlanOutput(f"{prefix}{suffix}.lc", node, "lightcurve",
                                          f"{self.name} {role} light curve of {ref.exp_id}"))
        combined = [PlanOutput(f"{self.name}_g0_{group}{suffix}_combined.lc",
                               common_steps.concat_lightcurves.node(curves=curves[role], role=role), "lightcurve",
                               f"{self.name} {role} light curve of all exposures")
                    for role, suffix in (("source", ""), ("background", "_bkg"), ("net", "_net"))]
        energy = self.spec.pi
        return Plan(tuple(combined + outputs), self.units(refs), self._summary(
            refs, expression, detectors=detectors, pi_min=pi_range[0], pi_max=pi_range[1],
            emin_keV=float(energy.energy_lo(pi_range[0])), emax_keV=float(energy.energy_hi(pi_range[1])),
            time_bin_s=bin_width))

    def plan_fit(self, params: Mapping[str, Any]) -> Plan:
        expression, detectors, intervals, refs = self._common(params)
        emin, emax = self.energy_band(params)
        flux_band = self.energy_band({"flux_E1_keV": params.get("flux_E1_keV", emin),
                                      "flux_E2_keV": params.get("flux_E2_keV", emax)},
                                     "flux_E1_keV", "flux_E2_keV")
        _, combined, names = self._spectra(params, refs, expression, detectors, intervals)
        fit = fit_step.node(spectrum=combined["spectrum"], response=[combined["rmf"], combined["arf"]],
                            background=[combined["background"]], model=params["model"],
                            absorbed=bool(params["absorbed"]), stat=params["statistic"], emin=emin, emax=emax,
                            flux_emin=flux_band[0], flux_emax=flux_band[1], group_min_counts=None,
                            plot_min_snr=5.0, backend=resolve_backend("auto"))
        outputs = [PlanOutput(f"{self.name}_fit.fits", fit, "fit",
                              f"{params['model']} fit of the {self.name} spectrum, {emin:g}-{emax:g} keV")]
        outputs += self._combined_outputs(combined, names)
        return Plan(tuple(outputs), self.units(refs), self._summary(
            refs, expression, detectors=detectors, model=params["model"], fit_band_keV=[emin, emax],
            flux_band_keV=list(flux_band)))
