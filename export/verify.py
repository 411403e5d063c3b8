"""Verification: every graph of a bundle runs in ONNX Runtime on real frames and is compared
with the PyTorch model it came from (issue 4, "Verification, always").

- stem_gate: max abs difference of each feature and of the gate logits, and whether the
  gate picks the same choice;
- each path: fed the *same* (PyTorch) stem features, the share of pixels whose label
  agrees with PyTorch's argmax (expected >= 99.9%);
- end to end: ORT stem -> gate -> gate_to_path -> ORT path, against PyTorch doing the same;
- int8 bundles: the Q/DQ graphs against the fp32 graphs (label agreement, gate agreement,
  and mIoU change where the frames have labels).

Everything runs single-threaded so that the numbers - and so verify.json and the manifest -
are identical when the same checkpoint is exported twice on a machine.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from edgefuse.models.base import SegModel

# Tolerances: ORT and PyTorch compute the same fp32 convolutions in different orders.
FEATURE_ATOL = 1e-4
FEATURE_RTOL = 1e-3        # relative to the largest |value| of the reference tensor
MIN_LABEL_AGREEMENT = 0.999


@dataclass
class VerifyReport:
    frames: int
    frames_source: str
    precision: str
    passed: bool = True
    failures: list[str] = field(default_factory=list)
    stem: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, dict[str, Any]] = field(default_factory=dict)
    end_to_end: dict[str, Any] = field(default_factory=dict)
    int8: dict[str, Any] = field(default_factory=dict)

    def fail(self, message: str) -> None:
        self.passed = False
        self.failures.append(message)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The headline numbers the manifest carries (the full report: verify.json)."""
        s: dict[str, Any] = {
            "frames": self.frames, "frames_source": self.frames_source,
            "stem_max_abs_diff": max(self.stem.get("max_abs_diff", {}).values(), default=0.0),
            "min_path_label_agreement": min((p["label_agreement"] for p in self.paths.values()), default=1.0),
            "end_to_end_label_agreement": self.end_to_end.get("label_agreement"),
        }
        if self.int8:
            s["int8"] = {k: self.int8[k] for k in ("kernels", "label_agreement_vs_fp32", "gate_agreement_vs_fp32",
                                                    "miou_fp32", "miou_int8", "miou_change") if k in self.int8}
        return s


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ort_session(path: str | Path, fused: bool = True):
    """A single-threaded CPU session. `fused=False` runs a Q/DQ graph's arithmetic as written
    (no kernel fusion): what the graph means, independent of this CPU's int8 kernels."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if not fused:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_named(session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    wanted = {i.name for i in session.get_inputs()}
    return dict(zip(names, session.run(names, {k: v for k, v in feeds.items() if k in wanted})))


def miou(pred: Sequence[np.ndarray], gt: Sequence[np.ndarray], num_classes: int) -> float | None:
    """Mean IoU over classes present in the ground truth; pred is the class index c,
    gt the dataset label c + 1 with 0 = void (docs/models-and-training.md, "Metric")."""
    conf = np.zeros((num_classes, num_classes), np.int64)
    for p, g in zip(pred, gt):
        g = np.asarray(g).astype(np.int64).ravel() - 1
        p = np.asarray(p).astype(np.int64).ravel()
        keep = (g >= 0) & (g < num_classes)
        conf += np.bincount(g[keep] * num_classes + p[keep], minlength=num_classes ** 2).reshape(num_classes, -1)
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    present = conf.sum(1) > 0
    return float(np.mean(tp[present] / union[present])) if present.any() else None


def _close(name: str, got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    diff = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64)))) if ref.size else 0.0
    tol = FEATURE_ATOL + FEATURE_RTOL * float(np.max(np.abs(ref))) if ref.size else FEATURE_ATOL
    return diff, tol


def verify_bundle(model: SegModel, graphs: dict[str, Path], gate_to_path: Sequence[int], frames: Sequence,
                  frames_source: str, precision: str = "fp32", fp32_graphs: dict[str, Path] | None = None,
                  int8_min_agreement: float = 0.9, int8_fused: bool = True,
                  count: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Check `graphs` ({"stem_gate": file, "path_<k>": file}) against `model` on `frames`
    (`edgefuse.export.calib_frames.Frame`). For int8, `graphs` are the Q/DQ graphs and
    `fp32_graphs` the fp32 ones they were made from: fp32 is checked against PyTorch
    strictly, int8 against fp32 with `int8_min_agreement`. `int8_fused`: the int8 graphs run
    in ONNX Runtime's fused CPU kernels (what a cpu-scheme bundle runs in); False: their Q/DQ
    arithmetic as written, for graphs another runtime (TensorRT) will execute - this CPU's
    int8 kernels are then not what is being verified (on x86 without VNNI they saturate).
    `count(done, total)`: frames done over the stages (PyTorch, ONNX fp32, int8)."""
    report = VerifyReport(len(frames), frames_source, precision)
    total = len(frames) * (3 if precision == "int8" else 2)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if count is not None:
            count(done[0], total)

    if count is not None:
        count(0, total)
    reference = fp32_graphs if precision == "int8" else graphs
    if reference is None:
        raise ValueError("int8 verification needs the fp32 graphs the int8 ones were made from")
    with single_thread(), torch.no_grad():
        torch_out = _torch_reference(model, frames, gate_to_path, tick)
        fp32 = _check_against_torch(model, reference, gate_to_path, frames, torch_out, report,
                                    every_path=precision == "int8", tick=tick)
        if precision == "int8":
            _check_int8(model, graphs, gate_to_path, frames, fp32, report, int8_min_agreement, int8_fused, tick)
    return report


