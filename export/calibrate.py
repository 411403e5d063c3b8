"""INT8 calibration of all graphs of a bundle in one pass, stopping when the ranges are stable.

ONNX Runtime's `quantize_static` calibrates one graph at a time: it makes every tensor a graph
output, runs its calibration frames through an unoptimised session and keeps every tensor of
every frame in memory before histogramming them. For a DynMM bundle that means the stem once
per path, the computation the paths share (the RGB stage 1 of every path, the depth stages
of the paths that fuse them) once per path, and 0.5-0.8 GB per frame per path at 480x640
(docs/export.md "Calibration"). Here instead:

  - `shared_graph` merges the stem graph and every path graph into one ONNX graph in which
    the paths read the stem's outputs, and a node of a path that computes what a node
    already in the graph computes (same operator, attributes, and inputs: the same
    initializer contents or the same producing node, recursively) is not added again: its
    tensors are that node's. Paths of a weight-shared DynMM compute identical tensors up to
    where they diverge; those tensors are computed and histogrammed once;
  - `Collector` adds one frame at a time (memory: one frame's tensors) into per-tensor
    histograms laid out as ONNX Runtime's `HistogramCollector` lays them out, whose own
    `compute_percentile` turns them into ranges; MinMax keeps running extremes;
  - `calibrate` stops adding frames once the ranges moved less than a tolerance between two
    batches of frames, on average over the activation values (`--calib-frames` is then the
    maximum).

The ranges are handed to `quantize_static` as its calibration cache (`TensorsData`), so the
quantised graphs are written by the same code as before, only with ranges computed here.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from edgefuse.errors import EdgefuseError

Feed = dict[str, np.ndarray]
Count = Callable[[int, int], None]

# quantize_static's Percentile calibrator settings when extra_options name none of them
# (onnxruntime.quantization.calibrate.create_calibrator): the int8 schemes set none.
PERCENTILE = 99.999
NUM_BINS = 2048
SYMMETRIC_HISTOGRAM = True   # histogram of |x|; the range is then clipped to the min / max seen

BATCH_FRAMES = 8             # frames between two stability checks
DEFAULT_TOLERANCE = 0.02     # stop when range ends moved less than this share of their range (mean)


class NotMergeable(EdgefuseError):
    """The graphs cannot be merged (a node carries a subgraph); calibrate them one by one."""


@dataclass
class SharedGraph:
    """The merged graph and, per graph to calibrate, its tensor names -> merged tensor names."""

    model: object                                   # onnx.ModelProto
    tensors: dict[str, dict[str, str]]              # graph -> {its tensor name: merged name}
    nodes_total: int = 0                            # nodes of the graphs before merging
    nodes_merged: int = 0                           # nodes of the merged graph

    @property
    def distinct(self) -> list[str]:
        """Merged tensors to collect, each once, in a fixed order."""
        return sorted({m for names in self.tensors.values() for m in names.values()})

    @property
    def total(self) -> int:
        return sum(len(names) for names in self.tensors.values())


def tensors_to_calibrate(model) -> set[str]:
    """The tensors quantize_static would calibrate in `model` (loaded with shape inference, as
    quantize_static loads it): ONNX Runtime's own selection rule."""
    from types import SimpleNamespace

    from onnxruntime.quantization.calibrate import CalibraterBase

    names, _ = CalibraterBase.select_tensors_to_calibrate(SimpleNamespace(op_types_to_calibrate=None), model)
    return set(names)


def _digest(tensor) -> str:
    """Content hash of an initializer (type, shape and values): equal weights are one input."""
    from onnx import numpy_helper

    h = hashlib.sha1(f"{tensor.data_type}{list(tensor.dims)}".encode())
    if tensor.HasField("raw_data") and tensor.data_location != tensor.EXTERNAL:
        h.update(tensor.raw_data)
    else:
        h.update(np.ascontiguousarray(numpy_helper.to_array(tensor)).tobytes())
    return h.hexdigest()[:20]


