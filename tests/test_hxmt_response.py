"""The response model: areas, collimators, redistribution - and that the simulator's event
chain (true energy -> resolution -> raw channel -> dithered PI) follows it exactly."""
import numpy as np
import pytest
from scipy import stats

from plugins.hxmt import events, materials, response
from plugins.hxmt.instrument import HE, LE, ME, PAYLOAD_SPECS
from plugins.hxmt.response import PayloadResponse, collimator_transmission, offset_in_payload_frame
from plugins.hxmt.skymodel import Component, Spectrum

CRAB = Spectrum((Component("powerlaw", 9.7, 2.1),), 0.36)


def test_geometric_areas_and_band_shapes():
    assert HE.geometric_area == 286.0 and 18 * HE.geometric_area == pytest.approx(5148.0)
    assert ME.n_detectors * ME.geometric_area == pytest.approx(952.0)
    assert LE.n_detectors * LE.geometric_area == pytest.approx(384.0)
    for name, (low, high) in {"HE": (20, 250), "ME": (5, 30), "LE": (1, 15)}.items():
        grid = np.linspace(low, high, 200)
        eff = response.efficiency(name, grid)
        assert np.all(eff > 0.005) and np.all(eff <= response.DETECTOR_MODELS[name].open_fraction)
    he = response.efficiency("HE", np.array([15.0, 33.0, 33.4, 60.0, 300.0]))
    assert he[0] < 0.05 * he[3] and he[2] > he[1] and he[4] < he[3]       # window, iodine K edge, thin NaI
    le = response.efficiency("LE", np.array([1.80, 1.88]))
    assert le[1] < le[0]                                                   # Si K edge of the dead layer


def test_collimator_is_triangular_along_the_rotated_fov_axes():
    assert np.allclose(collimator_transmission("HE", range(18), 0.0, 0.0), [0 if d == 16 else 1 for d in range(18)])
    small_0, large_p60 = 1, 2                   # detector 1: orientation 0; 2: large FOV at +60 deg
    assert collimator_transmission("HE", [small_0], 0.55, 0.0)[0] == pytest.approx(0.5)
    assert collimator_transmission("HE", [small_0], 1.2, 0.0)[0] == 0.0
    assert collimator_transmission("HE", [small_0], 0.0, 2.85)[0] == pytest.approx(0.5)
    det = 5                                      # small FOV, orientation +60 deg
    axis = np.radians(60.0)
    along = collimator_transmission("HE", [det], 0.55 * np.cos(axis), 0.55 * np.sin(axis))[0]
    across = collimator_transmission("HE", [det], -2.85 * np.sin(axis), 2.85 * np.cos(axis))[0]
    assert along == pytest.approx(0.5) and across == pytest.approx(0.5)
    p, q = 2.85, 2.85                            # half-maximum along both axes of a rotated large FOV
    x, y = p * np.cos(axis) - q * np.sin(axis), p * np.sin(axis) + q * np.cos(axis)
    assert collimator_transmission("HE", [large_p60], x, y)[0] == pytest.approx(0.25)
    omega = response.solid_angle_sr("ME", [0, 8, 10])
    assert omega == pytest.approx(np.array([4.0, 16.0, 0.0]) * (np.pi / 180) ** 2)


def test_offsets_follow_the_roll_angle():
    x, y = offset_in_payload_frame(10.0, 21.0, 10.0, 20.0, 0.0)         # 1 deg north
    assert (float(x), float(y)) == pytest.approx((1.0, 0.0), abs=1e-9)
    x, y = offset_in_payload_frame(10.0, 21.0, 10.0, 20.0, 90.0)        # X axis now points east
    assert (float(x), float(y)) == pytest.approx((0.0, -1.0), abs=1e-9)
    x, y = offset_in_payload_frame(190.0, -20.0, 10.0, 20.0, 0.0)       # behind the pointing
    assert np.isinf(x) and np.isinf(y)


@pytest.mark.parametrize("name", ["HE", "ME", "LE"])
def test_redistribution_rows_are_probabilities_centred_on_the_energy(name):
    model = PayloadResponse(name)
    rows = np.linspace(0, model.e_mid.size - 1, 40).astype(int)
    matrix = model.rmf(rows)
    assert np.all(matrix >= 0) and np.all(matrix.sum(axis=1) <= 1 + 1e-12)
    inside = (model.e_mid[rows] > model.pi_edges[0] + 5 * model.sigma[rows]) & \
             (model.e_mid[rows] < model.pi_edges[-1] - 5 * model.sigma[rows])
    assert np.allclose(matrix[inside].sum(axis=1), 1.0, atol=1e-9)
    peak_energy = model.pi_edges[np.argmax(matrix[inside], axis=1)]
    assert np.all(np.abs(peak_energy - model.e_mid[rows][inside]) < 2 * model.spec.pi.width + 0.05 * model.sigma[rows][inside])