def _torch_reference(model: SegModel, frames: Sequence, gate_to_path: Sequence[int],
                     tick: Callable[[], None] = lambda: None) -> list[dict[str, Any]]:
    stem = model.stem_gate_module().eval()
    names = stem.output_names
    paths = sorted(set(gate_to_path))
    modules = {k: model.path_module(k).eval() for k in paths}
    out = []
    for f in frames:
        x = f.inputs()
        feats = dict(zip(names, (t.numpy() for t in stem(torch.from_numpy(x["rgb"]), torch.from_numpy(x["depth"])))))
        labels = {}
        for k, pm in modules.items():
            logits = pm(*(torch.from_numpy(feats[n]) for n in pm.input_names))
            labels[k] = logits.argmax(1).numpy()
        choice = int(np.argmax(feats["gate_logits"][0])) if "gate_logits" in feats else 0
        out.append({"feats": feats, "labels": labels, "choice": choice})
        tick()
    return out


def _check_against_torch(model, graphs, gate_to_path, frames, ref, report: VerifyReport,
                         every_path: bool = False, tick: Callable[[], None] = lambda: None) -> list[dict[str, Any]]:
    """fp32 graphs vs PyTorch. Returns the ORT outputs per frame: features, gate choice and
    labels on ORT's own features - of the served path, or of every path (`every_path`,
    the int8 comparison's reference)."""
    stem = ort_session(graphs["stem_gate"])
    paths = {k: ort_session(graphs[f"path_{k}"]) for k in sorted(set(gate_to_path))}
    diffs: dict[str, float] = {}
    tols: dict[str, float] = {}
    gate_same = 0
    agree = {k: 0 for k in paths}
    e2e_agree = 0
    pixels = 0
    choices: dict[int, int] = {}
    ort_out = []
    for f, r in zip(frames, ref):
        feats = run_named(stem, f.inputs())
        for name, value in r["feats"].items():
            d, tol = _close(name, feats[name], value)
            diffs[name] = max(diffs.get(name, 0.0), d)
            tols[name] = max(tols.get(name, 0.0), tol)
        choice = int(np.argmax(feats["gate_logits"][0])) if "gate_logits" in feats else 0
        gate_same += choice == r["choice"]
        served = gate_to_path[choice]
        labels = {}
        for k, sess in paths.items():
            out = run_named(sess, r["feats"])            # the same features PyTorch's path saw
            agree[k] += int(np.sum(out["labels"] == r["labels"][k]))
            if every_path or k == served:
                labels[k] = run_named(sess, feats)["labels"]  # ORT all the way
        e2e_agree += int(np.sum(labels[served] == r["labels"][gate_to_path[r["choice"]]]))
        pixels += r["labels"][served].size
        choices[served] = choices.get(served, 0) + 1
        ort_out.append({"feats": feats, "labels": labels, "choice": choice})
        tick()
    n = len(frames)
    report.stem = {"max_abs_diff": diffs, "tolerance": tols, "gate_agreement": gate_same / n}
    for name, d in diffs.items():
        if not d <= tols[name]:
            report.fail(f"stem_gate output {name}: max abs diff {d:.3g} exceeds {tols[name]:.3g}")
    for k in paths:
        a = agree[k] / pixels
        report.paths[f"path_{k}"] = {"label_agreement": a, "passed": a >= MIN_LABEL_AGREEMENT}
        if a < MIN_LABEL_AGREEMENT:
            report.fail(f"path_{k}: labels agree with PyTorch on {a:.4%} of pixels (< {MIN_LABEL_AGREEMENT:.1%})")
    report.end_to_end = {"label_agreement": e2e_agree / pixels,
                         "paths_taken": {f"path_{k}": c for k, c in sorted(choices.items())}}
    num_classes = model.config.num_classes  # type: ignore[attr-defined]
    if all(f.labels is not None for f in frames):
        report.end_to_end["miou"] = miou([o["labels"][gate_to_path[o["choice"]]][0] for o in ort_out],
                                         [f.labels for f in frames], num_classes)
    return ort_out


