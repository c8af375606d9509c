"""Unit tests of the HXMT pipeline machinery that need no archive: the screening-expression
grammar, interval arithmetic, live-time integration, the selection binning and PI."""
from __future__ import annotations

import numpy as np
import pytest

from plugins.hxmt import gti, gtiexpr
from plugins.hxmt.calib import CALIBRATED_COLUMNS, EXTNAME, FLAG_BAD_PI, FLAG_CSI, pi_from_channel
from plugins.hxmt.fitsio import ColumnSpec, FitsTable, StreamingTableWriter
from plugins.hxmt.instrument import payload
from plugins.hxmt.l1files import EHK_COLUMNS
from plugins.hxmt.livetime import LiveTable, bin_exposure, exposure_per_detector
from plugins.hxmt.selection import Selection, channel_groups, detector_spectra, time_histogram

DEFAULT_HE = "ELV>10&&COR>8&&SAA_FLAG==0&&T_SAA>300&&TN_SAA>300&&ANG_DIST<=0.04"


def _columns():
    return {"TIME": np.arange(6.0), "ELV": np.array([5.0, 15, 25, 35, 45, np.nan]),
            "COR": np.array([9.0, 7, 9, 9, 12, 12]), "SAA_FLAG": np.array([0, 0, 1, 0, 0, 0]),
            "T_SAA": np.full(6, 400.0), "TN_SAA": np.full(6, 400.0), "ANG_DIST": np.full(6, 0.01)}


def test_default_expression_keeps_its_criteria_and_evaluates_rows():
    expression = gtiexpr.parse(DEFAULT_HE, EHK_COLUMNS)
    assert str(expression) == DEFAULT_HE
    assert [text for text, _ in expression.criteria()] == DEFAULT_HE.split("&&")
    # Row 0 ELV, row 1 COR, row 2 SAA fail; row 5 has ELV NaN: bad time, not an error.
    assert expression.evaluate(_columns()).tolist() == [False, False, False, True, True, False]


def test_grammar_precedence_negation_case_and_canonical_text():
    known = ["ELV", "COR", "SAA_FLAG", "DYE_ELV"]
    expression = gtiexpr.parse(" elv > 10 && (cor>8 || !(SAA_FLAG = 1)) ", known)
    assert str(expression) == "ELV>10&&(COR>8||!(SAA_FLAG==1))"
    assert gtiexpr.parse("ELV>1 || COR>2 && DYE_ELV<3", known).tree.op == "||"     # && binds tighter
    columns = {"ELV": np.array([20.0, 20.0, 5.0]), "COR": np.array([5.0, 9.0, 9.0]),
               "SAA_FLAG": np.array([0, 1, 0]), "DYE_ELV": np.zeros(3)}
    assert expression.evaluate(columns).tolist() == [True, True, False]
    assert gtiexpr.parse("-1.5e1<ELV", known).evaluate({"ELV": np.array([-20.0, 0.0])}).tolist() == [False, True]


def test_a_missing_value_is_bad_time_even_under_negation():
    expression = gtiexpr.parse("!(SAA_FLAG==1)&&!(ELV<10)", EHK_COLUMNS)
    columns = {"SAA_FLAG": np.array([0.0, np.nan, 0.0, 1.0]), "ELV": np.array([20.0, 20.0, np.nan, 20.0])}
    assert expression.evaluate(columns).tolist() == [True, False, False, False]


