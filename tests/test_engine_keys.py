"""Content keys: canonical, deterministic, order-aware, and stable across processes."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dataserver.keys import UnhashableValue, canonical_json, content_key, step_key

SAMPLES = [
    {"E1_keV": 20, "E2_keV": 40.5, "dets": [0, 1, 3], "expr": "ELV>10&&COR>8"},
    ["a", 1.25, None, True, {"nested": [1, 2]}],
    "Crab",
]


def test_integral_floats_and_ints_share_a_key():
    assert content_key({"E": 20}) == content_key({"E": 20.0})
    assert content_key([1, 2.0]) == content_key([1.0, 2])
    assert content_key(np.float32(20.0)) == content_key(20)
    assert content_key(-0.0) == content_key(0)


def test_mapping_order_does_not_matter_list_order_does():
    assert content_key({"a": 1, "b": 2}) == content_key({"b": 2, "a": 1})
    assert content_key([1, 2]) != content_key([2, 1])
    assert content_key((1, 2)) == content_key([1, 2])


def test_different_values_and_types_differ():
    assert content_key({"E": 20}) != content_key({"E": 20.5})
    assert content_key("20") != content_key(20)
    assert content_key(True) != content_key(1)
    assert content_key(None) != content_key("None")


@pytest.mark.parametrize("bad, path", [
    ({"detectors": {1, 2}}, "value.detectors"),
    ({"f": float("nan")}, "value.f"),
    ([1, float("inf")], "value[1]"),
    ({"obj": object()}, "value.obj"),
    ({1: "int key"}, "value"),
])
def test_values_without_a_deterministic_form_raise_with_their_path(bad, path):
    with pytest.raises(UnhashableValue) as info:
        content_key(bad)
    assert info.value.path == path


def test_canonical_json_is_compact_and_sorted():
    assert canonical_json({"b": [1.0, 2.5], "a": "x"}) == '{"a":"x","b":[1,2.5]}'


def test_step_key_depends_on_name_version_params_inputs_and_external():
    base = step_key("he.screen", 1, {"emin": 20}, {"events": "k1"})
    assert base == step_key("he.screen", 1, {"emin": 20.0}, {"events": "k1"})
    assert base != step_key("he.screen", 2, {"emin": 20}, {"events": "k1"})
    assert base != step_key("he.lcgen", 1, {"emin": 20}, {"events": "k1"})
    assert base != step_key("he.screen", 1, {"emin": 21}, {"events": "k1"})
    assert base != step_key("he.screen", 1, {"emin": 20}, {"events": "k2"})
    assert base != step_key("he.screen", 1, {"emin": 20}, {"events": "k1"}, {"file": "V2"})
    multi = step_key("merge", 1, {}, {"spectra": ["k1", "k2"]})
    assert multi != step_key("merge", 1, {}, {"spectra": ["k2", "k1"]})


def test_keys_are_pinned():
    # A change of the canonical form silently invalidates every cache: make it loud.
    assert content_key(SAMPLES[0]) == "bdff00bb8213e85c09d79bb5968d67664262e57735d461d17fc298c2885492cc"
    assert step_key("s", 1, {"x": 1}, {}) == "354cce3b50d524742c56dbfc2ccdf0b340c493f1ec0794d5ff2ac1a02649b3a2"


def test_keys_are_stable_across_processes():
    code = ("import json,sys; from dataserver.keys import content_key; "
            "print(json.dumps([content_key(v) for v in json.load(sys.stdin)]))")
    here = [content_key(v) for v in SAMPLES]
    for seed in ("0", "12345", "random"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", code], input=json.dumps(SAMPLES),
                             capture_output=True, text=True, env=env, check=True)
        assert json.loads(out.stdout) == here
