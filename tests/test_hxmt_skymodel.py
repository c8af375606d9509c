"""Sky-model files: schema errors name the field; spectra and variability behave."""
import copy
import json

import numpy as np
import pytest

from dataserver import spectral_models
from dataserver.names import NameResolver
from plugins.hxmt.demo import demo_document
from plugins.hxmt.skymodel import (Burst, Bursts, Component, Outburst, Periodic, Pulse,
                                   SkyModelError, Spectrum, build_spec, load_simulation)
from tests.hxmt_support import TODAY

BASE = {
    "sources": [{"name": "Crab", "ra": 83.63308, "dec": 22.0145,
                 "spectrum": {"model": "powerlaw", "norm": 9.7, "index": 2.1, "nh": 0.36}}],
    "proposals": [{"id": "P0101299", "type": "CAL", "observations": [
        {"target": "Crab", "exposures": [{"start": "2017-08-27T02:00:00", "duration": 100}]}]}],
}


def errors_of(document, resolver=None):
    with pytest.raises(SkyModelError) as info:
        build_spec(document, "test", resolver)
    return info.value.errors


def changed(path, value):
    document = copy.deepcopy(BASE)
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


@pytest.mark.parametrize("path, value, field, reason", [
    (["sources", 0, "spectrum", "index"], "soft", "sources[0].spectrum.index", "is not of type 'number'"),
    (["sources", 0, "spectrum", "norm"], KeyError, "sources[0].spectrum.norm", "required field is missing"),
    (["sources", 0, "spectrum", "kT"], 1.0, "sources[0].spectrum.kT", "not allowed"),
    (["sources", 0, "spectrum", "model"], "bremss", "sources[0].spectrum.model", "is not one of"),
    (["sources", 0, "dec"], 95, "sources[0].dec", "maximum of 90"),
    (["sources", 0, "colour"], "red", "sources[0]", "unknown field(s) colour"),
    (["sources", 0, "variability"], {"type": "periodic", "pulsed_fraction": 0.2}, "sources[0].variability",
     "give exactly one of period or frequency"),
    (["sources", 0, "variability"], {"type": "outburst", "rise": 10, "decay": 10}, "sources[0].variability.peak_time",
     "required field is missing"),
    (["proposals", 0, "id"], "X123", "proposals[0].id", "does not match"),
    (["proposals", 0, "type"], "Secret", "proposals[0].type", "is not one of"),
    (["proposals", 0, "observations", 0, "exposures", 0, "duration"], 1, "proposals[0].observations[0].exposures[0].duration",
     "minimum of 10"),
    (["proposals", 0, "observations", 0, "id"], "P0201012001", "proposals[0].observations[0].id",
     "does not belong to proposal P0101299"),
    (["proposals", 0, "observations", 0, "exposures", 0, "start"], "last tuesday",
     "proposals[0].observations[0].exposures[0].start", "not an ISO-8601"),
    (["proposals", 0, "observations", 0, "public_date"], "soon", "proposals[0].observations[0].public_date",
     "not an ISO date"),
])
def test_schema_and_semantic_errors_name_the_field(path, value, field, reason):
    errors = errors_of(changed(path, value))
    assert any(f == field and reason in r for f, r in errors), errors


def test_unknown_target_without_position_is_reported_with_suggestions():
    document = changed(["proposals", 0, "observations", 0, "target"], "Crabb Nebula")
    errors = errors_of(document, NameResolver())
    assert errors[0][0] == "proposals[0].observations[0].target"
    assert "not found" in errors[0][1] and "Crab" in errors[0][1] and "give ra and dec" in errors[0][1]
    # A name the resolver knows gives the position without a source entry.
    resolved = build_spec(changed(["proposals", 0, "observations", 0, "target"], "Cyg X-1"), "", NameResolver())
    observation = resolved.proposals[0].observations[0]
    assert (observation.ra, observation.dec) == (299.59032, 35.20161)


def test_all_errors_come_at_once_and_in_the_message():
    document = changed(["sources", 0, "ra"], -1)
    document["proposals"][0]["type"] = "Nope"
    error = pytest.raises(SkyModelError, build_spec, document, "sky.yaml").value
    assert len(error.errors) == 2 and "sky.yaml: invalid sky model" in str(error)
    assert "sources[0].ra" in str(error) and "proposals[0].type" in str(error)