def shared_graph(stem, graphs: Mapping[str, object], calibrate: Iterable[str]) -> SharedGraph:
    """One graph computing `stem` (inputs: the raw frame) and every graph of `graphs` (inputs:
    named stem outputs), each distinct computation once; its outputs are the distinct tensors
    of the graphs named in `calibrate` ("stem_gate" or a key of `graphs`). Models are
    ModelProtos loaded with shape inference (value_info gives the outputs' types)."""
    import onnx
    from onnx import helper

    sources = {"stem_gate": stem, **graphs}
    merged = onnx.GraphProto(name="calibration")
    merged.input.extend(stem.graph.input)
    inits: dict[str, str] = {}              # digest -> merged initializer name
    seen: dict[tuple, list[str]] = {}       # node key -> merged output names
    value_info: dict[str, object] = {}      # merged name -> ValueInfoProto (type)
    tensors: dict[str, dict[str, str]] = {}
    outer: dict[str, str] = {i.name: i.name for i in stem.graph.input}
    total = 0
    for gname, model in sources.items():
        names: dict[str, str] = {}
        own_inits = {i.name for i in model.graph.initializer}
        for inp in model.graph.input:
            if inp.name in own_inits:   # IR < 4 lists initializers as inputs too
                continue
            source = outer if gname == "stem_gate" else stem_out
            if inp.name not in source:
                raise EdgefuseError(f"{gname} reads {inp.name!r}, which the stem graph does not output")
            names[inp.name] = source[inp.name]
        for init in model.graph.initializer:
            d = _digest(init)
            if d not in inits:
                inits[d] = f"w/{d}"
                copy = onnx.TensorProto()
                copy.CopyFrom(init)
                copy.name = inits[d]
                merged.initializer.append(copy)
            names[init.name] = inits[d]
        for node in model.graph.node:
            total += 1
            if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
                raise NotMergeable(f"{gname}: node {node.name or node.op_type} carries a subgraph")
            inputs = [names.get(i, "") if i else "" for i in node.input]
            if any(i and not m for i, m in zip(node.input, inputs)):
                raise EdgefuseError(f"{gname}: node {node.name} reads a tensor no earlier node writes "
                                    "(graph not in topological order)")
            key = (node.domain, node.op_type, tuple(inputs), len(node.output),
                   tuple(a.SerializeToString() for a in sorted(node.attribute, key=lambda a: a.name)))
            if key in seen:
                for out, m in zip(node.output, seen[key]):
                    if out:
                        names[out] = m
                continue
            outs = [f"{gname}/{o}" if o else "" for o in node.output]
            seen[key] = outs
            new = helper.make_node(node.op_type, inputs, outs, name=f"{gname}/{node.name}" if node.name else "",
                                   domain=node.domain)
            new.attribute.extend(node.attribute)
            merged.node.append(new)
            for out, m in zip(node.output, outs):
                if out:
                    names[out] = m
        for vi in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input):
            if vi.name in names and names[vi.name] not in value_info:
                copy = onnx.ValueInfoProto()
                copy.CopyFrom(vi)
                copy.name = names[vi.name]
                value_info[copy.name] = copy
        if gname == "stem_gate":
            stem_out = {o.name: names[o.name] for o in model.graph.output}
        if gname in calibrate:
            wanted = tensors_to_calibrate(model)
            tensors[gname] = {t: names[t] for t in sorted(wanted)}
    outputs = sorted({m for t in tensors.values() for m in t.values()})
    missing = [m for m in outputs if m not in value_info]
    if missing:
        raise EdgefuseError(f"no type for merged tensors {missing[:3]}")
    merged.output.extend(value_info[m] for m in outputs)
    opsets: dict[str, int] = {}
    for m in sources.values():
        for o in m.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    model = helper.make_model(merged, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                              ir_version=max(m.ir_version for m in sources.values()))
    return SharedGraph(model, tensors, total, len(merged.node))


