"""INT8 by explicit quantisation: ONNX Runtime static quantisation writes Q/DQ graphs.

Settings (issue 4): QDQ format, per-channel symmetric int8 weights, symmetric int8
activations, MinMax calibration. Symmetric activations (zero point 0) are what TensorRT
requires of Q/DQ graphs, so the same quantised ONNX serves ORT INT8 on a CPU and TensorRT
INT8 on a GPU; TensorRT's own calibrator classes are deprecated in 10.x and gone in 11.x
(shared/data/tensorrt-api/README.md), so nothing here builds on them.

Calibration inputs: the stem graph sees raw frames; a path graph sees the stem features
the *fp32* stem graph computes on those frames (what it will be fed at run time, minus
the stem's own quantisation error, which the end-to-end agreement then measures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

Feed = dict[str, np.ndarray]


def _reader_base():
    from onnxruntime.quantization import CalibrationDataReader

    return CalibrationDataReader


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


def quantize_graph(fp32_path: str | Path, int8_path: str | Path, feeds: Sequence[Feed]) -> None:
    """Write the Q/DQ int8 version of `fp32_path` calibrated on `feeds`."""
    import logging

    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

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
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # Symmetric everything: TensorRT accepts only zero-point-0 Q/DQ pairs.
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
        )
    finally:
        root.setLevel(level)
