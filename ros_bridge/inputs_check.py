"""`edgefuse ros --check`: the node's input contract, checked without ROS and without a network.

The listeners (check_ros1.py, check_ros2.py) subscribe to the topics the node would use and
feed every message here with the time it arrived; at the end they add what the ROS graph
says (the topics that exist, each input's publishers and the QoS they offer). `report()`
turns that into one table row per input and verdicts, each with its fix. A *problem* means
the node would not run well (exit 1); a *warning* is worth knowing but does not stop it.

What is checked, and why (docs/ros-check.md has each verdict with its fix): the failures of
ROS perception nodes are mostly in their inputs — depth not aligned to colour, camera_info of
another camera or size, QoS that never matches, stamps that never pair, depth in the wrong
units, frame_ids that disagree. Messages are decoded with the node's own codec
(edgefuse.cameras.ros_messages) and paired with its own pairer (NearestPairer under
sync_slop), so the check sees what the node would see.
"""

from __future__ import annotations

import enum
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefuse.cameras.pairing import NearestPairer
from edgefuse.cameras.ros_messages import (COLOR_ENCODINGS, DEPTH_ENCODINGS, ImageFormatError, decode_color,
                                           decode_depth, header_of, info_fields)
from edgefuse.ros_bridge.config import NodeConfig

# Fast DDS's default shared-memory segment, bytes (its documentation; docs/ros2.md).
FASTDDS_SHM_SEGMENT = 512 * 1024

# realsense-ros names the depth aligned to colour like this (`align_depth.enable:=true`).
ALIGNED_DEPTH = {"1": "/camera/aligned_depth_to_color/image_raw",
                 "2": "/camera/camera/aligned_depth_to_color/image_raw"}
IMAGE_TYPE = "sensor_msgs/Image"
INFO_TYPE = "sensor_msgs/CameraInfo"
DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant")

# Plausibility limits (what a depth camera measures: ~0.1 m to a few tens of metres).
DEPTH_MM_MIN_MEDIAN = 100.0        # 16UC1 median below 10 cm: the values are metres, not mm
DEPTH_MM_MAX_MEDIAN = 50_000.0     # median beyond 50 m: 32FC1 holding mm (decoded: clipped at 65.5 m)
PAIRED_MIN = 0.9                   # share of colour images that must find depth within sync_slop
AGE_WARN_S = 0.5                   # images older than this when they arrive: queued or clocks apart
FUTURE_WARN_S = 0.05               # stamps this far ahead of our clock: clocks apart
SAMPLE_STRIDE = 4                  # every 4th pixel of every 4th row for the depth median
HISTORY = 2000                     # messages kept per topic (a minute at 30 Hz)


class Role(str, enum.Enum):
    COLOR = "colour"
    DEPTH = "depth"
    CAMERA_INFO = "camera_info"


ROLE_PARAM = {Role.COLOR: "rgb_topic", Role.DEPTH: "depth_topic", Role.CAMERA_INFO: "camera_info_topic"}
ROLE_TYPE = {Role.COLOR: IMAGE_TYPE, Role.DEPTH: IMAGE_TYPE, Role.CAMERA_INFO: INFO_TYPE}


class Level(str, enum.Enum):
    PROBLEM = "problem"     # the node would not run well: exit 1
    WARNING = "warning"     # worth knowing; the node runs


@dataclass(frozen=True)
class Offer:
    """One publisher of a topic and, on ROS 2, the QoS it offers ('' on ROS 1: TCPROS has none)."""

    node: str
    reliability: str = ""   # reliable | best_effort
    durability: str = ""    # volatile | transient_local


@dataclass(frozen=True)
class Verdict:
    level: Level
    topic: str
    what: str
    fix: str


