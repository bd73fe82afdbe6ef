"""Planted-change streams: each change is where it says, of the kind it says, and nothing else
moves. References: scipy.stats.ks_2samp for distributions, scikit-learn's LinearRegression and
LogisticRegression for the input-target relation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LinearRegression, LogisticRegression

from modelwatch.streams.planted import KINDS, NUMERIC, make_stream


def _before_after(stream):
    batches = stream.batches
    change = stream.change_batch or len(batches) // 2
    before = stream.frame.iloc[: (stream.reference_batches + change - 1) * stream.batch_rows]
    after = stream.frame.iloc[(stream.reference_batches + change - 1) * stream.batch_rows :]
    return before, after


def _assert_inputs_unchanged(before, after):
    for column in NUMERIC:
        assert stats.ks_2samp(before[column], after[column]).pvalue > 0.001, column


def _coef(frame, task):
    model = LinearRegression() if task == "regression" else LogisticRegression(max_iter=500)
    return model.fit(frame[NUMERIC], frame["target"]).coef_.ravel()


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_stationary_stream_has_no_change_in_inputs_or_relation(task):
    stream = make_stream("stationary", task, seed=1)
    before, after = _before_after(stream)
    _assert_inputs_unchanged(before, after)
    assert np.allclose(_coef(before, task), _coef(after, task), atol=0.35)
    assert stream.change_batch is None and not stream.harmful
    assert len(stream.batches) == 30 and len(stream.reference) == 6 * 300


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_abrupt_concept_drift_reverses_x1_and_leaves_the_inputs(task):
    stream = make_stream("abrupt", task, seed=2)
    before, after = _before_after(stream)
    _assert_inputs_unchanged(before, after)
    old, new = _coef(before, task), _coef(after, task)
    assert old[0] > 0.5 and new[0] < -0.3  # x1's effect reversed
    assert abs(old[3]) < 0.3 and new[3] > 0.5  # x4 starts to matter
    assert stream.harmful


def test_covariate_drift_moves_x3_inside_its_range_and_keeps_the_relation():
    """Reference: scipy.stats.ks_2samp for the drift; the shifted x3 stays inside the range
    seen before the change (a tree model trained before does not have to extrapolate)."""
    stream = make_stream("covariate", "regression", seed=3)
    before, after = _before_after(stream)
    assert stats.ks_2samp(before["x3"], after["x3"]).pvalue < 1e-10
    assert after["x3"].mean() - before["x3"].mean() == pytest.approx(0.75, abs=0.1)
    assert after["x3"].std() / before["x3"].std() == pytest.approx(0.6, abs=0.05)
    low, high = before["x3"].quantile([0.001, 0.999])
    assert after["x3"].between(low, high).mean() > 0.995
    assert np.allclose(_coef(before, "regression"), _coef(after, "regression"), atol=0.1)
    assert not stream.harmful


def test_gradual_drift_ramps_over_its_batches():
    stream = make_stream("gradual", "regression", change_batch=10, ramp_batches=6, seed=4)
    coefs = [_coef(b, "regression")[0] for b in stream.batches]
    assert coefs[5] == pytest.approx(2.0, abs=0.3)  # before the change
    assert coefs[11] == pytest.approx(0.5, abs=0.3)  # batch 12: half way from 2 to -1
    assert coefs[20] == pytest.approx(-1.0, abs=0.3)  # after the ramp


def test_label_shift_moves_the_class_share_and_keeps_inputs_given_the_class():
    stream = make_stream("label_shift", "classification", seed=5)
    before, after = _before_after(stream)
    assert after["target"].mean() > before["target"].mean() + 0.2
    for label in (0, 1):
        b, a = before[before.target == label], after[after.target == label]
        assert stats.ks_2samp(b["x1"], a["x1"]).pvalue > 0.001


def test_the_same_seed_gives_the_same_stream_and_bad_arguments_say_which():
    assert make_stream("abrupt", seed=9).frame.equals(make_stream("abrupt", seed=9).frame)
    assert set(KINDS) == {"stationary", "abrupt", "gradual", "covariate", "label_shift"}
    with pytest.raises(ValueError, match="unknown kind 'sudden'"):
        make_stream("sudden")
    with pytest.raises(ValueError, match="label_shift needs task classification"):
        make_stream("label_shift", "regression")
    with pytest.raises(ValueError, match="change_batch 40 outside 1..30"):
        make_stream("abrupt", change_batch=40)
