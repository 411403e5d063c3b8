"""register_depth against ground truth: the synthetic renderer draws one room from two poses.

Camera A (the depth camera) and camera B (colour) differ by a known rotation, a 5 cm
baseline and their intrinsics; registering A's depth into B must give B's own rendered
depth within 1% on at least 95% of the pixels valid in both (issue 11).
"""

from __future__ import annotations

import numpy as np
import pytest

import open3d  # noqa: F401 - a dev extra (make test installs it): missing, this fails
import cv2

from edgefuse.cameras.base import Intrinsics  # noqa: E402
from edgefuse.cameras.registration import DepthRegistrar, Extrinsics, register_depth  # noqa: E402
from edgefuse.errors import ConfigError  # noqa: E402

SIZE = (240, 320)
K_DEPTH = {"fx": 290.0, "fy": 290.0, "cx": 160.0, "cy": 120.0, "width": 320, "height": 240}
K_COLOR = {"fx": 310.0, "fy": 308.0, "cx": 158.0, "cy": 123.0, "width": 320, "height": 240}
R = cv2.Rodrigues(np.array([0.02, -0.04, 0.01]))[0]
T = np.array([0.05, 0.01, -0.02])


def _cv(k: dict) -> Intrinsics:
    """The renderer puts pixel centres at u + 0.5; OpenCV / ROS at u: shift the principal point."""
    return Intrinsics(k["fx"], k["fy"], k["cx"] - 0.5, k["cy"] - 0.5, k["width"], k["height"])


@pytest.fixture(scope="module")
def two_poses():
    from edgefuse.data.synth import SceneRenderer

    renderer = SceneRenderer(3, SIZE, threads=1)
    out = []
    for index in range(3):
        scene, _ = renderer.scene(index)
        # B relative to A: X_b = R X_a + T  =>  world-from-B rotation and position
        rot_b = scene.cam_rot @ R.T
        pos_b = scene.cam_pos - rot_b @ T
        a = renderer.true_depth(index, scene.cam_rot, scene.cam_pos, K_DEPTH)
        b = renderer.true_depth(index, rot_b, pos_b, K_COLOR)
        out.append((a, b))
    return out


def _agreement(registered: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    both = (registered > 0) & (truth > 0)
    rel = np.abs(registered[both].astype(np.float64) - truth[both]) / truth[both]
    return float(np.mean(rel < 0.01)), float(both.mean())


@pytest.mark.parametrize("method", ["numpy", "open3d"])
def test_registration_matches_the_second_pose(two_poses, method):
    ext = Extrinsics.from_rt(R, T)
    for a, b in two_poses:
        reg = register_depth(a, _cv(K_DEPTH), _cv(K_COLOR), ext, method=method)
        assert reg.shape == SIZE and reg.dtype == np.uint16
        within, valid = _agreement(reg, b)
        assert valid > 0.6            # most of B is filled (holes only where A saw nothing)
        assert within >= 0.95, (method, within)


def test_wrong_extrinsics_fail_the_same_check(two_poses):
    """The check can fail: without the baseline and rotation the depth lands on the wrong pixels."""
    a, b = two_poses[0]
    within, _ = _agreement(register_depth(a, _cv(K_DEPTH), _cv(K_COLOR), np.eye(4)), b)
    assert within < 0.9


def test_z_buffer_keeps_the_nearest_surface():
    k = Intrinsics(100.0, 100.0, 10.0, 10.0, 21, 21)
    depth = np.full((21, 21), 3000, np.uint16)
    depth[8:13, 8:13] = 1000                      # a near square in front of a far wall
    # moving the colour camera sideways makes the near square cover part of the wall
    reg = register_depth(depth, k, k, Extrinsics.from_rt(np.eye(3), [0.02, 0.0, 0.0]))
    # near points shift by f*b/Z = 2 px, far ones by ~0.67 px (rounded to 1)
    assert np.all(reg[8:13, 10:15] == 1000)
    assert reg[10, 3] == 3000 and reg[10, 0] == 0  # the wall moved 1 px: column 0 is a hole


def test_distortion_free_coefficients_change_nothing_and_magnified_depth_is_filled():
    kd = Intrinsics(80.0, 80.0, 39.5, 29.5, 80, 60)
    kc = Intrinsics(160.0, 160.0, 79.5, 59.5, 160, 120)
    depth = np.full((60, 80), 1500, np.uint16)
    plain = register_depth(depth, kd, kc, np.eye(4))
    zero = register_depth(depth, kd, kc, np.eye(4), depth_distortion=[0, 0, 0, 0, 0], color_distortion=[0] * 5)
    np.testing.assert_array_equal(plain, zero)
    # a 2x larger colour image: each depth pixel covers a 2x2 block, no grid of holes
    assert DepthRegistrar(kd, kc, np.eye(4)).splat == 2
    assert np.mean(plain == 1500) > 0.97


def test_lens_distortion_is_applied_by_opencv():
    """A distorted colour camera: the point at a known 3D position lands where cv2.projectPoints says."""
    kd = Intrinsics(200.0, 200.0, 49.5, 49.5, 100, 100)
    kc = Intrinsics(200.0, 200.0, 49.5, 49.5, 100, 100)
    dist = [-0.3, 0.1, 0.0, 0.0, 0.0]
    depth = np.zeros((100, 100), np.uint16)
    depth[90, 90] = 2000
    reg = register_depth(depth, kd, kc, np.eye(4), color_distortion=dist)
    x = np.array([[(90 - 49.5) / 200.0 * 2.0, (90 - 49.5) / 200.0 * 2.0, 2.0]])
    uv, _ = cv2.projectPoints(x, np.zeros(3), np.zeros(3),
                              np.array([[200.0, 0, 49.5], [0, 200.0, 49.5], [0, 0, 1]]), np.array(dist))
    u, v = np.floor(uv.ravel() + 0.5).astype(int)
    assert reg[v, u] == 2000 and np.count_nonzero(reg) == 1 and (u, v) != (90, 90)


def test_bad_inputs():
    k = Intrinsics(100.0, 100.0, 10.0, 10.0, 21, 21)
    with pytest.raises(ConfigError, match="calibrate at the resolution you stream"):
        register_depth(np.zeros((10, 10), np.uint16), k, k, np.eye(4))
    with pytest.raises(ConfigError, match="not a rotation"):
        Extrinsics.from_rt(np.diag([1.0, 1.0, 2.0]), [0, 0, 0])
    with pytest.raises(ConfigError, match="unknown; valid: numpy, open3d"):
        DepthRegistrar(k, k, np.eye(4), method="cuda")
