"""Bad input to a fit gets a clear error naming the parameter."""
from __future__ import annotations

import numpy as np
import pytest

from dataserver import ogip
from dataserver.fitting import FitInputError, fit_spectrum, load_inputs, resolve_backend
from tests import fitting_simulation as sim


@pytest.fixture(scope="module")
def he():
    rmf, arf = sim.response("he", energy_bins=200)
    mean = sim.expected_counts("powerlaw", {"PhoIndex": 2.1, "norm": 9.7}, rmf, arf, 100.0)
    return sim.counts_spectrum(mean, 100.0, np.random.default_rng(1)), rmf, arf


def _error(parameter, *args, **kwargs):
    with pytest.raises(FitInputError) as info:
        fit_spectrum(*args, **kwargs)
    assert info.value.parameter == parameter, str(info.value)
    return str(info.value)


def test_fit_band_without_channels(he):
    message = _error("emin", *he, emin=400.0, emax=600.0)
    assert "no good channel" in message and "400-600 keV" in message and "15-385 keV" in message
    assert "emin < emax" in _error("emin", *he, emin=100.0, emax=50.0)
    _error("emin", *he, emin=30.0, emax=30.5)              # fewer bins than free parameters


def test_unknown_model_statistic_and_backend(he):
    assert "powerlaw, cutoffpl, bbody, bbodyrad" in _error("model", *he, model="gauss")
    _error("stat", *he, stat="likelihood")
    _error("backend", *he, backend="minuit")
    with pytest.raises(FitInputError, match="pyxspec"):
        resolve_backend("xspec")
    assert resolve_backend("auto") == "sherpa"


def test_spectrum_and_response_that_do_not_belong_together(he):
    spectrum, rmf, arf = he
    le_rmf, le_arf = sim.response("le", energy_bins=200)
    assert "1536 channels" in _error("response", spectrum, le_rmf, le_arf)
    shifted = ogip.Spectrum(channel=spectrum.channel + 1, counts=spectrum.counts,
                            exposure=spectrum.exposure)
    assert "from 1" in _error("response", shifted, rmf, arf)
    _, short_arf = sim.response("he", energy_bins=100)
    assert "ARF has 100 energy bins" in _error("response", spectrum, rmf, short_arf)
    background = ogip.Spectrum(channel=np.arange(64), counts=np.ones(64), exposure=1.0)
    _error("background", spectrum, rmf, arf, background)


def test_cstat_refused_for_rate_spectra(he):
    spectrum, rmf, arf = he
    rates = ogip.Spectrum(channel=spectrum.channel, rate=spectrum.counts / 100.0,
                          stat_err=np.sqrt(spectrum.counts + 1) / 100.0, exposure=100.0)
    assert "use chi2" in _error("stat", rates, rmf, arf, stat="cstat", emin=30, emax=200)


def test_step_inputs_must_hold_a_spectrum_and_one_response(he, tmp_path):
    spectrum, rmf, arf = he
    ogip.spectrum_hdulist(spectrum).writeto(tmp_path / "src.pha")
    ogip.arf_hdulist(arf).writeto(tmp_path / "src.arf")
    ogip.rmf_hdulist(rmf).writeto(tmp_path / "src.rmf")
    with pytest.raises(FitInputError) as info:
        load_inputs(tmp_path / "src.pha", [tmp_path / "src.arf"], [])
    assert info.value.parameter == "response" and "found 0" in str(info.value)
    with pytest.raises(FitInputError) as info:
        load_inputs(tmp_path / "src.arf", [tmp_path / "src.rmf"], [])
    assert info.value.parameter == "spectrum" and "no spectrum extension" in str(info.value)
    source, got_rmf, got_arf, background = load_inputs(
        tmp_path / "src.pha", [tmp_path / "src.rmf", tmp_path / "src.arf"], [])
    assert got_arf is not None and background is None and got_rmf.detchans == 256
