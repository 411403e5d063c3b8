"""INT8 by explicit quantisation: ONNX Runtime static quantisation writes Q/DQ graphs.

The scheme depends on what will run the graphs (issue 10, "quantise for the target"):
  - tensorrt: per-channel symmetric int8 weights, symmetric int8 activations (zero points
    0: the only Q/DQ TensorRT accepts). TensorRT's calibrator classes are deprecated in
    10.x and gone in 11.x (shared/data/tensorrt-api/README.md): nothing builds on them;
  - cpu: per-channel symmetric int8 weights, *unsigned* 8-bit activations with a zero point
    (U8S8): ONNX Runtime's x86 / ARM int8 kernels take that path; with int8 activations it
    converts them on every call and runs slower than fp32 (measured, export/README.md).
MinMax calibration for both.

Calibration inputs: the stem graph sees raw frames; a path graph sees the stem features
the *fp32* stem graph computes on those frames (what it will be fed at run time, minus
the stem's own quantisation error, which the end-to-end agreement then measures).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from edgefuse.errors import ConfigError

Feed = dict[str, np.ndarray]


@dataclass(frozen=True)
class Int8Scheme:
    """How a graph is quantised for one target (recorded in the manifest's calibration)."""

    target: str                  # cpu | tensorrt
    activations: str             # QuantType name: QInt8 | QUInt8
    activation_symmetric: bool
    weights: str = "QInt8"
    weight_symmetric: bool = True
    reduce_range: bool = False   # 7-bit weights (see cpu_reduce_range)

    def record(self) -> dict[str, Any]:
        """The manifest's description of the scheme."""
        act = ("int8 symmetric" if self.activations == "QInt8" and self.activation_symmetric
               else "uint8 asymmetric" if self.activations == "QUInt8" else f"{self.activations}")
        return {"target": self.target, "method": "onnxruntime quantize_static, QDQ, MinMax",
                "weights": "int8 per-channel symmetric" + (", 7-bit (reduce_range)" if self.reduce_range else ""),
                "activations": act, "reduce_range": self.reduce_range}


INT8_TARGETS = ("cpu", "tensorrt")


def int8_scheme(target: str, reduce_range: bool = False) -> Int8Scheme:
    """The scheme for `target` (cpu | tensorrt); reduce_range applies to cpu only."""
    if target == "tensorrt":
        if reduce_range:
            raise ConfigError("reduce_range (7-bit weights) is a CPU scheme option; TensorRT takes full int8 weights")
        return Int8Scheme("tensorrt", "QInt8", True)
    if target == "cpu":
        return Int8Scheme("cpu", "QUInt8", False, reduce_range=reduce_range)
    raise ConfigError(f"--int8-target {target!r} is not one of {', '.join(INT8_TARGETS)}")


def _reader_base():
    from onnxruntime.quantization import CalibrationDataReader

    return CalibrationDataReader


def resolve_reduce_range(target: str, requested: bool | None) -> bool:
    """reduce_range (7-bit weights) for a scheme: as requested, else on for the cpu scheme.
    ONNX Runtime's x86 U8S8 kernels on CPUs without VNNI (AVX2 only) add pairs of u8 x s8
    products in 16 bits, which saturates with full-range int8 weights; 7-bit weights cannot.
    Measured on the shipped tiny DynMM (export/README.md): labels agree with fp32 on 89% of
    pixels with 8-bit weights there, 96.6% with 7-bit ones - as much as the unfused Q/DQ
    arithmetic with 8-bit weights, so the bit costs nothing measurable. A bundle is exported
    on one machine for another, so the default does not depend on the exporting CPU."""
    if requested is not None:
        return bool(requested)
    return target == "cpu"


def feed_reader(feeds: Sequence[Feed]):
    """A CalibrationDataReader over a fixed list of input dicts (re-iterable via rewind)."""
    base = _reader_base()

    class FeedReader(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.feeds = list(feeds)
            self.pos = 0

        def get_next(self) -> Feed | None:
            if self.pos >= len(self.feeds):
                return None
            self.pos += 1
            return self.feeds[self.pos - 1]

        def rewind(self) -> None:
            self.pos = 0

    return FeedReader()


def stem_feeds(frames: Iterable) -> list[Feed]:
    """Feeds of the stem graph from calibration frames (`edgefuse.calibration.frames.Frame`)."""
    return [f.inputs() for f in frames]


def path_feeds(stem_session, feeds: Sequence[Feed], input_names: Sequence[str]) -> list[Feed]:
    """Feeds of a path graph: the fp32 stem graph's features on each calibration frame."""
    outs = [o.name for o in stem_session.get_outputs()]
    result = []
    for feed in feeds:
        values = dict(zip(outs, stem_session.run(outs, feed)))
        result.append({n: values[n] for n in input_names})
    return result


def quantize_graph(fp32_path: str | Path, int8_path: str | Path, feeds: Sequence[Feed],
                   scheme: Int8Scheme | None = None) -> None:
    """Write the Q/DQ int8 version of `fp32_path` calibrated on `feeds` (default scheme:
    TensorRT's, symmetric everything)."""
    import logging

    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    scheme = scheme or int8_scheme("tensorrt")

    # The quantiser logs advice through the root logger (pre-processing, bias layout);
    # keep it out of the export display. Errors still raise.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_static(
            str(fp32_path), str(int8_path), feed_reader(feeds),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=scheme.reduce_range,
            weight_type=QuantType[scheme.weights],
            activation_type=QuantType[scheme.activations],
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": scheme.activation_symmetric,
                           "WeightSymmetric": scheme.weight_symmetric},
        )
    finally:
        root.setLevel(level)
