"""PyTorch module -> ONNX graph, deterministically, and what we read back from a graph
(tensor specs, operator counts, MAdds of its convolutions).

Exporter: the TorchScript-based `torch.onnx.export(..., dynamo=False)` at opset 17 with
static shapes (batch 1, one bundle per input size: adaptive pooling must
see a fixed size, docs/models-and-training.md "ESANet"). It gives byte-identical output for identical weights, needs no
onnxscript, and every op our models use maps to one standard ONNX op.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

OPSET = 17
LABELS_DTYPE = torch.int32   # TensorRT's ArgMax/TopK index type; half the bytes of int64


class LabelsHead(nn.Module):
    """Path module + argmax inside the graph: outputs `labels` (N x H x W int32) and, with
    `logits=True`, the logits too (docs/architecture.md "The bundle": labels keep the device->host copy small)."""

    def __init__(self, path: nn.Module, logits: bool = False) -> None:
        super().__init__()
        self.path = path
        self.logits = logits

    def forward(self, *feats: torch.Tensor):
        out = self.path(*feats)
        labels = out.argmax(dim=1).to(LABELS_DTYPE)
        return (labels, out) if self.logits else labels


def export_onnx(module: nn.Module, args: Sequence[torch.Tensor], input_names: Sequence[str],
                output_names: Sequence[str]) -> bytes:
    """Serialized ONNX of `module` traced on `args` (static shapes, eval mode, weights embedded
    and constants folded). No timestamps or paths end up in the file."""
    # Wrappers such as StemGateModule are created in training mode, and torch.onnx.export
    # restores the mode it found after exporting - which would leave the model in training
    # mode (BatchNorm updating its statistics). Export in eval mode and keep it.
    module.eval()
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python ints in shapes: static by design
        torch.onnx.export(
            module, tuple(args), buf,
            input_names=list(input_names), output_names=list(output_names),
            opset_version=OPSET, dynamo=False, do_constant_folding=True, export_params=True,
        )
    module.eval()
    return buf.getvalue()


def check_graph(path: str | Path) -> None:
    """onnx.checker on the graph file (full check, with shape inference). Given the path, the
    checker also resolves the graph's external data (the bundle's shared weights file)."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


_NP_NAMES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16", 11: "float64", 9: "bool"}


def tensor_specs(model) -> list[dict]:
    """name, static shape and numpy dtype of every graph input and output."""
    specs = []
    for v in list(model.graph.input) + list(model.graph.output):
        t = v.type.tensor_type
        specs.append({"name": v.name, "shape": [int(d.dim_value) for d in t.shape.dim],
                      "dtype": _NP_NAMES.get(t.elem_type, str(t.elem_type))})
    return specs


def op_counts(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return dict(sorted(counts.items()))


def conv_madds(model, base_dir: str | Path | None = None) -> float:
    """Multiply-adds of the graph's Conv / ConvTranspose / MatMul / Gemm nodes, from the
    inferred static shapes: what torch.utils.flop_counter counts on the PyTorch side
    (models/costs.py), so the two can be compared. Q/DQ graphs count the same convs."""
    from onnx import numpy_helper

    shapes = static_shapes(model, base_dir)
    # Q/DQ graphs: the weight reaches Conv through DequantizeLinear; follow it back.
    producer = {o: n for n in model.graph.node for o in n.output}

    def shape_of(name: str) -> list[int]:
        if name in shapes:
            return shapes[name]
        node = producer.get(name)
        if node is not None and node.op_type in ("DequantizeLinear", "QuantizeLinear", "Identity"):
            return shape_of(node.input[0])
        if node is not None and node.op_type == "Constant":
            return list(numpy_helper.to_array(node.attribute[0].t).shape)
        raise KeyError(f"no static shape for {name!r}")

    total = 0.0
    for n in model.graph.node:
        if n.op_type in ("Conv", "ConvTranspose"):
            w = shape_of(n.input[1])          # Cout x Cin/g x kh x kw (ConvTranspose: Cin x Cout/g x ...)
            out = shape_of(n.output[0])
            per_out = 1
            for d in w[1:]:
                per_out *= d
            if n.op_type == "ConvTranspose":
                inp = shape_of(n.input[0])
                per_in = 1
                for d in w[1:]:
                    per_in *= d
                total += float(_prod(inp)) * per_in
            else:
                total += float(_prod(out)) * per_out
        elif n.op_type in ("MatMul", "Gemm"):
            a, out = shape_of(n.input[0]), shape_of(n.output[0])
            k = a[-1] if not (n.op_type == "Gemm" and _attr(n, "transA")) else a[-2]
            total += float(_prod(out)) * k
    return total


def static_shapes(model, base_dir: str | Path | None = None) -> dict[str, list[int]]:
    """Shape of every tensor in a static graph. ONNX shape inference first; tensors it
    leaves symbolic (e.g. Tile with computed repeats, from torch's `repeat`) get their
    shape from one ONNX Runtime run on zero inputs, which is exact for a static graph
    (a graph loaded without its external data reads it from `base_dir` for that run)."""
    import numpy as np
    import onnx
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model)
    shapes: dict[str, list[int]] = {}
    unknown: list[str] = []
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = v.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[v.name] = [int(d.dim_value) for d in dims]
        else:
            unknown.append(v.name)
    for init in inferred.graph.initializer:
        shapes[init.name] = list(init.dims)
    if unknown:
        import onnxruntime as ort

        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        if base_dir is not None:
            from onnx.external_data_helper import load_external_data_for_model

            load_external_data_for_model(probe, str(base_dir))
        known_out = {o.name for o in probe.graph.output}
        for name in unknown:
            if name not in known_out:
                probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        feeds = {i.name: np.zeros(i.shape, dtype=_ORT_TYPES.get(i.type, np.float32)) for i in sess.get_inputs()}
        names = [o.name for o in sess.get_outputs()]
        for name, value in zip(names, sess.run(names, feeds)):
            shapes[name] = list(np.asarray(value).shape)
    return shapes


_ORT_TYPES = {"tensor(float)": "float32", "tensor(int32)": "int32", "tensor(int64)": "int64",
              "tensor(uint8)": "uint8", "tensor(int8)": "int8"}


def _prod(xs: Sequence[int]) -> int:
    p = 1
    for x in xs:
        p *= int(x)
    return p


def _attr(node, name: str) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return 0