@dataclass
class Sample:
    """What one message told us."""

    stamp_ns: int
    arrival_ns: int          # the listener's ROS clock when it arrived (now, for now - stamp)
    arrival_s: float         # a monotonic clock, for the rate
    frame_id: str
    encoding: str = ""
    size: tuple[int, int] | None = None          # (height, width)
    error: str = ""          # why the node's codec refuses it ('' when it decodes)
    depth_valid: float | None = None              # share of pixels with a measurement
    depth_median_mm: float | None = None          # median of the measured pixels, mm
    info: dict[str, Any] | None = None


@dataclass
class TopicState:
    role: Role
    topic: str                                   # the resolved name (remaps applied)
    samples: list[Sample] = field(default_factory=list)
    offers: list[Offer] | None = None            # None: the graph was not asked
    types: list[str] = field(default_factory=list)
    requested_got: int | None = None             # messages the node's own QoS received (ROS 2)


@dataclass
class Row:
    """One line of the table, as text."""

    role: str
    topic: str
    publishers: str
    type: str
    encoding: str
    size: str
    rate: str
    age: str
    jitter: str
    frame_id: str
    qos: str


@dataclass
class Pairing:
    colour: int          # colour images seen
    paired: int          # of them with a depth image within sync_slop
    median_offset_ms: float | None   # median (depth - colour) stamp of the nearest depth

    @property
    def share(self) -> float:
        return self.paired / self.colour if self.colour else 0.0


@dataclass
class Report:
    rows: list[Row]
    pairing: Pairing | None
    verdicts: list[Verdict]
    seconds: float

    @property
    def problems(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.level is Level.PROBLEM]

    @property
    def ok(self) -> bool:
        return not self.problems


def normalise_type(name: str) -> str:
    """ROS 2 spells message types sensor_msgs/msg/Image, ROS 1 sensor_msgs/Image."""
    return name.replace("/msg/", "/")


def requested_reliability(config: NodeConfig, offers: list[Offer] | tuple[Offer, ...] = ()) -> str:
    """The reliability the ROS 2 node's subscription requests from these publishers
    (ros_bridge/ros2.py: `auto` follows them)."""
    reliable = config.input_qos.reliable([o.reliability == "reliable" for o in offers])
    return "reliable" if reliable else "best_effort"


def qos_compatible(offer: Offer, requested: str) -> bool:
    """DDS request/offer matching for what the node varies: a reliable request never matches
    a best-effort offer (every other pairing connects). The node's subscriptions are
    volatile, which every durability offer satisfies."""
    return not (requested == "reliable" and offer.reliability == "best_effort")


