"""The fit as an engine step: products in, a FITS fit product and JSON metadata out, cached;
and bad input rejected with the parameter named, leaving nothing in the cache."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dataserver import Engine, StepParameterError
from dataserver.fitting import fit_step
from tests import fitting_simulation as sim


@pytest.fixture
def fit_engine(settings):
    engine = Engine.from_settings(settings, preload=["tests.fitting_simulation",
                                                     "dataserver.fitting.step"])
    yield engine
    engine.close()


def _crab_fit(spectrum_payload="he", response_payload="he", **params):
    spectrum = sim.make_spectrum.node(payload=spectrum_payload, index=2.1, norm=9.7,
                                      exposure=300.0, seed=3)
    response = sim.make_response.node(payload=response_payload)
    arguments = dict(model="powerlaw", emin=27.0, emax=250.0, flux_emin=20, flux_emax=100)
    arguments.update(params)
    return fit_step.node(spectrum=spectrum, response=[response], background=[], **arguments)


def test_fit_step_through_the_engine_then_from_the_cache(fit_engine):
    fit = _crab_fit()
    first = fit_engine.run([fit])
    assert first.ok, first.failures
    product = first.products[fit.key]
    meta = product.meta
    json.dumps(meta, allow_nan=False)
    assert meta["model"] == "powerlaw" and meta["statistic"] == "cstat" and meta["backend"] == "sherpa"
    index = {p["name"]: p for p in meta["parameters"]}["PhoIndex"]
    assert abs(index["value"] - 2.1) < 0.05 and index["error_lower"] < 0 < index["error_upper"]
    assert meta["flux"]["emin"] == 20 and meta["flux"]["value"] == pytest.approx(1.71e-8, rel=0.05)
    assert meta["dof"] == meta["bins"] - 2 and meta["goodness"]["method"] == "kaastra2017"
    assert len(meta["plot"]["e_min"]) == len(meta["plot"]["residual"]) > 10
    with product.open() as hdul:
        table = hdul["FIT"]
        assert list(table.data["PARAMETER"]) == ["PhoIndex", "norm"]
        assert table.data["VALUE"][0] == pytest.approx(index["value"])
        assert table.header["STATVAL"] == pytest.approx(meta["stat"])
        assert table.header["FLUX"] == pytest.approx(meta["flux"]["value"])
        assert table.header["TELESCOP"] == "HXMT"
        channels = hdul["CHANNELS"].data
        assert channels["E_MIN"].min() >= 26.0 and channels["E_MAX"].max() <= 251.5
        assert np.allclose(channels["MODEL"].sum(), channels["COUNTS"].sum(), rtol=0.01)
        plot = hdul["PLOT"].data
        assert np.allclose(plot["DATA"], meta["plot"]["data"])
        assert hdul["COVARIANCE"].data.shape == (2, 2)

    second = fit_engine.run([fit])
    assert second.ok and second.counts()["computed"] == 0
    assert second.products[fit.key].meta == meta


def test_bad_step_input_names_the_parameter_and_caches_nothing(fit_engine):
    with pytest.raises(StepParameterError, match="'model'"):
        _crab_fit(model="gauss")
    with pytest.raises(StepParameterError, match="'emin'"):
        _crab_fit(emin=-1.0)
    mismatched = _crab_fit(spectrum_payload="le")          # 1536 channels, HE response: 256
    result = fit_engine.run([mismatched])
    assert not result.ok
    message = result.failures[0]["message"]
    assert "parameter 'response'" in message and "1536 channels" in message
    assert not fit_engine.store.contains(mismatched.key)
    outside = _crab_fit(emin=500.0, emax=900.0)            # HE channels stop at 385 keV
    result = fit_engine.run([outside])
    assert "parameter 'emin'" in result.failures[0]["message"]
    assert not fit_engine.store.contains(outside.key)
