"""INT8 by explicit quantisation: ONNX Runtime static quantisation writes Q/DQ graphs.

The scheme depends on what will run the graphs (issue 10, "quantise for the target"):
  - tensorrt: per-channel symmetric int8 weights, symmetric int8 activations (zero points
    0: the only Q/DQ TensorRT accepts). TensorRT's calibrator classes are deprecated in
    10.x and gone in 11.x (tests/export/data/tensorrt-api): nothing builds on them;
  - cpu: per-channel symmetric int8 weights, *unsigned* 8-bit activations with a zero point
    (U8S8): ONNX Runtime's x86 / ARM int8 kernels take that path; with int8 activations it
    converts them on every call and runs slower than fp32 (docs/export.md "Findings").
MinMax calibration for both.

Calibration inputs: the stem graph sees raw frames; a path graph sees the stem features
the *fp32* stem graph computes on those frames (what it will be fed at run time, minus
the stem's own quantisation error, which the end-to-end agreement then measures).
"""

from __future__ import annotations

import contextlib
import io
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
    reduce_range: bool = False   # 7-bit weights (see resolve_reduce_range)
    calibration: str = "MinMax"  # onnxruntime CalibrationMethod name
    min_conv_k: int = 0          # convolutions with fewer multiply-adds per output stay float
    argmax_on_int8: bool = False  # ArgMax reads the quantised logits (ORT's CPU ArgMax takes uint8;
                                  # TensorRT's TopK does not take int8, so not for tensorrt)
    quantize_stem: bool = True   # False: the stem/gate graph stays fp32

    def record(self) -> dict[str, Any]:
        """The manifest's description of the scheme."""
        act = ("int8 symmetric" if self.activations == "QInt8" and self.activation_symmetric
               else "uint8 asymmetric" if self.activations == "QUInt8" else f"{self.activations}")
        return {"target": self.target, "method": f"onnxruntime quantize_static, QDQ, {self.calibration}",
                "weights": "int8 per-channel symmetric" + (", 7-bit (reduce_range)" if self.reduce_range else ""),
                "activations": act, "reduce_range": self.reduce_range,
                "stem_gate": "int8" if self.quantize_stem else "fp32",
                **({"float_convs_below_k": self.min_conv_k} if self.min_conv_k else {})}


INT8_TARGETS = ("cpu", "tensorrt")
# The cpu scheme, chosen by measurements on the shipped tiny DynMM and dynmm-r34-nbt1d
# (docs/export.md "Findings"):
#  - Percentile calibration (99.999%): MinMax ranges are set by rare outliers (fewer labels
#    and gate choices equal to fp32);
#  - the stem/gate graph stays fp32: its convolutions see 3 (RGB) and 1 (depth) channels,
#    where int8 GEMMs gain nothing while the full-resolution input must be converted (an
#    int8 stem is slower than fp32), and an exact stem keeps the gate's choice exact;
#  - convolutions with fewer than CPU_MIN_CONV_K multiply-adds per output stay float: the
#    narrow 1-D convolutions of a width-0.25 model, the depthwise ones of the learned
#    upsampling and the squeeze-excitation 1x1s, whose int8 kernels do not pay for the
#    requantisation around them (every other convolution of an r34 model has >= 147).
CPU_MIN_CONV_K = 100


def int8_scheme(target: str, reduce_range: bool = False) -> Int8Scheme:
    """The scheme for `target` (cpu | tensorrt); reduce_range applies to cpu only."""
    if target == "tensorrt":
        if reduce_range:
            raise ConfigError("reduce_range (7-bit weights) is a CPU scheme option; TensorRT takes full int8 weights")
        return Int8Scheme("tensorrt", "QInt8", True)
    if target == "cpu":
        return Int8Scheme("cpu", "QUInt8", False, reduce_range=reduce_range, calibration="Percentile",
                          min_conv_k=CPU_MIN_CONV_K, argmax_on_int8=True, quantize_stem=False)
    raise ConfigError(f"--int8-target {target!r} is not one of {', '.join(INT8_TARGETS)}")


def _reader_base():
    from onnxruntime.quantization import CalibrationDataReader

    return CalibrationDataReader


def resolve_reduce_range(target: str, requested: bool | None) -> bool:
    """reduce_range (7-bit weights) for a scheme: as requested, else on for the cpu scheme.
    ONNX Runtime's x86 U8S8 kernels on CPUs without VNNI (AVX2 only) add pairs of u8 x s8
    products in 16 bits, which saturates with full-range int8 weights; 7-bit weights cannot.
    On the shipped tiny DynMM (docs/export.md "Findings") 7-bit weights agree with fp32 as
    often as the unfused Q/DQ arithmetic with 8-bit weights, so the bit costs nothing
    measurable, while 8-bit weights lose labels to saturation. A bundle is exported
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
    """Feeds of the stem graph from calibration frames (`edgefuse.export.calib_frames.Frame`)."""
    return [f.inputs() for f in frames]


def path_feeds(stem_session, feeds: Sequence[Feed], input_names: Sequence[str]) -> list[Feed]:
    """Feeds of a path graph: the fp32 stem graph's features on each calibration frame."""
    outs = [o.name for o in stem_session.get_outputs()]
    result = []
    for feed in feeds:
        values = dict(zip(outs, stem_session.run(outs, feed)))
        result.append({n: values[n] for n in input_names})
    return result