def test_yaml_and_json_files_give_the_same_spec(tmp_path):
    yaml_text = """
sources:
  - name: Crab
    ra: 83.63308
    dec: 22.0145
    spectrum: {model: powerlaw, norm: 9.7, index: 2.1, nh: 0.36}
proposals:
  - id: P0101299
    type: CAL
    observations:
      - target: Crab
        public_date: 2018-08-27
        exposures: [{start: 2017-08-27T02:00:00, duration: 100}]
"""
    (tmp_path / "sky.yaml").write_text(yaml_text)
    document = copy.deepcopy(BASE)
    document["proposals"][0]["observations"][0]["public_date"] = "2018-08-27"
    (tmp_path / "sky.json").write_text(json.dumps(document))
    from_yaml, from_json = load_simulation(tmp_path / "sky.yaml"), load_simulation(tmp_path / "sky.json")
    assert from_yaml == from_json
    observation = from_yaml.proposals[0].observations[0]
    assert observation.obs_id == "P0101299001" and observation.exposures[0].exp_id == "P010129900101"
    assert observation.public_date == "2018-08-27T00:00:00+00:00"
    with pytest.raises(SkyModelError, match="cannot read"):
        load_simulation(tmp_path / "missing.yaml")


def test_spectra_follow_xspec_conventions():
    powerlaw = Spectrum((Component("powerlaw", 9.7, 2.1),))
    assert powerlaw.density(1.0) == pytest.approx(9.7)
    analytic = 9.7 * (2.0 ** -0.1 - 10.0 ** -0.1) / 0.1 * spectral_models.KEV_TO_ERG
    assert powerlaw.energy_flux(2.0, 10.0) == pytest.approx(analytic, rel=1e-8)
    bins = powerlaw.integrate(np.linspace(2.0, 10.0, 81))      # the response grid's bin rule
    assert bins.sum() == pytest.approx(9.7 * (2 ** -1.1 - 10 ** -1.1) / 1.1, rel=1e-6)
    cut = Spectrum((Component("cutoffpl", 1.0, 1.0, ecut=10.0),))
    assert cut.density(10.0) == pytest.approx(0.1 * np.exp(-1.0))
    blackbody = Spectrum((Component("bbodyrad", 100.0, kT=1.0),))
    assert blackbody.density(2.0) == pytest.approx(100.0 * 1.0344e-3 * 4.0 / np.expm1(2.0))
    absorbed = Spectrum((Component("powerlaw", 9.7, 2.1),), 0.36)
    assert absorbed.density(1.0) < powerlaw.density(1.0) and absorbed.density(50.0) == pytest.approx(powerlaw.density(50.0), rel=1e-4)
    summed = Spectrum((Component("powerlaw", 1.0, 2.0), Component("powerlaw", 2.0, 2.0)))
    assert summed.density(3.0) == pytest.approx(3.0 / 9.0)


def test_spectra_are_the_fit_models_under_the_sky_model_names():
    """The simulator's spectra are `dataserver.spectral_models`' (the fits' formulas), with the
    sky-model parameter names mapped to XSPEC's: what is injected is what a fit measures."""
    aql = Spectrum((Component("bbodyrad", 400.0, kT=1.5), Component("cutoffpl", 1.0, 1.8, ecut=40.0)), 0.4)
    assert aql.components[1].xspec_params(0.4) == {"norm": 1.0, "PhoIndex": 1.8, "HighECut": 40.0, "nH": 0.4}
    assert aql.components[0].xspec_params() == {"kT": 1.5, "norm": 400.0}
    assert aql.to_dict()["components"][1] == {"model": "cutoffpl", "norm": 1.0, "index": 1.8, "ecut": 40.0}
    bb, cut = {"kT": 1.5, "norm": 400.0, "nH": 0.4}, {"norm": 1.0, "PhoIndex": 1.8, "HighECut": 40.0, "nH": 0.4}
    edges = np.linspace(0.1, 15.0, 1491)
    expected = (spectral_models.photon_flux("bbodyrad", bb, edges[:-1], edges[1:])
                + spectral_models.photon_flux("cutoffpl", cut, edges[:-1], edges[1:]))
    assert np.array_equal(aql.integrate(edges), expected)
    energy = np.geomspace(0.05, 300.0, 50)
    assert np.array_equal(aql.density(energy), spectral_models.photon_spectrum("bbodyrad", bb, energy)
                          + spectral_models.photon_spectrum("cutoffpl", cut, energy))
    assert aql.energy_flux(2.0, 10.0) == (spectral_models.energy_flux("bbodyrad", bb, 2.0, 10.0)
                                          + spectral_models.energy_flux("cutoffpl", cut, 2.0, 10.0))
    # Absorption is XSPEC's wabs, continued above 10 keV as sigma(10 keV) (10/E)^3.
    crab = Spectrum((Component("powerlaw", 9.7, 2.1),), 1.0)
    transmission = crab.density(20.0) / Spectrum((Component("powerlaw", 9.7, 2.1),)).density(20.0)
    assert transmission == pytest.approx(np.exp(-1e22 * 953.2e-24 / 20.0 ** 3), rel=1e-12)
    with pytest.raises(ValueError, match="unknown spectral model"):
        Component("blackbody", 1.0, kT=1.0).xspec_params()