@pytest.mark.parametrize("text, message", [
    ("ELV>10&&FOO<3&&bar>1", "unknown columns FOO, bar"),
    ("ELV>", "expected a column name or a number at position 5"),
    ("(ELV>1", "expected ')'"),
    ("ELV>1 COR>2", "expected '&&', '||' or the end"),
    ("3>4", "involves no column"),
    ("ELV>>3", "expected a column name or a number"),
    ("__import__('os').system('ls')", "unexpected character"),
    ("ELV+1>3", "unexpected"),
    ("", "empty"),
])
def test_bad_expressions_are_refused_with_the_reason(text, message):
    with pytest.raises(gtiexpr.ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gtiexpr.parse(text, EHK_COLUMNS)


def test_unknown_column_message_lists_the_known_ones():
    with pytest.raises(gtiexpr.ExpressionError) as error:
        gti.parse_expression("ME", "ELV>10&&Cnt_PM_0<50")
    assert "unknown column Cnt_PM_0" in str(error.value) and "T_SAA" in str(error.value)
    assert str(gti.parse_expression("HE", "ELV>10&&Cnt_PM_0<50")) == "ELV>10&&Cnt_PM_0<50"


def test_screen_rows_reports_time_removed_by_each_criterion():
    columns = _columns()
    screening = gti.screen_rows(gtiexpr.parse(DEFAULT_HE, EHK_COLUMNS), columns, -0.5, 5.5,
                                instrument_on=np.array([True, True, True, True, False, True]))
    assert screening.intervals == [[2.5, 3.5]]                 # row 4: instrument off
    assert screening.removed_s["ELV>10"] == 2.0 and screening.removed_s["COR>8"] == 1.0
    assert screening.removed_s["SAA_FLAG==0"] == 1.0 and screening.removed_s[gti.INSTRUMENT_ON] == 1.0
    assert screening.good_time_s == 1.0 and screening.span_s == 6.0


def test_interval_arithmetic():
    assert gti.normalise([[5, 6], [1, 3], [2, 4]]) == [[1.0, 4.0], [5.0, 6.0]]
    assert gti.intersect([[0, 10], [20, 30]], [[5, 25]]) == [[5.0, 10.0], [20.0, 25.0]]
    assert gti.subtract([[0, 10]], [[2, 3], [5, 6]]) == [[0.0, 2.0], [3.0, 5.0], [6.0, 10.0]]
    assert gti.coverage([[0, 10], [20, 30]], np.array([-5.0, 5, 15]), np.array([5.0, 25, 16])).tolist() == [5, 10, 0]
    with pytest.raises(ValueError, match="interval 0"):
        gti.normalise([[3, 1]])


def test_live_time_integrals_are_exact_over_rows_and_intervals():
    table = LiveTable(np.arange(10.0), np.column_stack([np.full(10, 0.5), np.ones(10)]))
    intervals = [[-0.5, 2.0], [4.25, 4.75]]
    assert exposure_per_detector(table, intervals).tolist() == [1.5, 3.0]
    good, live = bin_exposure(table, intervals, [0, 1], np.array([-0.5, 0.5, 4.5, 9.5]))
    assert good.tolist() == [1.0, 1.75, 0.25] and live.tolist() == [0.75, 1.3125, 0.1875]


def test_pi_follows_the_hxmtdas_relations_and_flags_out_of_range():
    spec = payload("LE")
    channel = spec.energy_to_channel(np.array([1.0, 5.0, 10.0, 20.0]), np.zeros(4, int), spec.gain.temp_ref)
    pi, bad = pi_from_channel(spec, channel, np.zeros(4, int), np.full(4, 0.5, np.float32),
                              np.full(4, spec.gain.temp_ref))
    assert bad.tolist() == [False, False, False, True]
    assert np.abs(spec.pi.energy_lo(pi[:3]) + spec.pi.width / 2 - [1.0, 5.0, 10.0]).max() < 0.01


def test_detector_spectra_apply_the_selection_while_binning(tmp_path):
    rows = 10_000
    rng = np.random.default_rng(3)
    pi, det = rng.integers(0, 256, rows), rng.integers(0, 18, rows)
    flag = np.where(rng.random(rows) < 0.2, FLAG_CSI, 0) | np.where(rng.random(rows) < 0.05, FLAG_BAD_PI, 0)
    path = tmp_path / "cal.fits"
    with StreamingTableWriter(path, CALIBRATED_COLUMNS, EXTNAME) as writer:
        writer.write({"PI": pi, "DET_ID": det, "FLAG": flag})
    selection = Selection("P1", "HE", np.array([[100, 4000], [6000, 9000]]), [[0.0, 1.0]], tuple(range(0, 18, 2)),
                          FLAG_CSI | FLAG_BAD_PI, rows)
    counts = detector_spectra(path, selection, 18, 256)
    inside = np.zeros(rows, bool)
    inside[100:4000] = inside[6000:9000] = True
    keep = inside & (flag == 0) & (det % 2 == 0)
    expected = np.zeros((18, 256), int)
    np.add.at(expected, (det[keep], pi[keep]), 1)
    assert np.array_equal(counts, expected)


def test_time_histogram_counts_every_group_in_one_pass(tmp_path, monkeypatch):
    rows = 20_000
    rng = np.random.default_rng(5)
    time = np.sort(rng.uniform(0.0, 100.0, rows))
    pi, det = rng.integers(0, 256, rows), rng.integers(0, 18, rows)
    flag = np.where(rng.random(rows) < 0.1, FLAG_CSI, 0)
    calibrated, events = tmp_path / "cal.fits", tmp_path / "evt.fits"
    with StreamingTableWriter(calibrated, CALIBRATED_COLUMNS, EXTNAME) as writer:
        writer.write({"PI": pi, "DET_ID": det, "FLAG": flag})
    with StreamingTableWriter(events, [ColumnSpec("Time", "1D")], "Events") as writer:
        writer.write({"Time": time})
    # Detector 16 is not allowed by the screening; rows outside [1000, 19000) are not selected.
    selection = Selection("P1", "HE", np.array([[1000, 19000]]), [[0.0, 100.0]], tuple(d for d in range(18) if d != 16),
                          FLAG_CSI, rows)
    groups = channel_groups(256, [[((0, 1, 16), 10, 99)], [((2,), 0, 9), ((2,), 200, 255), ((16,), 0, 255)]])
    reads = []
    original = FitsTable.read
    monkeypatch.setattr(FitsTable, "read", lambda self, *a, **k: reads.append(self.path) or original(self, *a, **k))
    counts = time_histogram(calibrated, events, "Time", selection, groups, 10.0, 5.0, 16)
    assert counts.shape == (2, 16)
    assert reads.count(events) == 1                       # one chunk, read once for both groups
    selected = (np.arange(rows) >= 1000) & (np.arange(rows) < 19000) & (flag == 0)
    first = selected & np.isin(det, (0, 1)) & (pi >= 10) & (pi <= 99)
    second = selected & (det == 2) & ((pi <= 9) | (pi >= 200))
    for index, mask in enumerate((first, second)):
        assert np.array_equal(counts[index], np.histogram(time[mask], bins=10.0 + 5.0 * np.arange(17))[0])
