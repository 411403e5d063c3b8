"""Frame sources: RealSense live and recordings, ROS bags, dataset folders, synthetic scenes.

One interface (docs/architecture.md "Cameras"): `open_source(spec, **options)` returns a
`FrameSource` that yields aligned `Frame`s (rgb uint8 HxWx3, depth uint16 mm HxW aligned to
colour, timestamp, intrinsics). Importing this package is light (numpy): pyrealsense2,
rosbags and open3d are imported by the source that needs them, when it is opened.
"""

from edgefuse.cameras.base import FrameSource, SourceOptions, SourceSpec
from edgefuse.cameras.frame import Frame, FrameDecodeError, FrameError, Intrinsics, SourceDisconnected
from edgefuse.cameras.camera_info import CameraCalibration, CameraModel, load_camera_calibration
from edgefuse.cameras.health import FrameHealth, FrameIssue, validate_frame
from edgefuse.cameras.live import EndOfStream, LiveCapture
from edgefuse.cameras.registration import Extrinsics, register_depth
from edgefuse.cameras.sources import SOURCES, open_source, parse_spec

__all__ = [
    "SOURCES", "Frame", "FrameDecodeError", "FrameError", "FrameSource", "Intrinsics",
    "SourceDisconnected", "SourceOptions", "SourceSpec", "open_source", "parse_spec",
    "FrameHealth", "FrameIssue", "validate_frame", "EndOfStream", "LiveCapture",
    "CameraCalibration", "CameraModel", "load_camera_calibration", "Extrinsics", "register_depth",
]