class InputsCheck:
    """Accumulates observations of the node's inputs; `report()` judges them.

    `topics`: the resolved topic of each role the node subscribes to (no DEPTH without
    depth). `ros`: '1' or '2' (QoS exists only on ROS 2; realsense-ros topic names differ).
    """

    def __init__(self, config: NodeConfig, topics: dict[Role, str], ros: str,
                 fastdds_profile: str | None = None) -> None:
        """`fastdds_profile`: ROS 2 on Fast DDS, the profile file this environment gives
        participants ('' when none; None when not Fast DDS or not ROS 2)."""
        self.config = config
        self.ros = ros
        self.fastdds_profile = fastdds_profile
        self.topics = {role: TopicState(role, name) for role, name in topics.items()}
        self.graph_types: dict[str, list[str]] = {}      # every topic -> its types

    # --- feeding (the listeners' callbacks) -------------------------------------------------------
    def add_image(self, role: Role, msg: Any, arrival_ns: int, arrival_s: float) -> None:
        stamp, frame_id = header_of(msg)
        sample = Sample(stamp, int(arrival_ns), float(arrival_s), frame_id, str(msg.encoding),
                        (int(msg.height), int(msg.width)))
        try:
            if role is Role.COLOR:
                decode_color(msg)
            else:
                depth = decode_depth(msg)
                sample.depth_valid = np.count_nonzero(depth) / depth.size
                sampled = depth[::SAMPLE_STRIDE, ::SAMPLE_STRIDE]
                measured = sampled[sampled > 0]
                sample.depth_median_mm = float(np.median(measured)) if measured.size else None
        except ImageFormatError as exc:
            sample.error = str(exc)
        self._keep(role, sample)

    def add_info(self, msg: Any, arrival_ns: int, arrival_s: float) -> None:
        stamp, frame_id = header_of(msg)
        sample = Sample(stamp, int(arrival_ns), float(arrival_s), frame_id)
        try:
            sample.info = info_fields(msg)
            sample.size = (sample.info["height"], sample.info["width"])
        except (AttributeError, TypeError, ValueError) as exc:
            sample.error = f"unreadable camera_info ({exc})"
        self._keep(Role.CAMERA_INFO, sample)

    def _keep(self, role: Role, sample: Sample) -> None:
        samples = self.topics[role].samples
        samples.append(sample)
        if len(samples) > HISTORY:
            del samples[: len(samples) - HISTORY]

    def set_graph(self, types: dict[str, list[str]], offers: dict[str, list[Offer]],
                  requested_got: dict[Role, int] | None = None) -> None:
        """What the graph says at the end: every topic's types, each input's publishers (with
        their QoS on ROS 2), and on ROS 2 with input_qos reliable how many messages a
        subscription with the node's own QoS received."""
        self.graph_types = {t: [normalise_type(x) for x in ty] for t, ty in types.items()}
        for state in self.topics.values():
            state.types = self.graph_types.get(state.topic, [])
            state.offers = list(offers.get(state.topic, []))
            if requested_got is not None and state.role in requested_got:
                state.requested_got = requested_got[state.role]

    # --- judging --------------------------------------------------------------------------------
    def report(self, seconds: float) -> Report:
        verdicts: list[Verdict] = []
        first: dict[str, Role] = {}
        for state in self.topics.values():
            if state.topic in first:   # listened to once, as the first role naming it
                verdicts.append(Verdict(Level.PROBLEM, state.topic, f"{first[state.topic].value} and "
                                        f"{state.role.value} are the same topic",
                                        f"give each input its own topic ({', '.join(ROLE_PARAM.values())})"))
                continue
            first[state.topic] = state.role
            verdicts += self._topic_verdicts(state, seconds)
        colour = self.topics[Role.COLOR]
        depth = self.topics.get(Role.DEPTH)
        pairing = None
        if depth is not None and colour.samples and depth.samples:
            pairing = self._pairing(colour.samples, depth.samples)
            verdicts += self._pairing_verdicts(pairing)
            verdicts += self._alignment_verdicts(colour, depth)
        info = self.topics[Role.CAMERA_INFO]
        if colour.samples and info.samples:
            verdicts += self._info_verdicts(colour, info)
        verdicts += self._transport_verdicts()
        rows = [self._row(state) for state in self.topics.values()]
        order = {Level.PROBLEM: 0, Level.WARNING: 1}
        verdicts.sort(key=lambda v: order[v.level])
        return Report(rows, pairing, verdicts, seconds)

    def _transport_verdicts(self) -> list[Verdict]:
        """Fast DDS's default shared-memory segment (512 kB) is smaller than a 640x480 rgb8
        image: at camera rates frames then arrive late and in bursts, or are lost
        (docs/ros2.md, benchmarks/ros2_image_qos.py)."""
        if self.fastdds_profile != "":
            return []
        largest = max((x.size[0] * x.size[1] * COLOR_ENCODINGS.get(x.encoding, (1,))[0]
                       for s in self.topics.values() if s.role is not Role.CAMERA_INFO for x in s.samples
                       if x.size is not None), default=0)
        if largest <= FASTDDS_SHM_SEGMENT:
            return []
        topic = self.topics[Role.COLOR].topic
        return [Verdict(Level.WARNING, topic, f"images of {largest / 1e3:.0f} kB on Fast DDS's default transports "
                                              f"(shared-memory segment {FASTDDS_SHM_SEGMENT // 1024} kB): frames "
                                              "arrive late and in bursts, or are lost, at camera rates",
                        "export FASTRTPS_DEFAULT_PROFILES_FILE=<edgefuse_ros share>/config/"
                        "fastdds_shm_large_images.xml for the camera driver and the node")]

    def roles_to_subscribe(self) -> dict[Role, str]:
        """One subscription per topic: a topic named for two roles (two message types) is
        listened to as the first; rclpy refuses a second subscription of another type."""
        seen: dict[str, Role] = {}
        for role, state in self.topics.items():
            seen.setdefault(state.topic, role)
        return {role: topic for topic, role in seen.items()}

    def image_topics(self) -> list[str]:
        """The image topics that exist (for 'no publisher' / 'wrong type')."""
        return sorted(t for t, types in self.graph_types.items() if IMAGE_TYPE in types)

    def _where(self, role: Role) -> str:
        return f"set {ROLE_PARAM[role]} (parameter or remap) to it"

    def _topic_verdicts(self, s: TopicState, seconds: float) -> list[Verdict]:
        P, W = Level.PROBLEM, Level.WARNING
        want = ROLE_TYPE[s.role]
        out: list[Verdict] = []
        wrong_type = [t for t in s.types if t != want]
        if wrong_type and want not in s.types:
            existing = self._existing(want)
            return [Verdict(P, s.topic, f"{s.role.value} topic has type {', '.join(wrong_type)}, the node needs {want}",
                            f"{want} topics that exist: {existing}; {self._where(s.role)}")]
        if not s.samples:
            if s.offers is not None and not s.offers:
                return [Verdict(P, s.topic, f"no publisher on the {s.role.value} topic",
                                f"{want} topics that exist: {self._existing(want)}; start the camera driver, or "
                                f"{self._where(s.role)}")]
            level = W if s.role is Role.CAMERA_INFO else P
            return [Verdict(level, s.topic, f"{len(s.offers or [])} publisher(s) but no message in {seconds:g} s",
                            "the driver publishes nothing (stalled, or lazy until subscribed and not started "
                            "yet); check it with `rostopic hz` / `ros2 topic hz`")]
        out += self._qos_verdicts(s)
        errors = [x.error for x in s.samples if x.error]
        if errors:
            out.append(Verdict(P, s.topic, f"{len(errors)} of {len(s.samples)} messages the node cannot use: "
                                           f"{errors[0]}", self._encoding_fix(s.role)))
        out += self._stamp_verdicts(s)
        if s.role is Role.DEPTH:
            out += self._depth_verdicts(s)
        if s.role is Role.COLOR and not s.samples[-1].frame_id:
            out.append(Verdict(W, s.topic, "colour images have an empty frame_id; the masks carry it unchanged",
                               "set the camera's frame_id (TF lookups on the masks need it)"))
        return out

    def _existing(self, want: str) -> str:
        found = sorted(t for t, types in self.graph_types.items() if want in types)
        return ", ".join(found) if found else "none"

    def _encoding_fix(self, role: Role) -> str:
        if role is Role.COLOR:
            return f"publish colour as {', '.join(COLOR_ENCODINGS)} with step >= width * bytes per pixel"
        if role is Role.DEPTH:
            return f"publish depth as {', '.join(DEPTH_ENCODINGS)} (REP 118: 16UC1 mm, 32FC1 m)"
        return "publish a complete sensor_msgs/CameraInfo"

    def _qos_verdicts(self, s: TopicState) -> list[Verdict]:
        if self.ros != "2" or not s.offers:
            return []
        requested = requested_reliability(self.config, s.offers)
        refused = [o for o in s.offers if not qos_compatible(o, requested)]
        if not refused:
            lossy = [o for o in s.offers if o.reliability == "reliable"]
            if requested == "best_effort" and lossy and s.role is not Role.CAMERA_INFO:
                return [Verdict(Level.WARNING, s.topic, f"the node requests best_effort from a reliable camera "
                                                        f"({', '.join(o.node for o in lossy)}): Fast DDS loses "
                                                        "fragments of large images to a best-effort reader",
                                "use input_qos: auto (the default: reliable when the camera is)")]
            return []
        names = ", ".join(o.node for o in refused)
        got = "" if s.requested_got is None else f" (a subscription with the node's QoS got {s.requested_got} messages)"
        level = Level.PROBLEM if len(refused) == len(s.offers) else Level.WARNING
        return [Verdict(level, s.topic, f"the node requests {requested} but {names} offer(s) "
                                        f"{refused[0].reliability}: they never connect{got}",
                        "use input_qos: auto (the default: follows the camera) or sensor_data (best effort "
                        "receives reliable and best-effort cameras), or make the camera publish reliable")]

    def _stamp_verdicts(self, s: TopicState) -> list[Verdict]:
        P, W = Level.PROBLEM, Level.WARNING
        stamps = [x.stamp_ns for x in s.samples]
        zero = sum(1 for t in stamps if t == 0)
        if zero:
            return [Verdict(P, s.topic, f"{zero} of {len(stamps)} messages have header.stamp 0",
                            "the driver must stamp each message with its capture time; the node pairs colour and "
                            "depth by stamp and copies it to the masks")]
        out = []
        if s.role is not Role.CAMERA_INFO and len(stamps) > 1:
            back = sum(1 for a, b in zip(stamps, stamps[1:]) if b <= a)
            if back:
                out.append(Verdict(P, s.topic, f"{back} stamps repeat or go backwards",
                                   "each image needs a new, increasing capture stamp (a driver re-stamping with a "
                                   "coarse clock, or two publishers on one topic?)"))
        ages = [(x.arrival_ns - x.stamp_ns) * 1e-9 for x in s.samples]
        age = statistics.median(ages)
        if s.role is not Role.CAMERA_INFO and age > AGE_WARN_S:
            out.append(Verdict(W, s.topic, f"images arrive {age:.2f} s after their stamp (median)",
                               "a queue builds up before the node, or the camera's clock differs from this one "
                               "(sync them with chrony / PTP; with a bag, use_sim_time)"))
        elif s.role is not Role.CAMERA_INFO and age < -FUTURE_WARN_S:
            out.append(Verdict(W, s.topic, f"stamps are {-age:.2f} s in the future of this machine's clock",
                               "the camera's clock differs from this one: sync them with chrony / PTP"))
        return out

    def _depth_verdicts(self, s: TopicState) -> list[Verdict]:
        good = [x for x in s.samples if not x.error and x.depth_valid is not None]
        if not good:
            return []
        enc = good[-1].encoding
        valid = statistics.median(x.depth_valid for x in good)
        medians = [x.depth_median_mm for x in good if x.depth_median_mm is not None]
        out = []
        if medians:
            mm = statistics.median(medians)
            if enc != "32FC1" and mm < DEPTH_MM_MIN_MEDIAN:
                out.append(Verdict(Level.PROBLEM, s.topic, f"{enc} depth has median {mm:g}: that is metres in an "
                                   f"integer image ({enc} is millimetres, REP 118)",
                                   "publish 16UC1 in millimetres, or 32FC1 in metres"))
            elif enc == "32FC1" and mm > DEPTH_MM_MAX_MEDIAN:
                out.append(Verdict(Level.PROBLEM, s.topic, f"32FC1 depth has median >= {mm / 1000:g}: that is "
                                   "millimetres in a float image (32FC1 is metres, REP 118)",
                                   "publish 32FC1 in metres (divide by 1000), or 16UC1 in millimetres"))
        if valid < self.config.min_depth_valid:
            out.append(Verdict(Level.PROBLEM, s.topic, f"only {valid:.0%} of depth pixels have a measurement "
                               f"(0 / NaN = none); below min_depth_valid {self.config.min_depth_valid:g} the node "
                               "runs the RGB-only path", "check the depth camera (covered, too close, too dark for "
                               "its projector?), or lower min_depth_valid"))
        return out

    def _pairing(self, colour: list[Sample], depth: list[Sample]) -> Pairing:
        within: NearestPairer = NearestPairer(max_gap=self.config.sync_slop)
        nearest: NearestPairer = NearestPairer(max_gap=None)
        # A colour image newer than the newest depth may have its depth still in flight: not counted.
        newest_depth = max(x.stamp_ns for x in depth)
        colour = [x for x in colour if x.stamp_ns <= newest_depth] or colour
        events = sorted([(x.arrival_s, 0, x.stamp_ns) for x in colour] + [(x.arrival_s, 1, x.stamp_ns) for x in depth])
        pairs, offsets = [], []
        for _, kind, ns in events:
            if kind == 0:
                pairs += within.add_color(ns * 1e-9, ns)
                offsets += nearest.add_color(ns * 1e-9, ns)
            else:
                pairs += within.add_depth(ns * 1e-9, ns)
                offsets += nearest.add_depth(ns * 1e-9, ns)
        pairs += within.flush()
        offsets += nearest.flush()
        found = [(d - c) * 1e-6 for _, c, d in offsets if d is not None]
        return Pairing(len(pairs), sum(1 for p in pairs if p[2] is not None),
                       statistics.median(found) if found else None)

    def _pairing_verdicts(self, p: Pairing) -> list[Verdict]:
        if p.share >= PAIRED_MIN:
            return []
        slop = self.config.sync_slop
        offset = ("" if p.median_offset_ms is None else
                  f"; the median depth - colour offset is {p.median_offset_ms:.1f} ms")
        fix = (f"raise sync_slop above {abs(p.median_offset_ms) * 1e-3:.3f} s" if p.median_offset_ms is not None
               and abs(p.median_offset_ms) * 1e-3 > slop else "run depth at the colour rate")
        return [Verdict(Level.PROBLEM, self.topics[Role.DEPTH].topic,
                        f"only {p.share:.0%} of colour images have a depth image within sync_slop {slop:g} s"
                        f"{offset}; the others run RGB-only",
                        f"{fix}; depth aligned to colour carries the colour stamp (realsense-ros "
                        "align_depth.enable:=true)")]

    def _alignment_verdicts(self, colour: TopicState, depth: TopicState) -> list[Verdict]:
        if self.config.register_depth:
            return []     # raw depth by design: the calibration's depth_to_color registers it
        c, d = colour.samples[-1], depth.samples[-1]
        differs = []
        if d.frame_id != c.frame_id:
            differs.append(f"frame_id {d.frame_id!r} vs colour's {c.frame_id!r}")
        if d.size != c.size:
            differs.append(f"size {_size(d.size)} vs colour's {_size(c.size)}")
        if not differs:
            return []
        aligned = [t for t in self.image_topics() if "aligned_depth_to_color" in t]
        named = ", ".join(aligned) if aligned else ALIGNED_DEPTH[self.ros]
        return [Verdict(Level.PROBLEM, depth.topic, "depth is not aligned to colour: " + "; ".join(differs),
                        f"subscribe to depth aligned to colour: {named} (realsense-ros align_depth.enable:=true); "
                        "or keep this raw depth with register_depth: true and --calibration camera.yaml "
                        "(`edgefuse calibrate ... --depth-images DIR` writes its depth_to_color)")]

    def _info_verdicts(self, colour: TopicState, info: TopicState) -> list[Verdict]:
        P, W = Level.PROBLEM, Level.WARNING
        c = colour.samples[-1]
        last = next((x for x in reversed(info.samples) if x.info is not None), None)
        if last is None:
            return []
        i = last.info
        out = []
        if last.size != c.size:
            out.append(Verdict(P, info.topic, f"camera_info is {_size(last.size)} but the colour image is "
                               f"{_size(c.size)}: the node ignores it and runs without intrinsics",
                               "use the colour camera's camera_info at the image's size (realsense-ros: "
                               f"{'/camera/camera' if self.ros == '2' else '/camera'}/color/camera_info), "
                               "or give --calibration camera.yaml"))
        if last.frame_id and c.frame_id and last.frame_id != c.frame_id:
            out.append(Verdict(P, info.topic, f"camera_info frame_id {last.frame_id!r} is not the colour image's "
                               f"{c.frame_id!r}: the intrinsics of another camera",
                               "set camera_info_topic to the colour camera's camera_info"))
        bad_k = _implausible_k(i["k"], i["width"], i["height"])
        if bad_k:
            out.append(Verdict(P, info.topic, f"camera_info K is implausible: {bad_k}",
                               "calibrate the colour camera (`edgefuse calibrate`) and pass --calibration camera.yaml"))
        model = i["distortion_model"]
        if any(i["d"]) and model not in DISTORTION_MODELS:
            out.append(Verdict(W, info.topic, f"unknown distortion model {model!r}",
                               f"expected one of {', '.join(DISTORTION_MODELS)}; the node uses K as a pinhole "
                               "and ignores distortion"))
        return out

    # --- the table --------------------------------------------------------------------------------
    def _row(self, s: TopicState) -> Row:
        x = s.samples
        pubs = "?" if s.offers is None else str(len(s.offers))
        types = ", ".join(s.types) if s.types else "-"
        if not x:
            return Row(s.role.value, s.topic, pubs, types, "-", "-", "-", "-", "-", "-", self._qos_cell(s))
        last = x[-1]
        enc = last.encoding or (last.info or {}).get("distortion_model", "") or "-"
        rate = jitter = "-"
        if len(x) > 1:
            gaps = np.diff([y.arrival_s for y in x])
            if gaps.sum() > 0:
                rate = f"{len(gaps) / gaps.sum():.1f}"
            jitter = f"{np.std(gaps) * 1e3:.1f}"
        age = statistics.median((y.arrival_ns - y.stamp_ns) * 1e-9 for y in x)
        return Row(s.role.value, s.topic, pubs, types, enc, _size(last.size), rate, _age(age), jitter,
                   last.frame_id or "''", self._qos_cell(s))

    def _qos_cell(self, s: TopicState) -> str:
        if self.ros != "2":
            return "TCPROS"
        offered = sorted({o.reliability for o in s.offers or []}) or ["-"]
        return f"{'/'.join(offered)} -> {requested_reliability(self.config, s.offers)}"


def _size(size: tuple[int, int] | None) -> str:
    return "-" if size is None else f"{size[1]}x{size[0]}"


def _age(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}" if abs(seconds) < 1e3 else f"{seconds:.3g} s"


def _implausible_k(k: list[float], width: int, height: int) -> str:
    """Why K = [fx 0 cx; 0 fy cy; 0 0 1] cannot describe a width x height image ('' when it can)."""
    if len(k) != 9 or not all(math.isfinite(v) for v in k):
        return f"{len(k)} values / not finite"
    fx, cx, fy, cy = k[0], k[2], k[4], k[5]
    if fx <= 0 or fy <= 0:
        return f"fx {fx:g}, fy {fy:g} (must be > 0)"
    if not (0 < cx < width and 0 < cy < height):
        return f"principal point ({cx:g}, {cy:g}) outside the {width}x{height} image"
    if not 0.5 <= fx / fy <= 2.0:
        return f"fx / fy = {fx / fy:.2f} (square pixels give ~1)"
    if k[8] != 1.0:
        return f"K[2][2] = {k[8]:g} (must be 1)"
    return ""
