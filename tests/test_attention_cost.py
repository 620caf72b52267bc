"""The measuring tools of chapter 7: fitted growth exponents, timing, peak memory."""

import math

import pytest
import torch

from lm_course.attention.cost import loglog_slope, matmul_macs, peak_memory, time_call


def test_loglog_slope_recovers_a_power_law():
    xs = [64, 128, 256, 512]
    assert loglog_slope(xs, [3 * x**2 for x in xs]) == pytest.approx(2.0)
    assert loglog_slope(xs, [0.5 * x for x in xs]) == pytest.approx(1.0)
    assert loglog_slope(xs, [7.0] * 4) == pytest.approx(0.0)
    noisy = [x**1.5 * (1.1 if i % 2 else 0.9) for i, x in enumerate(xs)]
    assert 1.4 < loglog_slope(xs, noisy) < 1.7


@pytest.mark.parametrize(
    ("xs", "ys", "message"),
    [
        ([1], [1], "two or more"),
        ([1, 2], [1], "two or more"),
        ([0, 2], [1, 2], "> 0"),
        ([1, 2], [1, -2], "> 0"),
        ([3, 3], [1, 2], "not all be equal"),
    ],
)
def test_loglog_slope_refuses_what_has_no_slope(xs, ys, message):
    with pytest.raises(ValueError, match=message):
        loglog_slope(xs, ys)


def test_time_call_reports_the_fastest_run_and_warms_up():
    calls = []
    seconds = time_call(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and 0 <= seconds < 0.1
    with pytest.raises(ValueError, match="repeats must be an integer >= 1"):
        time_call(lambda: None, repeats=0)


def test_peak_memory_counts_what_a_call_holds_at_once(capfd):
    def two_at_once():
        a = torch.ones(1_000_000)  # 4 MB
        b = a * 2  # 4 MB more while a is alive
        return float(b[0])

    def one_after_the_other():
        for _ in range(3):
            float(torch.ones(1_000_000)[0])  # each freed before the next

    both = peak_memory(two_at_once)
    assert 8_000_000 <= both < 8_100_000
    assert 4_000_000 <= peak_memory(one_after_the_other) < 4_100_000
    assert peak_memory(lambda: None) == 0
    # The profiler's own log lines must not reach a notebook's output.
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_matmul_macs_cross_at_twice_the_width():
    d = 128
    at = matmul_macs(2 * d, d)
    assert at["projections"] == at["scores and sums"] == 4 * 2 * d * d * d
    assert (
        matmul_macs(4 * d, d)["scores and sums"] > matmul_macs(4 * d, d)["projections"]
    )
    per_token = matmul_macs(1, d)["projections"]
    assert per_token == 4 * d * d and math.isclose(per_token / d**2, 4)
