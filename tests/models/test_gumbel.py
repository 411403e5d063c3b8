"""TemperatureSchedule: exponential Gumbel temperature annealing, per step, clamped."""

import math
from itertools import pairwise

import pytest

from edgefuse.models.gumbel import TemperatureSchedule


@pytest.mark.parametrize("start, end, steps", [(1.0, 1e-3, 10), (2.0, 0.5, 7), (0.1, 1.0, 4)])
def test_anneals_exponentially_from_start_to_end(start, end, steps):
    tau = TemperatureSchedule(start, end, steps)
    values = [tau(k) for k in range(steps + 1)]
    assert values[0] == pytest.approx(start) and values[-1] == pytest.approx(end)
    # monotone towards `end`, every step strictly
    pairs = list(pairwise(values))
    assert all((b < a) if end < start else (b > a) for a, b in pairs)
    # exponential: the same factor every step, (end / start) ** (1 / steps)
    factor = (end / start) ** (1 / steps)
    assert [b / a for a, b in pairs] == pytest.approx([factor] * steps)
    # i.e. linear in log space, halfway at half the steps (geometric, not arithmetic, mean)
    if steps % 2 == 0:
        assert tau(steps // 2) == pytest.approx(math.sqrt(start * end))


def test_clamped_outside_the_schedule():
    tau = TemperatureSchedule(1.0, 0.01, 5)
    assert tau(-3) == pytest.approx(1.0)
    assert tau(5) == tau(6) == tau(10_000) == pytest.approx(0.01)


def test_constant_when_start_equals_end_or_no_steps():
    assert [TemperatureSchedule(0.7, 0.7, 5)(k) for k in (0, 3, 9)] == [0.7] * 3
    assert TemperatureSchedule(1.0, 0.1, 0)(3) == 1.0
    assert TemperatureSchedule()(100) == 1.0
