"""compare_outputs: outputs within a tolerance, argmax ties counted as agreement."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from axe_deploy.core.compare import compare_outputs

ATOL = 1e-4
rows = st.integers(1, 20)
classes = st.integers(2, 12)
seeds = st.integers(0, 2**32 - 1)


def logits(seed, n, c):
    """Scores whose top two classes are more than 4·ATOL apart in every row."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c))
    top = x.argmax(1)
    x[np.arange(n), top] += 1.0
    return x


@settings(max_examples=60, deadline=None)
@given(seeds, rows, classes, st.floats(0, 0.999))  # below 1: x + atol - x can exceed atol by an ulp
def test_outputs_within_atol_pass_whatever_ties_they_flip(seed, n, c, frac):
    """An exact tie (the integer datapath's, say) comes out in either order: got is the
    reference with the tie broken the other way and every element moved by at most atol."""
    rng = np.random.default_rng(seed)
    ref = logits(seed, n, c)
    i = rng.integers(n)
    a, b = np.argsort(ref[i])[-2:]
    ref[i, a] = ref[i, b]  # an exact tie in row i
    got = ref + rng.uniform(-ATOL, ATOL, ref.shape) * frac
    got[i, a], got[i, b] = ref[i, a] + ATOL * frac, ref[i, b] - ATOL * frac  # got picks a, ref's argmax is b or a
    r = compare_outputs(got, ref, ATOL)
    assert r["passed"] and r["argmax_agree"] == 1.0 and r["ties"] >= 1
    assert r["max_abs_diff"] <= ATOL


@settings(max_examples=60, deadline=None)
@given(seeds, rows, classes)
def test_a_real_disagreement_fails(seed, n, c):
    """Swapping the top two classes of a row whose gap is far beyond atol fails the check,
    even where the tolerance itself is loose enough to hide the difference."""
    ref = logits(seed, n, c)
    got = ref.copy()
    i = np.random.default_rng(seed).integers(n)
    a, b = np.argsort(ref[i])[-2:]
    got[i, a], got[i, b] = ref[i, b], ref[i, a]
    r = compare_outputs(got, ref, ATOL)
    assert not r["passed"] and r["argmax_agree"] < 1.0 and r["max_abs_diff"] > ATOL
    assert r["argmax_agree"] == pytest.approx(1 - 1 / n)


@settings(max_examples=40, deadline=None)
@given(seeds, rows, classes)
def test_identical_outputs_agree_and_a_larger_difference_fails(seed, n, c):
    ref = logits(seed, n, c).astype(np.float32)
    assert compare_outputs(ref, ref, 0.0) == {"vectors": n, "max_abs_diff": 0.0, "argmax_equal": 1.0, "ties": 0,
                                              "argmax_agree": 1.0, "passed": True}
    shifted = ref.copy()
    shifted[0, 0] += 2 * ATOL  # argmax unchanged, difference beyond atol
    r = compare_outputs(shifted, ref, ATOL)
    assert not r["passed"] and r["argmax_agree"] == 1.0


def test_nan_fails_and_shapes_are_checked():
    ref = np.array([[0.0, 1.0], [2.0, 0.0]])
    got = ref.copy()
    got[1, 1] = np.nan
    assert not compare_outputs(got, ref, 1.0)["passed"]
    assert compare_outputs(ref.reshape(-1), ref, 0.0)["passed"]  # flat outputs take the reference's shape
    with pytest.raises(ValueError, match="differ in size"):
        compare_outputs(ref[:1], ref, ATOL)
