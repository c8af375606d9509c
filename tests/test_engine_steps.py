"""Step declarations: the parameter allow-list, validation and normalisation."""
import pytest
from astropy.io import fits

from dataserver import Output, StepParameterError, step
from dataserver.steps import resolve_step, task_spec, topological
from tests import engine_instrument as ti


@step(version=3, params={
    "binsize": {"type": "number", "exclusiveMinimum": 0, "default": 1.0},
    "detectors": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 17}},
    "mode": {"type": "string", "enum": ["fast", "full"], "default": "full"},
})
def lcgen(binsize, detectors, mode):
    return fits.HDUList([fits.PrimaryHDU()])


def test_defaults_filled_and_numbers_normalised():
    params = lcgen.normalise({"detectors": [0.0, 3], "binsize": 2})
    assert params == {"binsize": 2.0, "detectors": [0, 3], "mode": "full"}
    assert isinstance(params["binsize"], float) and all(isinstance(d, int) for d in params["detectors"])


def test_unknown_parameter_is_named():
    with pytest.raises(StepParameterError) as info:
        lcgen.normalise({"detectors": [1], "session_id": "ABC"})
    assert info.value.parameter == "session_id"
    assert "unknown parameter" in str(info.value) and "binsize" in str(info.value)


@pytest.mark.parametrize("params, name, words", [
    ({"detectors": [1], "binsize": "fast"}, "binsize", "not of type 'number'"),
    ({"detectors": [1], "binsize": 0}, "binsize", "less than or equal to the minimum"),
    ({"detectors": [1, 18]}, "detectors", "[1]"),
    ({"detectors": [1.5]}, "detectors", "not of type 'integer'"),
    ({"detectors": [1], "mode": "slow"}, "mode", "is not one of"),
    ({}, "detectors", "missing required parameter"),
    ({"detectors": {1, 2}}, "detectors", "cannot be hashed"),
])
def test_ill_typed_parameters_are_named(params, name, words):
    with pytest.raises(StepParameterError) as info:
        lcgen.normalise(params)
    assert info.value.parameter == name
    assert words in str(info.value)


def test_identity_never_enters_a_key():
    # A step cannot declare what it does not compute with; the node refuses extras.
    with pytest.raises(StepParameterError, match="token"):
        lcgen.node(detectors=[1], token="secret")


def test_node_keys_follow_inputs_and_versions():
    cal = ti.calibrate.node(unit="U1", external={"unit": "U1"})
    a = ti.screen.node(unit="U1", events=cal, threshold=10)
    b = ti.screen.node(unit="U1", events=cal, threshold=10.0)
    c = ti.screen_v2.node(unit="U1", events=cal, threshold=10)
    other = ti.screen.node(unit="U2", events=ti.calibrate.node(unit="U2", external={"unit": "U2"}))
    assert a.key == b.key != c.key
    assert other.key != a.key


def test_missing_input_and_bad_input_type_are_named():
    with pytest.raises(StepParameterError, match="events"):
        ti.screen.node(unit="U1")
    with pytest.raises(StepParameterError, match="events"):
        ti.screen.node(unit="U1", events="not a node")


def test_task_spec_flattens_the_subgraph_in_order():
    spectra, total = ti.plan_nodes(["U1", "U2"])
    spec = task_spec(total)
    assert spec["target"] == total.key
    assert len(spec["nodes"]) == 7
    order = [n.key for n in topological([total])]
    assert order[-1] == total.key and set(order) == set(spec["nodes"])
    assert spec["nodes"][total.key]["inputs"]["spectra"] == [s.key for s in spectra]


def test_steps_resolve_by_module_name_and_version():
    assert resolve_step("tests.engine_instrument", "engine_instrument.screen", 2) is ti.screen_v2
    with pytest.raises(LookupError, match="version"):
        resolve_step("tests.engine_instrument", "engine_instrument.screen", 7)


def test_a_step_must_return_products():
    @step(version=1)
    def bad():
        return 42

    with pytest.raises(TypeError, match="HDUList"):
        bad.run({}, {}, context=None)
    assert isinstance(lcgen.run({}, {"binsize": 1.0, "detectors": [1], "mode": "full"}, None), Output)


def test_numpy_scalars_arrays_and_tuples_are_accepted_as_plain_values():
    import json

    import numpy as np

    plain = lcgen.normalise({"detectors": [1, 2], "binsize": 2.5})
    for given in ({"detectors": [np.int64(1), np.uint8(2)], "binsize": np.float32(2.5)},
                  {"detectors": (1, 2), "binsize": np.float64(2.5)},
                  {"detectors": np.array([1, 2]), "binsize": 2.5}):
        params = lcgen.normalise(given)
        assert params == plain
        # The worker stores params in the product's JSON record and ships them as JSON.
        assert json.loads(json.dumps(params)) == plain
        assert type(params["binsize"]) is float and all(type(d) is int for d in params["detectors"])
    with pytest.raises(StepParameterError, match="detectors"):
        lcgen.normalise({"detectors": [np.True_]})


@step(version=1, params={"window": {"type": "object", "properties": {
    "width": {"type": "number", "default": 1.0},
    "shape": {"type": "string", "enum": ["box", "hann"], "default": "box"},
}, "additionalProperties": False, "default": {}}})
def smooth(window):
    return fits.HDUList([fits.PrimaryHDU()])


def test_nested_defaults_are_filled_so_equivalent_parameters_share_a_key():
    explicit = smooth.node(window={"width": 1, "shape": "box"})
    assert smooth.node(window={}).key == explicit.key
    assert smooth.node().key == explicit.key
    assert smooth.node(window={"width": 1.0}).params == {"window": {"width": 1.0, "shape": "box"}}
    assert smooth.node(window={"width": 2}).key != explicit.key


@step(version=1, params={"cut": {"type": ["number", "null"], "default": None},
                         "count": {"type": ["integer", "null"], "default": None}})
def optional_cut(cut, count):
    return fits.HDUList([fits.PrimaryHDU()])


def test_optional_numbers_keep_their_declared_type():
    params = optional_cut.normalise({"cut": 2, "count": 3.0})
    assert params == {"cut": 2.0, "count": 3}
    assert type(params["cut"]) is float and type(params["count"]) is int
    assert optional_cut.normalise({})["cut"] is None
