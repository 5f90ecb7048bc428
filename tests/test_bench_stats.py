"""Latency statistics, rank correlation and percentage error on hand-checked inputs."""

import math

import pytest

from anas_zoo.bench.stats import NOISY_CV, kendall_tau, mape, summarize


def test_summarize_hand_computed_values():
    s = summarize([1.0, 2.0, 3.0, 4.0], batch=8)
    assert s["n"] == 4
    assert s["mean_ms"] == pytest.approx(2.5)
    assert s["p50_ms"] == pytest.approx(2.5)
    assert s["p90_ms"] == pytest.approx(3.7)          # 3 + 0.7 * (4 - 3), linear interpolation
    assert s["p99_ms"] == pytest.approx(3.97)
    assert s["std_ms"] == pytest.approx(math.sqrt(5 / 3))  # sample std (ddof 1)
    assert s["cv"] == pytest.approx(math.sqrt(5 / 3) / 2.5)
    assert s["min_ms"] == 1.0 and s["max_ms"] == 4.0
    assert s["images_per_s"] == pytest.approx(8 * 1000 / 2.5)
    assert s["noisy"] is True


def test_noise_flag_follows_the_cv_threshold():
    steady = summarize([10.0, 10.1, 9.9, 10.0])
    assert steady["cv"] < NOISY_CV and steady["noisy"] is False
    assert summarize([10.0, 13.0, 7.0, 10.0])["noisy"] is True


def test_single_sample_has_zero_spread():
    s = summarize([5.0])
    assert s["std_ms"] == 0.0 and s["cv"] == 0.0 and s["p99_ms"] == 5.0


def test_summarize_rejects_bad_input():
    with pytest.raises(ValueError, match="no latency samples"):
        summarize([])
    with pytest.raises(ValueError, match="batch"):
        summarize([1.0], batch=0)


def test_kendall_tau_hand_cases():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # one discordant pair out of six: (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    # tau-b with a tie in the second sequence: concordant 2, discordant 0, pairs 3, untied pairs in b: 2
    assert kendall_tau([1, 2, 3], [1, 2, 2]) == pytest.approx(2 / math.sqrt(3 * 2))
    with pytest.raises(ValueError):
        kendall_tau([1], [1])


def test_mape_hand_case():
    assert mape([10.0, 20.0], [11.0, 18.0]) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="positive"):
        mape([0.0], [1.0])