def _check_int8(model, graphs, gate_to_path, frames, fp32, report: VerifyReport, min_agreement: float,
                fused: bool = True, tick: Callable[[], None] = lambda: None) -> None:
    stem = ort_session(graphs["stem_gate"], fused)
    paths = {k: ort_session(graphs[f"path_{k}"], fused) for k in sorted(set(gate_to_path))}
    per_path = {k: 0 for k in paths}
    pixels = 0
    e2e = 0
    gate_same = 0
    preds = []
    diffs: dict[str, float] = {}
    for f, ref in zip(frames, fp32):
        feats = run_named(stem, f.inputs())
        for name, value in ref["feats"].items():
            diffs[name] = max(diffs.get(name, 0.0), float(np.max(np.abs(feats[name] - value))))
        choice = int(np.argmax(feats["gate_logits"][0])) if "gate_logits" in feats else 0
        gate_same += choice == ref["choice"]
        for k, sess in paths.items():   # fp32 features in: the path's own quantisation error
            per_path[k] += int(np.sum(run_named(sess, ref["feats"])["labels"] == ref["labels"][k]))
        served = gate_to_path[choice]
        labels = run_named(paths[served], feats)["labels"]
        preds.append(labels[0])
        e2e += int(np.sum(labels == ref["labels"][gate_to_path[ref["choice"]]]))
        pixels += labels.size
        tick()
    n = len(frames)
    report.int8 = {
        "kernels": "onnxruntime cpu, fused" if fused else "q/dq arithmetic, unfused",
        "stem_max_abs_diff_vs_fp32": diffs,
        "gate_agreement_vs_fp32": gate_same / n,
        "path_label_agreement_vs_fp32": {f"path_{k}": v / pixels for k, v in per_path.items()},
        "label_agreement_vs_fp32": e2e / pixels,
        "min_agreement": min_agreement,
    }
    if all(f.labels is not None for f in frames):
        num_classes = model.config.num_classes  # type: ignore[attr-defined]
        gts = [f.labels for f in frames]
        m32 = miou([o["labels"][gate_to_path[o["choice"]]][0] for o in fp32], gts, num_classes)
        m8 = miou(preds, gts, num_classes)
        change = m8 - m32 if m8 is not None and m32 is not None else None
        report.int8.update(miou_fp32=m32, miou_int8=m8, miou_change=change)
    if e2e / pixels < min_agreement:
        report.fail(f"int8: labels agree with fp32 on {e2e / pixels:.2%} of pixels "
                    f"(< {min_agreement:.0%}); calibrate on frames like the deployment's (--calib-data)")
