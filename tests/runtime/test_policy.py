"""Path choice: argmax, the closed-loop latency budget, the depth-health rule."""

import numpy as np
import pytest

from edgefuse.errors import ConfigError
from edgefuse.runtime.policy import (
    BudgetCheck,
    BudgetController,
    PathCostInfo,
    PathPolicy,
    PolicyConfig,
    Reason,
    argmax_choice,
    cost_bias,
    depth_valid_fraction,
    least_depth_path,
    map_choice,
)

# A progressive 5-path set: costs grow with fused cells, depth stages 0..4.
PROGRESSIVE = tuple(PathCostInfo(k, 200.0 + 25.0 * k, 10.0 + 25.0 * k, k) for k in range(5))


def test_argmax_first_on_ties_and_flat_shapes():
    assert argmax_choice([0.1, 2.0, -1.0]) == 1
    assert argmax_choice(np.array([[3.0, 3.0, 1.0]])) == 0
    with pytest.raises(ValueError):
        argmax_choice([])


def test_cost_bias_is_proportional_to_the_cost_above_the_cheapest():
    b = cost_bias([100.0, 150.0, 200.0, 300.0], strength=4.0)
    np.testing.assert_allclose(b, [0.0, -1.0, -2.0, -4.0])
    np.testing.assert_allclose(cost_bias([1.0, 2.0], 0.0), [0.0, 0.0])
    np.testing.assert_allclose(cost_bias([5.0, 5.0], 3.0), [0.0, 0.0])


def test_map_choice_through_gate_to_path():
    assert map_choice(3, (0, 2, 2, 4, 4)) == 4
    with pytest.raises(ValueError):
        map_choice(5, (0, 1))


def test_depth_valid_fraction_counts_nan_and_zero_as_invalid():
    d = np.array([[0, 1000], [np.nan, 2000]], np.float32)
    assert depth_valid_fraction(d) == 0.5
    assert depth_valid_fraction(None) == 0.0
    assert depth_valid_fraction(np.array([[5, 0]], np.uint16)) == 0.5


def test_least_depth_path_progressive_and_modality_level():
    assert least_depth_path(PROGRESSIVE) == 0
    # Modality-level: expert 1 is RGB-only (no depth stages), expert 0 is RGB-D.
    experts = (PathCostInfo(0, 300.0, 100.0, 4), PathCostInfo(1, 150.0, 0.0, 0))
    assert least_depth_path(experts) == 1


def test_policy_plain_argmax_mapped_through_gate_to_path():
    policy = PathPolicy(PROGRESSIVE, (0, 1, 2, 3, 4))
    c = policy.choose(np.array([0.0, 0.0, 0.0, 5.0, 1.0]), depth_valid=1.0)
    assert (c.path, c.gate_choice, c.reason) == (3, 3, Reason.ARGMAX)
    subset = PathPolicy(tuple(p for p in PROGRESSIVE if p.index in (0, 4)), (0, 4, 4, 4, 4))
    assert subset.choose(np.array([0.0, 0.0, 9.0, 0.0, 0.0]), 1.0).path == 4


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.49])
def test_depth_health_routes_to_rgb_path_and_marks_the_frame(fraction):
    policy = PathPolicy(PROGRESSIVE, (0, 1, 2, 3, 4), PolicyConfig(min_depth_valid=0.5))
    c = policy.choose(np.array([0.0, 0.0, 0.0, 0.0, 9.0]), depth_valid=fraction)
    assert c.path == 0 and c.reason is Reason.DEPTH and c.gate_choice == 4


def test_policy_rejects_unknown_paths_and_bad_config():
    with pytest.raises(ConfigError):
        PathPolicy(PROGRESSIVE[:2], (0, 1, 2))
    with pytest.raises(ConfigError):
        PolicyConfig(budget_ms=0)
    with pytest.raises(ConfigError):
        PolicyConfig(min_depth_valid=1.5)


def _simulate(budget_ms, frames=3000, seed=0, logit_scale=1.0):
    """Closed loop on a simulated latency model: path k costs 10 + 2.5 k ms (+-5% noise);
    the gate prefers expensive paths (logits favour 3 and 4)."""
    rng, noise = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    policy = PathPolicy(PROGRESSIVE, (0, 1, 2, 3, 4), PolicyConfig(budget_ms=budget_ms))
    lat, paths = [], []
    policy.notes = []
    for _ in range(frames):
        logits = logit_scale * rng.normal([0.0, 0.2, 0.5, 1.5, 2.0], 1.0)
        c = policy.choose(logits, depth_valid=1.0)
        ms = (10.0 + 2.5 * c.path) * noise.uniform(0.95, 1.05)
        note = policy.observe(ms, c.path)
        if note:
            policy.notes.append((len(lat), note))
        lat.append(ms)
        paths.append(c.path)
    return np.array(lat), np.array(paths), policy


