"""Depth sensor model: zero = no measurement, noise grows with distance, holes where a D435 has them."""

import numpy as np
import pytest

from edgefuse.data.synth.sensor import depth_sigma_m, occlusion_shadow, simulate_depth

SHAPE = (60, 80)
FX = 100.0


def _measure(z, seed=0, ir=0.0, lum=0.3, cos=1.0, **kw):
    rng = np.random.default_rng(seed)
    ones = np.ones(SHAPE)
    return simulate_depth(z, ir * ones, lum * ones, cos * ones, FX, rng, **kw)


def test_noise_grows_roughly_quadratically_with_distance():
    errs = {}
    for z in (1.0, 2.0, 4.0):
        d = _measure(np.full(SHAPE, z))
        valid = d > 0
        assert valid.mean() > 0.9
        errs[z] = np.std(d[valid] / 1000.0 - z)
    assert errs[1.0] < errs[2.0] < errs[4.0]
    assert errs[4.0] / errs[2.0] > 2.5  # quadratic: x4 ideally, x2 would be linear
    assert errs[2.0] == pytest.approx(depth_sigma_m(2.0), rel=0.5)


def test_out_of_range_and_misses_are_zero():
    z = np.full(SHAPE, 2.0)
    z[:, :10] = np.inf        # no surface
    z[:, 10:20] = 0.1         # closer than the minimum range
    z[:, 20:30] = 9.0         # beyond the maximum range
    d = _measure(z)
    assert d.dtype == np.uint16
    assert (d[:, :30] == 0).all()
    assert (d[:, 40:] > 0).mean() > 0.9


def test_glass_and_dark_surfaces_lose_depth():
    plane = np.full(SHAPE, 2.0)
    assert (_measure(plane, ir=0.7) == 0).mean() > 0.4
    assert (_measure(plane, lum=0.001) == 0).mean() > 0.4
    assert (_measure(plane, cos=0.05) == 0).mean() > 0.5  # grazing angle
    assert (_measure(plane) == 0).mean() < 0.05


def test_occlusion_shadow_left_of_foreground_and_edge_holes():
    z = np.full(SHAPE, 3.0)
    z[:, 40:60] = 1.0  # a box in front of a wall
    shadow = occlusion_shadow(z, FX)
    # the second imager sits to the right: background just left of the box is hidden,
    # over about f * b * (1/z_near - 1/z_far) pixels
    width = FX * 0.05 * (1 / 1.0 - 1 / 3.0)
    cols = np.where(shadow[30])[0]
    assert cols.size > 0 and cols.max() < 40 and cols.min() >= 40 - np.ceil(width) - 1
    assert not shadow[:, 60:].any() and not shadow[:, :30].any()
    d = _measure(z)
    assert (d[:, 38:40] == 0).mean() > 0.9  # the shadow is ~3 px wide here


def test_measurements_are_deterministic_given_the_generator():
    z = np.linspace(1, 5, SHAPE[1])[None].repeat(SHAPE[0], 0)
    np.testing.assert_array_equal(_measure(z, seed=3), _measure(z, seed=3))
    assert (_measure(z, seed=3) != _measure(z, seed=4)).any()
