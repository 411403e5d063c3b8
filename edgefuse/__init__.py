"""edgefuse: dynamic multimodal (RGB-D) fusion networks, from research to robots.

Importing this package is cheap: torch, onnxruntime, camera and ROS libraries are imported
by the modules that need them, never here.
"""

__version__ = "0.1.0"

from edgefuse.errors import EdgefuseError, MissingExtraError  # noqa: E402  (light, no deps)

__all__ = ["__version__", "EdgefuseError", "MissingExtraError"]