def _unbudgeted_mean(frames=3000, seed=0):
    rng = np.random.default_rng(seed)
    policy = PathPolicy(PROGRESSIVE, (0, 1, 2, 3, 4))
    return np.mean([(10.0 + 2.5 * policy.choose(rng.normal([0.0, 0.2, 0.5, 1.5, 2.0], 1.0), 1.0).path)
                    for _ in range(frames)])


@pytest.mark.parametrize("budget", [12.0, 14.0, 16.0])
def test_budget_holds_the_running_mean_in_closed_loop(budget):
    natural = _unbudgeted_mean()
    assert budget < natural          # the budget binds
    lat, paths, policy = _simulate(budget)
    steady = lat[500:]
    assert abs(steady.mean() - budget) / budget < 0.02
    assert abs(lat.mean() - budget) / budget < 0.03
    assert policy.controller.strength > 0
    assert len(set(paths[500:].tolist())) > 1   # a mix, not one path pinned


def test_budget_control_does_not_depend_on_the_gates_logit_scale():
    # a gate with 20x larger logits (sharper softmax) gets the same decisions
    _, paths_1, _ = _simulate(13.0, frames=1000)
    _, paths_20, _ = _simulate(13.0, frames=1000, logit_scale=20.0)
    assert paths_1.tolist() == paths_20.tolist()


def test_budget_above_the_gates_own_mix_leaves_argmax_alone():
    lat, paths, policy = _simulate(budget_ms=100.0)
    assert policy.controller.strength == 0.0
    rng = np.random.default_rng(0)
    expected = [int(np.argmax(rng.normal([0.0, 0.2, 0.5, 1.5, 2.0], 1.0))) for _ in range(3000)]
    assert paths.tolist() == expected


def test_budget_controller_strength_is_clamped():
    c = BudgetController(budget_ms=1.0, max_bias=5.0)
    for _ in range(100):
        c.observe(100.0)
    assert c.strength == 5.0
    for _ in range(1000):
        c.observe(0.0)
    assert c.strength == 0.0


def test_infeasible_budget_is_said_once_with_the_cheapest_paths_latency():
    """Path 0 alone takes ~10 ms: a 6 ms budget cannot be held. The controller pins path 0,
    and the policy says so once, early, naming path 0 and its measured latency."""
    lat, paths, policy = _simulate(budget_ms=6.0, frames=500)
    assert (paths[100:] == 0).mean() > 0.95
    assert len(policy.notes) == 1
    at, notice = policy.notes[0]
    assert at < 100
    # Data, worded by each front end with its own flag name.
    assert (notice.budget_ms, notice.cheapest_path) == (6.0, 0)
    assert notice.median_ms == pytest.approx(10.0, rel=0.03)   # the measured latency, +-5% noise
    note = notice.message("--budget-ms")
    assert "--budget-ms 6 cannot be met" in note and "path 0" in note
    said = float(note.split("alone takes ")[1].split(" ms")[0])
    assert said == pytest.approx(notice.median_ms, abs=0.01)
    ros = notice.message("budget_ms")
    assert ros.startswith("budget_ms 6 cannot be met") and "--budget-ms" not in ros
    report = policy.budget_report()
    assert report["feasible"] is False and report["cheapest_path"] == 0
    assert report["cheapest_ms"] == pytest.approx(10.0, rel=0.03)
    assert report["mean_ms"] > 6.0 and report["frames"] == 500


@pytest.mark.parametrize("budget", [12.0, 100.0])
def test_feasible_budget_says_nothing(budget):
    _, _, policy = _simulate(budget_ms=budget, frames=1500)
    assert policy.notes == []
    report = policy.budget_report()
    # a loose budget may never send 20 frames to path 0: then there is nothing to judge by
    assert report["feasible"] in (True, None) and (budget == 100.0 or report["feasible"] is True)


def test_budget_check_waits_for_enough_frames_of_the_cheapest_path():
    check = BudgetCheck(budget_ms=5.0, cheapest_path=0, min_frames=20)
    assert all(check.observe(9.0, 2) is None for _ in range(100))   # other paths say nothing
    assert all(check.observe(9.0, 0) is None for _ in range(19))
    assert check.feasible is None
    assert "path 0" in check.observe(9.0, 0).message()
    assert check.observe(9.0, 0) is None and check.feasible is False and check.cheapest_ms == 9.0
    assert PathPolicy(PROGRESSIVE, (0, 1, 2, 3, 4)).budget_report() is None