def test_documented_resolutions():
    fwhm = lambda name, e: 2.3548 * float(response.intrinsic_sigma_kev(name, e))   # noqa: E731
    assert fwhm("HE", 60.0) == pytest.approx(9.0, rel=1e-3)      # 15 % at 60 keV
    assert fwhm("ME", 17.8) == pytest.approx(3.0, rel=1e-3)      # 3 keV at 17.8 keV
    assert fwhm("LE", 5.9) == pytest.approx(0.140, rel=1e-3)     # 140 eV at 5.9 keV


@pytest.mark.parametrize("name", ["HE", "ME", "LE"])
def test_simulated_pi_spectrum_is_the_response_folded_spectrum(name):
    """Draw events as the simulator does, digitise them with a detector's gain, reconstruct PI
    as a pipeline would (dither inside the raw channel) and compare with the model folded
    through the RMF: a chi-square consistent with its degrees of freedom."""
    spec = PAYLOAD_SPECS[name]
    model = PayloadResponse(name)
    rng = np.random.default_rng(11)
    n = 400_000
    det = rng.integers(0, spec.n_detectors, n)
    energy = events.source_energy_sampler(model, model.photon_rates(CRAB))(det, rng)
    temperature = None if name == "HE" else spec.gain.temp_ref + 1.5
    channel = spec.energy_to_channel(energy, det, temperature)
    recorded = (channel >= 0) & (channel <= spec.gain.max_channel)
    reconstructed = spec.channel_to_energy(channel[recorded], det[recorded], temperature,
                                           dither=rng.random(int(recorded.sum())))
    pi = spec.pi.pi(reconstructed)
    observed = np.bincount(pi[(pi >= 0) & (pi < spec.pi.nchan)], minlength=spec.pi.nchan)
    rates = model.photon_rates(CRAB)
    expected = model._fold(rates / rates.sum() * n)
    keep = expected > 50
    chi2 = float(np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep]))
    dof = int(keep.sum())
    assert stats.chi2.sf(chi2, dof) > 1e-4, (chi2, dof)
    assert observed.sum() == pytest.approx(expected.sum(), rel=5 * np.sqrt(n) / n + 2e-3)


def test_expected_counts_scale_with_area_exposure_and_offset():
    model = PayloadResponse("ME")
    on_axis = model.expected_counts(CRAB, ME.groups["small"], 100.0)
    assert on_axis.sum() == pytest.approx(2 * model.expected_counts(CRAB, ME.groups["small"], 50.0).sum())
    half = model.expected_counts(CRAB, ME.groups["small"], 100.0, x_deg=0.0, y_deg=0.0)
    assert half.sum() == pytest.approx(on_axis.sum())
    assert model.expected_counts(CRAB, ME.groups["blind"], 100.0).sum() == 0.0
    # The CXB rate of a detector is the CXB photon intensity times its solid angle.
    cxb = model.cxb_expected_counts([0], 1.0).sum()
    fine = np.linspace(model.edges[0], model.edges[-1], 64 * (model.edges.size - 1) + 1)
    intensity = np.diff(fine) * materials.cxb_photon_intensity(0.5 * (fine[1:] + fine[:-1]))
    per_bin = intensity.reshape(-1, 64).sum(axis=1)               # midpoint rule, 64 per bin
    direct = np.sum(model.area * per_bin * model.detected_fraction()) * response.solid_angle_sr("ME", [0])[0]
    assert cxb == pytest.approx(direct, rel=1e-6)


@pytest.mark.parametrize("payload", ["HE", "ME", "LE"])
def test_every_product_made_from_the_response_model_is_keyed_on_its_version(payload):
    """A new response model makes a new RMF; the ARF and the backgrounds (the CXB folded
    through the response) must not come back from the cache with the old one."""
    import importlib

    steps = importlib.import_module(f"plugins.hxmt_{payload.lower()}.steps")
    for task in ("rmfgen", "arfgen", "bkgmap_spec", "bkgmap_lc"):
        declared = getattr(steps, task).params.get("response_version")
        assert declared is not None and declared["default"] == response.RESPONSE_VERSION, task