@dataclass
class _Hist:
    hist: np.ndarray      # counts of |x| in bins of `width` from 0
    width: float
    lo: np.float32        # min and max seen (the range is clipped to them)
    hi: np.float32


class Collector:
    """Per-tensor statistics added one frame at a time. Percentile: a histogram of |x| whose
    bins are fixed by the first frame and appended (same width) when a later frame reaches
    beyond them - the layout ONNX Runtime's HistogramCollector merges into, but each frame
    binned in numpy's fast uniform-bins path; ranges from that collector's own
    compute_percentile. MinMax: running min and max."""

    def __init__(self, method: str, names: Sequence[str]) -> None:
        if method not in ("Percentile", "MinMax"):
            raise EdgefuseError(f"one-pass calibration supports Percentile and MinMax, not {method}")
        self.method = method
        self.names = list(names)
        self.frames = 0
        self.sizes: dict[str, int] = {}   # values per frame
        self._hist: dict[str, _Hist] = {}
        self._minmax: dict[str, tuple[np.float32, np.float32]] = {}

    def add(self, values: Mapping[str, np.ndarray]) -> None:
        """One frame's tensors (every name of `names`)."""
        for name in self.names:
            x = values[name]
            if x.dtype not in (np.float32, np.float16):
                raise EdgefuseError(f"calibration tensor {name} is {x.dtype}, not float")
            self.sizes[name] = int(x.size)
            lo, hi = (x.min(), x.max()) if x.size else (x.dtype.type(0), x.dtype.type(0))
            if self.method == "MinMax":
                old = self._minmax.get(name)
                self._minmax[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
                continue
            self._add_hist(name, np.abs(x.reshape(-1)), lo, hi)
        self.frames += 1

    def _add_hist(self, name: str, a: np.ndarray, lo, hi) -> None:
        amax = float(max(abs(float(lo)), abs(float(hi))))
        h = self._hist.get(name)
        if h is None:
            # The collector's first call bins [min|x|, max|x|] in NUM_BINS; here from 0, so that
            # later frames extend the same grid (|x| >= 0).
            h = self._hist[name] = _Hist(np.zeros(NUM_BINS, np.int64), (amax if amax > 0 else 1.0) / NUM_BINS, lo, hi)
        n = len(h.hist)
        if amax > n * h.width:
            grow = int(amax / h.width) + 1 - n
            h.hist = np.concatenate([h.hist, np.zeros(grow, np.int64)])
            n += grow
        # Bin index floor(|x| / width), the top value into the last bin: np.histogram's
        # uniform bins, without its edge corrections (a value on an edge may land one bin
        # lower: 1/2048 of the range at most).
        idx = (a * np.float32(1.0 / h.width)).astype(np.int32)
        np.minimum(idx, n - 1, out=idx)
        h.hist += np.bincount(idx, minlength=n)
        h.lo, h.hi = min(h.lo, lo), max(h.hi, hi)

    def ranges(self) -> dict[str, tuple]:
        """name -> the range tuple TensorsData takes (Percentile: with the histogram's head)."""
        if not self.frames:
            raise EdgefuseError("no calibration frame was collected")
        if self.method == "MinMax":
            return {k: (np.float32(lo), np.float32(hi)) for k, (lo, hi) in self._minmax.items()}
        from onnxruntime.quantization.calibrate import HistogramCollector

        collector = HistogramCollector(method="percentile", symmetric=SYMMETRIC_HISTOGRAM, num_bins=NUM_BINS,
                                       num_quantized_bins=128, percentile=PERCENTILE, scenario="same")
        for name, h in self._hist.items():
            edges = (np.arange(len(h.hist) + 1, dtype=np.float64) * h.width).astype(np.float32)
            collector.histogram_dict[name] = (h.hist, edges, np.float32(h.lo), np.float32(h.hi))
        with contextlib.redirect_stdout(io.StringIO()):   # it prints its settings
            return collector.compute_percentile()


def range_change(old: Mapping[str, tuple], new: Mapping[str, tuple],
                 weights: Mapping[str, int] | None = None) -> tuple[float, float]:
    """How far the ranges moved between two estimates: each tensor's larger move of a range
    end as a share of its new range width; returns (the mean over tensors weighted by
    `weights` - their values per frame, so the share the average activation's grid moved -,
    the largest). The 99.999th percentile of a tensor with few values per frame (pooled
    context, the gate) is its maximum, which keeps growing with every frame however many
    there are: the stop rule uses the weighted mean, the manifest records both."""
    moves, w = [], []
    for name, r in new.items():
        o = old.get(name)
        if o is None:
            return float("inf"), float("inf")
        lo, hi = float(r[0]), float(r[1])
        width = max(hi - lo, 1e-12)
        moves.append(max(abs(float(o[0]) - lo), abs(float(o[1]) - hi)) / width)
        w.append(weights.get(name, 1) if weights else 1)
    if not moves:
        return 0.0, 0.0
    m = np.asarray(moves)
    return float(np.average(m, weights=np.asarray(w, dtype=np.float64))), float(m.max())


@dataclass
class CalibrationResult:
    ranges: dict[str, object]          # graph -> onnxruntime TensorsData
    frames: int                        # frames used
    max_frames: int
    changes: list[float] = field(default_factory=list)   # range_change (weighted mean) at each check
    changes_max: list[float] = field(default_factory=list)
    tensors: int = 0                   # tensors calibrated, summed over graphs
    distinct: int = 0                  # of which computed and collected once
    nodes_total: int = 0
    nodes_merged: int = 0

    def record(self, tolerance: float) -> dict:
        """The manifest's account of the calibration."""
        return {"frames": self.frames, "max_frames": self.max_frames,
                "stop_rule": (f"ranges moved < {tolerance:g} of their width over {BATCH_FRAMES} frames "
                              "(mean over activation values)" if tolerance > 0 else "all frames"),
                "range_change": [round(c, 4) for c in self.changes],
                "range_change_max": [round(c, 4) for c in self.changes_max],
                "one_pass": {"tensors": self.tensors, "distinct": self.distinct,
                             "nodes": self.nodes_total, "nodes_merged": self.nodes_merged}}


def calibrate(shared: SharedGraph, feeds: Iterable[Feed], max_frames: int, method: str,
              tolerance: float = DEFAULT_TOLERANCE, count: Count | None = None,
              session_options=None) -> CalibrationResult:
    """Run the merged graph frame by frame, collecting every distinct tensor once; after each
    BATCH_FRAMES frames (from the second batch on) stop when the ranges moved less than
    `tolerance` (0: use every frame). Returns each calibrated graph's TensorsData."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import TensorsData

    opts = session_options or ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(shared.model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = shared.distinct
    collector = Collector(method, names)
    changes: list[float] = []
    changes_max: list[float] = []
    previous = None
    tick = count or (lambda done, total: None)
    tick(0, max_frames)
    for feed in feeds:
        if collector.frames >= max_frames:
            break
        collector.add(dict(zip(names, session.run(names, feed))))
        tick(collector.frames, max_frames)
        if tolerance > 0 and collector.frames % BATCH_FRAMES == 0 and collector.frames < max_frames:
            current = collector.ranges()
            if previous is not None:
                mean, worst = range_change(previous, current, collector.sizes)
                changes.append(mean)
                changes_max.append(worst)
                if mean < tolerance:
                    break
            previous = current
    ranges = collector.ranges()
    cm = CalibrationMethod[method]
    per_graph = {g: TensorsData(cm, {t: ranges[m] for t, m in tensors.items()})
                 for g, tensors in shared.tensors.items()}
    tick(collector.frames, collector.frames)
    return CalibrationResult(per_graph, collector.frames, max_frames, changes, changes_max, shared.total,
                             len(names), shared.nodes_total, shared.nodes_merged)