def inline_identity_initializers(model) -> int:
    """Replace every Identity of an initializer by a copy of that initializer; returns how many.

    The TorchScript exporter stores identical parameters once and feeds the other uses through
    Identity nodes (zero biases of BatchNorm-folded convolutions, equal upsampling kernels).
    The quantiser quantises only initializers, so a Conv whose bias or weight arrives through
    an Identity stays a float Conv between Dequantize/Quantize nodes, which ONNX Runtime
    cannot fuse into QLinearConv: 7 of dynmm-r34-nbt1d path 0's convolutions, 27% of its int8
    time (issue 10). The copies cost nothing in the bundle: the shared weights file stores
    identical tensors once."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    aliases = {n.output[0]: n for n in model.graph.node
               if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in
               {o.name for o in model.graph.output}}
    for out, node in aliases.items():
        copy = numpy_helper.from_array(numpy_helper.to_array(inits[node.input[0]]), out)
        model.graph.initializer.append(copy)
        model.graph.node.remove(node)
    return len(aliases)


def small_convs(model, min_k: int) -> list[str]:
    """Names of the Conv nodes with fewer than `min_k` multiply-adds per output value
    (input channels per group x kernel area): their int8 kernels do not pay for the
    requantisation around them. That includes the depthwise 3x3 convolutions of the learned
    upsampling (9 per output): quantised, the tiny model's int8 paths ran slower than fp32,
    with them float faster (docs/export.md "Findings")."""
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "Conv" and n.input[1] in inits
            and len(inits[n.input[1]]) >= 3 and int(np.prod(inits[n.input[1]][1:])) < min_k]


def argmax_on_quantized(model) -> int:
    """Let every ArgMax read the quantised tensor its DequantizeLinear input comes from; returns
    how many. With a per-tensor scale > 0, dequantisation is monotonic, so the index of the
    largest value - and the first of equal ones - is the same: the labels are bit-identical,
    and ArgMax reads a quarter of the bytes (it was 5-8% of an int8 path's time, issue 10).
    The DequantizeLinear stays if anything else reads it (--logits)."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    changed = 0
    for node in model.graph.node:
        dq = producer.get(node.input[0]) if node.op_type == "ArgMax" else None
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[1] not in inits:
            continue
        scale = numpy_helper.to_array(inits[dq.input[1]])
        if scale.size != 1 or not float(scale.reshape(-1)[0]) > 0:
            continue
        node.input[0] = dq.input[0]
        changed += 1
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    for n in [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] not in used]:
        model.graph.node.remove(n)
    return changed


def prepare_graph(fp32_path: str | Path, prepared_path: str | Path) -> Path:
    """The graph quantize_static reads: `fp32_path` with its Identity(initializer) nodes
    inlined (written to `prepared_path`; `fp32_path` itself when there were none)."""
    import onnx

    model = onnx.load(str(fp32_path))
    if not inline_identity_initializers(model):
        return Path(fp32_path)
    onnx.save(model, str(prepared_path))
    return Path(prepared_path)


def quantize_graph(fp32_path: str | Path, int8_path: str | Path, feeds: Sequence[Feed] | None,
                   scheme: Int8Scheme | None = None, ranges=None) -> None:
    """Write the Q/DQ int8 version of `fp32_path` (default scheme: TensorRT's, symmetric
    everything), calibrated on `feeds` by quantize_static, or with `ranges` (an onnxruntime
    TensorsData of the prepared graph's tensors, from export/calibrate.py) handed to it as
    its calibration cache, so that it runs no calibration of its own."""
    import logging

    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    scheme = scheme or int8_scheme("tensorrt")
    if (feeds is None) == (ranges is None):
        raise ValueError("quantize_graph takes calibration feeds or ranges, one of them")
    prepared = Path(int8_path).with_suffix(".inlined.onnx")
    source = prepare_graph(fp32_path, prepared)
    cache = None
    if ranges is not None:
        from onnxruntime.quantization.calibrate import save_tensors_data

        cache = Path(int8_path).with_suffix(".ranges.json")
        save_tensors_data(ranges, cache)
    model = onnx.load(str(source), load_external_data=False)
    exclude = small_convs(model, scheme.min_conv_k) if scheme.min_conv_k else []
    del model
    # The quantiser logs advice through the root logger (pre-processing, bias layout) and its
    # histogram calibrators print progress: keep both out of the export display. Errors raise.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(source), str(int8_path), feed_reader(feeds) if feeds is not None else None,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=scheme.reduce_range,
                weight_type=QuantType[scheme.weights],
                activation_type=QuantType[scheme.activations],
                calibrate_method=CalibrationMethod[scheme.calibration],
                nodes_to_exclude=exclude,
                extra_options={"ActivationSymmetric": scheme.activation_symmetric,
                               "WeightSymmetric": scheme.weight_symmetric},
                calibration_cache_path=str(cache) if cache is not None else None,
            )
    finally:
        root.setLevel(level)
        prepared.unlink(missing_ok=True)
        if cache is not None:
            cache.unlink(missing_ok=True)
    if scheme.argmax_on_int8:
        quantized = onnx.load(str(int8_path))
        if argmax_on_quantized(quantized):
            onnx.save(quantized, str(int8_path))