def test_variability_shapes_and_bounds():
    t = np.linspace(0.0, 1000.0, 200_001)
    pulsar = Periodic(0.0337, 0.0, 0.15, [Pulse(0.0, 0.03, 1.0), Pulse(0.4, 0.05, 0.6)])
    factor = pulsar.factor(t)
    assert factor.mean() == pytest.approx(1.0, abs=2e-3)
    assert factor.max() <= pulsar.bound(0.0, 1.0) + 1e-12
    assert factor.min() >= 0.85 - 1e-9
    phase = pulsar.phase(np.array([0.0, 0.0337 * 0.4, 0.0337 * 10.5]))
    assert phase == pytest.approx([0.0, 0.4, 0.5])
    sine = Periodic(4.8, 0.0, 0.4)
    assert sine.factor(np.array([0.0, 2.4])) == pytest.approx([1.4, 0.6])
    outburst = Outburst(1000.0, 100.0, 300.0, quiescent=0.01)
    assert outburst.factor(np.array([1000.0]))[0] == pytest.approx(1.0)
    assert outburst.factor(np.array([1300.0]))[0] == pytest.approx(0.01 + 0.99 * np.exp(-1))
    lo, hi = np.array([0.0, 900.0, 1100.0]), np.array([100.0, 1050.0, 1200.0])
    assert np.all(outburst.bound(lo, hi) >= outburst.factor(hi) - 1e-12)
    assert outburst.bound(lo, hi)[1] == pytest.approx(1.0)
    bursts = Bursts([Burst(50.0, 9.0, 1.0, 10.0)])
    assert bursts.factor(np.array([0.0, 50.0]))[1] == pytest.approx(10.0)
    assert bursts.factor(np.array([0.0]))[0] == pytest.approx(1.0, abs=1e-6)
    assert bursts.bound(np.array([49.0]), np.array([51.0]))[0] == pytest.approx(10.0)


def test_the_demo_document_is_valid_and_keeps_proprietary_data_in_the_future():
    document = demo_document(TODAY)
    spec = build_spec(document, "demo", NameResolver())
    types = {p.proposal_id: p.type for p in spec.proposals}
    assert set(types.values()) >= {"CAL", "GO", "ToO", "Core"}
    names = {s.name for s in spec.sources}
    assert {"Crab", "Cyg X-1", "Aql X-1", "Cen X-3"} <= names
    crab = next(s for s in spec.sources if s.name == "Crab")
    assert crab.spectrum.components[0].norm == 9.7 and crab.spectrum.components[0].index == 2.1
    assert crab.variability.period == pytest.approx(0.0337)
    proprietary = {o.obs_id: (p.pi, o.public_date) for p in spec.proposals for o in p.observations
                   if o.public_date and o.public_date > TODAY.isoformat()}
    assert {pi for pi, _ in proprietary.values()} == {"wang.fang", "chen.li"}
    # Every observation of those PIs, not only the ones found by that filter.
    assert all(o.public_date > TODAY.isoformat() for p in spec.proposals
               if p.pi in ("wang.fang", "chen.li") for o in p.observations)
    exposures = [e for p in spec.proposals for o in p.observations for e in o.exposures]
    assert len(exposures) >= 10 and all(800 <= e.duration <= 3000 for e in exposures)
    blank = next(o for p in spec.proposals for o in p.observations if o.target == "Blank field 1")
    resolver = NameResolver()
    from plugins.hxmt.catalog import angular_distance
    assert min(angular_distance(blank.ra, blank.dec, e.ra, e.dec) for e in resolver.entries) > 10.0
