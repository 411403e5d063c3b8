"""`edgefuse ros --check` against real ROS graphs: ROS 1 (a roscore of our own, rospy) and ROS 2
(Jazzy's rclpy with Fast DDS from PyPI wheels, in .venv-ros2). One camera process
(check_camera.py) publishes a healthy set of inputs and one set per staged fault; each test
points the check at one set, as a user would, with the node's parameters or remaps, and reads
its exit code and its table / verdicts.

ROS 2 processes run on loopback only, in a DDS domain of this test run (the `ros2_env`
fixture, ros2_helpers.py); the ROS 2 tests fail, never skip, where .venv-ros2 is missing.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from ros1_helpers import stop

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SECONDS = "2"
# realsense-ros default topic names the node uses (config.py): remapped in the healthy test.
DEFAULTS = {"1": ("/camera/color/image_raw", "/camera/aligned_depth_to_color/image_raw", "/camera/color/camera_info"),
            "2": ("/camera/camera/color/image_raw", "/camera/camera/aligned_depth_to_color/image_raw",
                  "/camera/camera/color/camera_info")}


class Camera:
    def __init__(self, python: str, ros: str, env: dict, log: Path) -> None:
        self._log = open(log, "w+")
        self.proc = subprocess.Popen([python, str(HERE / "check_camera.py"), "--ros", ros], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while "ready" not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the check camera did not start: {self.output()[-3000:]}")
            time.sleep(0.1)

    def output(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> None:
        stop(self.proc)
        self._log.close()


@pytest.fixture(scope="module")
def ros1_camera(ros1_env, tmp_path_factory):
    cam = Camera(sys.executable, "1", ros1_env, tmp_path_factory.mktemp("cam1") / "camera.log")
    yield ros1_env
    cam.stop()


@pytest.fixture(scope="module")
def ros2_camera(ros2_env, tmp_path_factory):
    cam = Camera(ros2_env["ROS2_PYTHON"], "2", ros2_env, tmp_path_factory.mktemp("cam2") / "camera.log")
    yield ros2_env
    cam.stop()


ROS = [pytest.param("1", marks=pytest.mark.ros1, id="ros1"), pytest.param("2", marks=pytest.mark.ros2, id="ros2")]


@pytest.fixture(params=ROS)
def ros(request):
    """(ROS version, the environment with its camera running)."""
    fixture = {"1": "ros1_camera", "2": "ros2_camera"}[request.param]
    return request.param, request.getfixturevalue(fixture)


def params(version: str, **values: str) -> list[str]:
    """The node's parameters as a user passes them: ROS 1 `_name:=v`, ROS 2 `--ros-args -p name:=v`."""
    if version == "1":
        return [f"_{k}:={v}" for k, v in values.items()]
    return ["--ros-args", *(a for k, v in values.items() for a in ("-p", f"{k}:={v}"))]


def topics(version: str, prefix: str, **more: str) -> list[str]:
    return params(version, rgb_topic=f"/{prefix}/color/image_raw", depth_topic=f"/{prefix}/depth/image_raw",
                  camera_info_topic=f"/{prefix}/color/camera_info", **more)


