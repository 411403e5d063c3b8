"""The node's options: one typed dataclass, filled from ROS parameters (the field names are
the private parameter names, `~rgb_topic` in ROS 1, `rgb_topic` in ROS 2) and from the
`edgefuse ros` flags, which win. An unknown parameter is an error listing the valid ones,
so a typo in a launch file never passes silently."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgefuse.config import from_dict
from edgefuse.errors import ConfigError

if TYPE_CHECKING:
    from edgefuse.runtime.setup import RuntimeConfig
    from edgefuse.runtime.stages import StageConfig


class MaskSize(str, enum.Enum):
    CAMERA = "camera"      # resized back to the colour image (nearest neighbour)
    NETWORK = "network"    # the bundle's input size; `camera_info` is published scaled to it


class InputQos(str, enum.Enum):
    """ROS 2 subscriptions' reliability. `auto` (default) subscribes reliable when every
    publisher of the topic offers reliable (realsense-ros' default) and best effort otherwise,
    as rosbag2 and `ros2 topic echo` adapt to publishers: a best-effort reader of a reliable
    640x480 camera loses most frames' fragments in Fast DDS (issue 16, docs/ros2.md), a
    reliable reader of a best-effort camera never matches. `sensor_data`: always best effort
    (REP-2003); `reliable`: always reliable. Keep last 5 in every case."""

    AUTO = "auto"
    SENSOR_DATA = "sensor_data"
    RELIABLE = "reliable"

    def reliable(self, offered: list[bool]) -> bool:
        """Subscribe reliable, given whether each publisher now on the topic offers reliable."""
        if self is InputQos.AUTO:
            return bool(offered) and all(offered)
        return self is InputQos.RELIABLE


class OutputQos(str, enum.Enum):
    """ROS 2 publishers: reliable (REP-2003: what rviz / rqt expect) or best effort."""

    RELIABLE = "reliable"
    BEST_EFFORT = "best_effort"


# realsense-ros names the topics of its ROS 2 wrapper /camera/camera/...: the ROS 2 node's defaults.
ROS2_TOPICS = {"rgb_topic": "/camera/camera/color/image_raw",
               "depth_topic": "/camera/camera/aligned_depth_to_color/image_raw",
               "camera_info_topic": "/camera/camera/color/camera_info"}

# Parameters the node itself sets (latched outputs) or that ROS declares on every node:
# present on the parameter server, never options. The ROS 2 adapter adds whatever else its
# distribution declares on a bare node (Jazzy: start_type_description_service), so a
# parameter a future distribution adds never breaks start-up (issue 16).
NOT_OPTIONS = frozenset({"classes", "use_sim_time"})

# Options a running node takes (ROS 2: `ros2 param set`, a SetParameters call): each takes
# effect on the next frame. The others choose what is loaded and subscribed at start-up.
LIVE = frozenset({"budget_ms", "min_depth_valid", "depth_timeout", "overlay_alpha", "sync_slop"})


@dataclass
class NodeConfig:
    """Everything the node takes. Defaults: realsense-ros ROS 1 topic names."""

    bundle: str = ""
    backend: str = "ort"
    budget_ms: float = 0.0              # 0: no latency budget
    threads: int = 0                    # ONNX Runtime intra-op threads (0: its default)
    providers: str = "auto"             # ort: ONNX Runtime execution providers
    share_weights: bool = True          # ort: one copy of the weights for every session
    on_mismatch: str = "refuse"         # tensorrt: an engine built elsewhere: refuse or rebuild
    checkpoint: str = ""                # torch: the exporting checkpoint
    min_depth_valid: float = 0.5
    rgb_topic: str = "/camera/color/image_raw"
    depth_topic: str = "/camera/aligned_depth_to_color/image_raw"   # "": RGB only
    camera_info_topic: str = "/camera/color/camera_info"
    sync_slop: float = 0.02             # s: colour and depth further apart are not a pair
    depth_timeout: float = 1.0          # s without depth: RGB-only frames, no waiting for depth
    mask_size: MaskSize = MaskSize.CAMERA
    overlay_alpha: float = 0.5
    diagnostics_period: float = 1.0     # s between /diagnostics messages
    warn_period: float = 5.0            # s: a warning cause is logged at most once per period
    no_input_error: float = 3.0         # s without a colour image: diagnostics ERROR
    input_timeout: float = 20.0         # s at start-up for the colour topic to deliver (0: wait forever)
    buff_size: int = 1 << 24            # ROS 1: socket buffer of image subscriptions (bytes)
    input_qos: InputQos = InputQos.AUTO
    output_qos: OutputQos = OutputQos.RELIABLE
    # A camera_info YAML (`edgefuse calibrate`, or any ROS calibration file): its colour
    # intrinsics replace camera_info's. With register_depth, depth_topic carries raw depth
    # in the depth camera's image (e.g. /camera/depth/image_rect_raw) and the file's
    # depth_to_color registers it to colour here (issue 11).
    calibration: str = ""
    register_depth: bool = False
    # The per-frame step pipelined (decode/prepare and publish overlap inference) or in sequence;
    # opencv_threads: OpenCV's pool while pipelined (runtime/stages.py StageConfig).
    pipeline: bool = True
    opencv_threads: int = 1

    def __post_init__(self) -> None:
        positive = {"sync_slop": self.sync_slop, "depth_timeout": self.depth_timeout,
                    "diagnostics_period": self.diagnostics_period, "warn_period": self.warn_period,
                    "no_input_error": self.no_input_error}
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"parameter {name} must be > 0, got {value}")
        for name, value in {"budget_ms": self.budget_ms, "input_timeout": self.input_timeout,
                            "threads": self.threads, "opencv_threads": self.opencv_threads}.items():
            if value < 0:
                raise ConfigError(f"parameter {name} must be >= 0, got {value}")
        if not 0.0 <= self.min_depth_valid <= 1.0:
            raise ConfigError(f"parameter min_depth_valid must be in [0, 1], got {self.min_depth_valid}")
        if not 0.0 <= self.overlay_alpha <= 1.0:
            raise ConfigError(f"parameter overlay_alpha must be in [0, 1], got {self.overlay_alpha}")
        if not self.rgb_topic:
            raise ConfigError("parameter rgb_topic is empty; name the colour image topic")
        named = [t for t in (self.rgb_topic, self.depth_topic, self.camera_info_topic) if t]
        if len(set(named)) < len(named):
            # rclpy cannot even subscribe twice to one topic with two types (RCLError).
            raise ConfigError(f"rgb_topic, depth_topic and camera_info_topic must differ, got {', '.join(named)}; "
                              "give each input its own topic")
        if self.register_depth and not self.calibration:
            raise ConfigError("parameter register_depth needs a calibration file with depth_to_color "
                              "(`edgefuse calibrate ... --depth-images DIR`); pass --calibration camera.yaml")
        if self.register_depth and not self.depth_topic:
            raise ConfigError("parameter register_depth is set but depth_topic is empty; name the raw depth topic")
        if self.buff_size < 1 << 16:
            raise ConfigError(f"parameter buff_size {self.buff_size} is too small for images; use >= 65536")

    @property
    def use_depth(self) -> bool:
        return bool(self.depth_topic)

    @property
    def budget(self) -> float | None:
        return self.budget_ms if self.budget_ms > 0 else None

    @classmethod
    def from_params(cls, params: dict[str, Any], overrides: dict[str, Any] | None = None,
                    defaults: dict[str, Any] | None = None, ignore: frozenset[str] = frozenset()) -> "NodeConfig":
        """From ROS parameters (the node's private ones) and the command line's `overrides`;
        `defaults` replace the dataclass's own (ROS2_TOPICS for the ROS 2 node); `ignore`:
        more parameters that are the ROS client's own, not options."""
        skip = NOT_OPTIONS | ignore
        given = dict(defaults or {})
        given.update({k: v for k, v in params.items() if k not in skip and not k.startswith("qos_overrides")})
        given.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return from_dict(cls, given, where="edgefuse node parameters")

    def with_live(self, changes: dict[str, Any]) -> "NodeConfig":
        """This config with live options changed, validated like a new one. A change to an
        option that is read only at start-up is a ConfigError saying so."""
        fixed = sorted(set(changes) - LIVE)
        if fixed:
            raise ConfigError(f"{', '.join(fixed)} cannot change while the node runs (it is read at start-up: "
                              f"restart the node with the new value); live: {', '.join(sorted(LIVE))}")
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values.update(changes)
        return from_dict(type(self), values, where="edgefuse node parameters")

    def runtime_config(self) -> "RuntimeConfig":
        """The runtime set-up `edgefuse run` and `edgefuse bench` build from their flags
        (edgefuse.runtime.setup), from these parameters."""
        from edgefuse.export.tensorrt_build import parse_on_mismatch
        from edgefuse.runtime.setup import RuntimeConfig

        on_mismatch = parse_on_mismatch(self.on_mismatch, flag="parameter on_mismatch").value
        return RuntimeConfig(bundle=self.bundle, backend=self.backend, threads=self.threads,
                             providers=self.providers, share_weights=self.share_weights,
                             on_mismatch=on_mismatch, checkpoint=self.checkpoint or None,
                             budget_ms=self.budget, min_depth_valid=self.min_depth_valid)

    def stage_config(self) -> "StageConfig":
        """How the per-frame step runs and its thread split (runtime/stages.py)."""
        from edgefuse.runtime.stages import StageConfig

        return StageConfig(pipeline=self.pipeline, ort_threads=self.threads, opencv_threads=self.opencv_threads)
