"""The node's outputs as two runtime sinks (edgefuse/runtime/sinks.py), so the per-frame
step is the same `FrameProcessor.process` as `edgefuse run`:

- `TopicSink`: the mask (always), colour mask and overlay (only while subscribed), and at
  network size the scaled camera_info; its time is the frame's `post` stage;
- `FrameInfoSink`: the finished record (every stage's latency) as frame_info JSON.

Both write to an `Outlet`: the live adapters' publishers, or the bag sink's writer.
"""

from __future__ import annotations

from typing import Any, Protocol

from edgefuse.cameras.ros_messages import encode_image
from edgefuse.ros_bridge.config import MaskSize
from edgefuse.ros_bridge.messages import (ImageMessage, InfoMessage, MaskEncoder, Topic, frame_info_json,
                                          header_of)
from edgefuse.runtime.sinks import FrameOutput


class Outlet(Protocol):
    def publish(self, topic: Topic, message: Any) -> None:
        """Send one message (ImageMessage, InfoMessage, str, DiagnosticsMessage)."""

    def subscribed(self, topic: Topic) -> bool:
        """Someone listens (lazy outputs are computed only then)."""

    def now_ns(self) -> int | None:
        """The clock publishing delays are measured on (ROS time); None offline."""


class TopicSink:
    """Mask images (and camera_info at network size) for each frame."""

    def __init__(self, encoder: MaskEncoder, outlet: Outlet) -> None:
        self.encoder = encoder
        self.outlet = outlet

    def write(self, out: FrameOutput) -> None:
        enc, outlet = self.encoder, self.outlet
        header = header_of(out.frame)
        small, resize = enc.plan(out)
        values = resize(small)
        outlet.publish(Topic.MASK, ImageMessage(header, encode_image(values, "mono8")))
        now = outlet.now_ns()
        if now is not None:   # input stamp -> mask on the wire (REFERENCE: "delay from real time")
            out.record["publish_delay_ms"] = round((now - header.stamp_ns) / 1e6, 3)
        sent = [Topic.MASK]
        wanted = [t for t in (Topic.MASK_COLOR, Topic.OVERLAY) if outlet.subscribed(t)]
        if wanted:
            colors = enc.colors(small, resize)
            if Topic.MASK_COLOR in wanted:
                outlet.publish(Topic.MASK_COLOR, ImageMessage(header, encode_image(colors, "rgb8")))
            if Topic.OVERLAY in wanted:
                blended = enc.overlay(colors, enc.background(out, values.shape[:2]))
                outlet.publish(Topic.OVERLAY, ImageMessage(header, encode_image(blended, "rgb8")))
            sent += wanted
        if enc.mask_size is MaskSize.NETWORK:
            info = enc.camera_info(out.frame, (values.shape[0], values.shape[1]))
            if info is not None:
                outlet.publish(Topic.CAMERA_INFO, InfoMessage(header, info))
                sent.append(Topic.CAMERA_INFO)
        out.record["outputs"] = [t.value for t in sent]   # which lazy outputs this frame fed

    def close(self) -> None:
        pass


class FrameInfoSink:
    """The frame's record as JSON, after every stage's latency is in it."""

    final_record = True

    def __init__(self, outlet: Outlet) -> None:
        self.outlet = outlet

    def write(self, out: FrameOutput) -> None:
        self.outlet.publish(Topic.FRAME_INFO, frame_info_json(out.record))

    def close(self) -> None:
        pass