def check(ros, *args: str) -> subprocess.CompletedProcess:
    version, env = ros
    python = sys.executable if version == "1" else env["ROS2_PYTHON"]
    cmd = [python, "-m", "edgefuse.cli.main", "ros", "--check", "--seconds", SECONDS, "--ros", version, *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    return out


def line_of(out: subprocess.CompletedProcess, start: str) -> str:
    """The output line starting with `start` (the whole output in the failure otherwise)."""
    found = [x for x in out.stdout.splitlines() if x.startswith(start)]
    assert found, f"no line starting {start!r} in:\n{out.stdout}\n{out.stderr[-2000:]}"
    return found[0]


def test_healthy_camera_passes(ros):
    version = ros[0]
    c, d, i = DEFAULTS[version]
    remap = [f"{c}:=/ok/color/image_raw", f"{d}:=/ok/depth/image_raw", f"{i}:=/ok/color/camera_info"]
    out = check(ros, *(remap if version == "1" else ["--ros-args", *(a for r in remap for a in ("-r", r))]))
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "/ok/color/image_raw" in text and "/ok/depth/image_raw" in text and "/ok/color/camera_info" in text
    assert "rgb8" in text and "16UC1" in text and "128x96" in text and "camera_color_optical_frame" in text
    assert "ok: the node would run well" in text and "problem" not in text
    pairs = line_of(out, "colour/depth pairs")
    # One colour image at either end of the listening window may miss its depth.
    share = int(pairs.split("(")[1].split("%")[0])
    assert share >= 90 and "offset 0.0 ms" in pairs, pairs
    assert ("best_effort -> best_effort" if version == "2" else "TCPROS") in text


def test_wrong_topic_lists_the_image_topics(ros):
    out = check(ros, *params(ros[0], rgb_topic="/nothing/image_raw", depth_topic="/ok/depth/image_raw",
                             camera_info_topic="/ok/color/camera_info"))
    assert out.returncode == 1, out.stdout + out.stderr
    line = line_of(out, "problem /nothing/image_raw")
    assert "no publisher" in line
    fix = out.stdout.split(line, 1)[1].splitlines()[1]
    assert "/ok/color/image_raw" in fix and "/unaligned/depth/image_raw" in fix and "rgb_topic" in fix
    assert "/ok/color/camera_info" not in fix        # image topics only


def test_unaligned_depth_names_the_aligned_topic(ros):
    out = check(ros, *topics(ros[0], "unaligned"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "depth is not aligned to colour: frame_id 'camera_depth_optical_frame'" in out.stdout
    assert "size 64x48 vs colour's 128x96" in out.stdout
    assert DEFAULTS[ros[0]][1] in out.stdout and "register_depth" in out.stdout


def test_zero_stamps(ros):
    out = check(ros, *topics(ros[0], "zero"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "problem /zero/color/image_raw" in out.stdout and "header.stamp 0" in out.stdout


def test_depth_in_metres_on_16uc1(ros):
    out = check(ros, *topics(ros[0], "metres"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "problem /metres/depth/image_raw: 16UC1 depth has median 3" in out.stdout


def test_camera_info_of_another_size(ros):
    out = check(ros, *topics(ros[0], "info"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "camera_info is 256x192 but the colour image is 128x96" in out.stdout


@pytest.mark.ros2
def test_reliable_request_against_best_effort_camera(ros2_camera):
    out = check(("2", ros2_camera), *topics("2", "ok", input_qos="reliable"))
    assert out.returncode == 1, out.stdout + out.stderr
    line = line_of(out, "problem /ok/color/image_raw")
    assert "requests reliable but /check_camera offer(s) best_effort: they never connect" in line
    assert "got 0 messages" in line
    assert "best_effort -> reliable" in out.stdout          # the table's QoS column
    assert "/ok/color/camera_info" not in " ".join(x for x in out.stdout.splitlines() if x.startswith("problem"))


def test_bad_seconds_is_a_usage_error(ros1_env):
    out = subprocess.run([sys.executable, "-m", "edgefuse.cli.main", "ros", "--check", "--seconds", "0", "--ros", "1"],
                         env=ros1_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--seconds 0" in out.stderr and "Traceback" not in out.stderr


def test_wrong_type_names_it_and_the_image_topics(ros):
    out = check(ros, *params(ros[0], rgb_topic="/info/color/camera_info", depth_topic="/ok/depth/image_raw",
                             camera_info_topic="/ok/color/camera_info"))
    assert out.returncode == 1, out.stdout + out.stderr
    line = line_of(out, "problem /info/color/camera_info: colour topic")
    assert "has type sensor_msgs/CameraInfo, the node needs sensor_msgs/Image" in line
    assert "/ok/color/image_raw" in out.stdout.split(line, 1)[1].splitlines()[1]


def test_inputs_on_one_topic_are_refused_like_the_node_does(ros):
    out = check(ros, *params(ros[0], rgb_topic="/ok/color/image_raw", camera_info_topic="/ok/color/image_raw"))
    assert out.returncode == 2 and "must differ" in out.stderr, out.stdout + out.stderr


def test_unknown_parameter_is_refused_like_the_node_does(ros):
    out = check(ros, *params(ros[0], rgb_topik="/ok/color/image_raw"))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "unknown key(s) 'rgb_topik'" in out.stderr and "rgb_topic" in out.stderr


@pytest.mark.ros1
def test_ros1_reads_the_named_nodes_parameters(ros1_camera):
    """A launch file sets the node's private parameters (/left/... for __name:=left): the check
    reads them from the master, so it judges the topics the node would use."""
    for key, topic in (("rgb_topic", "/metres/color/image_raw"), ("depth_topic", "/metres/depth/image_raw"),
                       ("camera_info_topic", "/metres/color/camera_info")):
        subprocess.run(["rosparam", "set", f"/left/{key}", topic], env=ros1_camera, check=True)
    out = check(("1", ros1_camera), "__name:=left")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "problem /metres/depth/image_raw: 16UC1 depth has median 3" in out.stdout
