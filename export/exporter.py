"""`export_bundle`: a trained (or registry) model -> a verified bundle folder.

    stem_gate.onnx     raw rgb/depth -> stem features (+ gate_logits)
    path_<k>.onnx      the features path k consumes -> labels (argmax in the graph)
    verify.json        ORT vs PyTorch on real frames (export/verify.py)
    manifest.json      everything the runtime needs (export/manifest.py)
    engines/           TensorRT engines and the timing cache (--backend tensorrt)

The bundle is written into a temporary folder beside the output and renamed into place
only when verification passed; a bundle that failed is kept as `<out>.failed` for
inspection (its manifest says passed: false, and load_bundle refuses it). Nothing in the
files depends on time or on where the checkpoint lives, so exporting the same weights
twice gives byte-identical bundles.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import onnx
import torch

import edgefuse
from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.export import manifest as mf
from edgefuse.export.bundle import sha256_file
from edgefuse.export.onnx_graphs import LABELS_DTYPE, LabelsHead, check_graph, conv_madds, export_onnx, tensor_specs
from edgefuse.export.weights import PackResult, pack_weights


class Precision(str, enum.Enum):
    FP32 = "fp32"
    FP16 = "fp16"   # a TensorRT build flag: the ONNX graphs stay fp32
    INT8 = "int8"   # Q/DQ graphs (explicit quantisation), for ORT and TensorRT alike


class Backend(str, enum.Enum):
    ONNX = "onnx"
    TENSORRT = "tensorrt"


class VerificationError(EdgefuseError):
    """The exported graphs do not reproduce the PyTorch model."""


@dataclass(frozen=True)
class ExportOptions:
    input_size: tuple[int, int] | None = None   # default: the model config's
    paths: str | Sequence[int] = "all"           # "all", "0,2,4" or a list of path indices
    precision: Precision = Precision.FP32
    backend: Backend = Backend.ONNX
    calib_data: str | Path | None = None          # dataset folder (train split), "synthetic"/"procedural",
                                                  # or a camera spec: bag:FILE, rosbag:FILE, folder:DIR[:SPLIT], synthetic:SEED
    calib_frames: int = 32                        # the most calibration frames (fewer once ranges are stable)
    calib_tolerance: float = 0.02                 # stop calibrating when the ranges moved less than this share (weighted mean)
                                                  # of its width over a batch of frames; 0: every frame
    verify_data: str | Path | None = None         # frames to verify on (test split); default synthetic
    verify_frames: int = 8
    camera_calibration: str | Path | None = None  # camera.yaml applied to camera-spec calib/verify sources
    logits: bool = False                          # path graphs also output logits
    force: bool = False
    int8_min_agreement: float = 0.90
    int8_target: str | None = None                # cpu | tensorrt; default: tensorrt for --backend tensorrt, else cpu
    int8_reduce_range: bool | None = None         # cpu scheme: 7-bit weights; None: decided by int8_reduce_range()
    workspace_mb: int = 1024                      # TensorRT builder workspace


@dataclass
class GraphResult:
    name: str                  # stem_gate | path_<k>
    file: str
    size_bytes: int
    madds: float               # PyTorch cost table
    onnx_madds: float          # counted from the graph's conv nodes
    ops: int


@dataclass
class ExportResult:
    bundle: Path
    manifest: mf.Manifest
    verify: dict[str, Any]
    graphs: list[GraphResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    weights: PackResult | None = None


Progress = Callable[[str], None]     # a step begins: its description
Count = Callable[[int, int], None]   # the current step has done `done` of `total` units (frames)


def parse_paths(spec: str | Sequence[int], num_paths: int) -> list[int]:
    """'all' | '0,2,4' | [0, 2, 4] -> sorted unique indices, each checked against the path set."""
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text == "all":
            return list(range(num_paths))
        try:
            items = [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"--paths {spec!r} is not 'all' or a comma list of path indices such as 0,2,4") from None
    else:
        items = [int(x) for x in spec]
    bad = [k for k in items if not 0 <= k < num_paths]
    if not items or bad:
        raise ConfigError(f"--paths {spec!r}: the model has paths 0..{num_paths - 1}" +
                          (f"; {bad} out of range" if bad else ""))
    return sorted(set(items))


def gate_to_path(model, exported: list[int]) -> list[int]:
    """For every gate choice, the exported path that serves it: the cheapest one that fuses
    at least where the choice fuses (so the runtime never meets a choice it cannot run)."""
    out = []
    for k, decision in enumerate(model.paths):
        try:
            out.append(model.paths.fallback_for(decision, exported))
        except ConfigError:
            raise ConfigError(
                f"gate choice {k} (fuses {list(decision)}) has no exported path that fuses at least as "
                f"much; add path {k} to --paths (exported: {exported})") from None
    return out


def prepare_output(out: Path, force: bool) -> None:
    """Refuse to overwrite without --force, and never delete a folder that is not a bundle."""
    if out.exists() and not out.is_dir():
        raise EdgefuseError(f"output {out} exists and is a file; choose a folder name for the bundle")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise EdgefuseError(f"output folder {out} already exists; pass --force to replace it")
        if not (out / mf.MANIFEST_NAME).is_file():
            raise EdgefuseError(f"refusing to replace {out}: it is not empty and not an edgefuse bundle "
                                "(no manifest.json); choose another --out")


def load_for_export(spec: str | Path, input_size: tuple[int, int] | None):
    """load_model with the errors a user can fix turned into EdgefuseError."""
    from edgefuse.checkpoint import load_model

    try:
        loaded = load_model(spec, input_size=input_size)
    except EdgefuseError:
        raise
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        # e.g. tensor shapes that do not match the config stored in the checkpoint
        raise EdgefuseError(f"checkpoint {spec} is incompatible with the model it describes: {exc}") from exc
    model = loaded.model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if hasattr(model, "freeze_exchange"):
        model.freeze_exchange()   # CEN: exchange masks become constants (a static graph)
    return loaded, model


def export_bundle(spec: str | Path, out_dir: str | Path, options: ExportOptions | None = None, *,
                  progress: Progress | None = None, count: Count | None = None,
                  **overrides: Any) -> ExportResult:
    """Export `spec` (checkpoint path, shipped weights name or registry name) to the bundle
    folder `out_dir`. Options as ExportOptions or keyword overrides (`paths="0,2,4"`).
    Raises EdgefuseError for user errors and VerificationError when the graphs fail."""
    opts = replace(options or ExportOptions(), **overrides)
    opts = replace(opts, precision=Precision(opts.precision), backend=Backend(opts.backend))
    say = progress or (lambda message: None)
    tick = count or (lambda done, total: None)
    out = Path(out_dir)
    int8_scheme(opts)   # a bad --int8-target fails before any work
    if not 0 <= opts.calib_tolerance < 1:
        raise ConfigError(f"--calib-tolerance {opts.calib_tolerance} must be >= 0 (0: every calibration frame) "
                          "and < 1 (a share of each tensor's range)")
    prepare_output(out, opts.force)
    if opts.backend is Backend.TENSORRT:
        from edgefuse.export.tensorrt_build import check_build_machine

        check_build_machine(opts.precision.value)   # fail before minutes of work

    loaded, model = load_for_export(spec, opts.input_size)
    exported = parse_paths(opts.paths, model.num_paths)
    serving = gate_to_path(model, exported)

    work = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        result = _build(loaded, model, exported, serving, opts, work, say, tick)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if not result.manifest.verify or not result.manifest.verify.passed:
        failed = out.with_name(out.name + ".failed")
        shutil.rmtree(failed, ignore_errors=True)
        work.rename(failed)
        reasons = "; ".join(result.verify.get("failures", [])) or "see verify.json"
        raise VerificationError(f"verification failed: {reasons}. Nothing was written to {out}; the failed "
                                f"bundle is kept at {failed} for inspection")
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        work.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        work.rename(out)
    result.bundle = out
    return result


@dataclass
class _Graphs:
    files: dict[str, Path]            # "stem_gate" / "path_<k>" -> ONNX file
    stem_outputs: tuple[str, ...]
    path_inputs: dict[int, tuple[str, ...]]
    path_outputs: tuple[str, ...]


def _build(loaded, model, exported: list[int], serving: list[int], opts: ExportOptions, work: Path,
           say: Progress, count: Count) -> ExportResult:
    from edgefuse.export.calib_frames import EVAL_SEED
    from edgefuse.export.verify import verify_bundle
    from edgefuse.models.costs import measure_costs

    h, w = loaded.config.input_size
    notes: list[str] = []
    costs = measure_costs(model)
    int8 = opts.precision is Precision.INT8
    fp32_dir = work / ".fp32" if int8 else work   # int8: fp32 graphs are an intermediate
    fp32_dir.mkdir(exist_ok=True)
    graphs = _export_graphs(model, exported, opts.logits, fp32_dir, say)
    fp32_files = dict(graphs.files)
    calibration: dict[str, Any] = {}
    if int8:
        calibration = _quantize(graphs, opts, work, (h, w), notes, say, count)
    say("store the weights once")
    packed = pack_weights(graphs.files, work)
    for name, path in graphs.files.items():
        say(f"check {name}")
        check_graph(path)

    say("load verification frames")
    frames, source = _frames(opts.verify_data, opts.verify_frames, (h, w), EVAL_SEED, "test", notes,
                            opts.camera_calibration)
    say(f"verify on {len(frames)} frames")
    # A cpu-scheme bundle is verified in the int8 kernels it will run in; a tensorrt one in its
    # Q/DQ arithmetic (this CPU's int8 kernels are not what will execute it).
    scheme = int8_scheme(opts)
    report = verify_bundle(model, graphs.files, serving, frames, source, opts.precision.value,
                           fp32_graphs=fp32_files if int8 else None, int8_min_agreement=opts.int8_min_agreement,
                           int8_fused=scheme is None or scheme.target == "cpu", count=count)
    verify_path = work / mf.VERIFY_NAME
    verify_path.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    if int8:
        shutil.rmtree(fp32_dir)

    engines: tuple[mf.EngineEntry, ...] = ()
    if opts.backend is Backend.TENSORRT and report.passed:
        from edgefuse.export.tensorrt_build import build_engines

        engines = tuple(build_engines(work, {n: p.name for n, p in graphs.files.items()}, opts.precision.value,
                                      opts.workspace_mb << 20, say, strip=True))
    if opts.precision is Precision.FP16 and opts.backend is Backend.ONNX:
        notes.append("fp16 is a TensorRT build flag: the ONNX graphs are fp32; TensorRT engines built "
                     "from this bundle use fp16 (manifest engine_precision)")

    # Graph structure only: shapes, names and conv MAdds need no weight bytes.
    protos = {name: onnx.load(str(path), load_external_data=False) for name, path in graphs.files.items()}
    weights = mf.WeightsEntry(file=packed.file, sha256=sha256_file(work / packed.file), size_bytes=packed.size_bytes,
                              tensors=packed.tensors, referenced_bytes=packed.referenced_bytes)
    manifest = _manifest(loaded, model, costs, graphs, protos, serving, opts, engines, calibration, weights,
                         mf.VerifyEntry(file=mf.VERIFY_NAME, sha256=sha256_file(verify_path),
                                        passed=report.passed, summary=report.summary()))
    mf.write_manifest(work, manifest)
    madds = {"stem_gate": manifest.stem_gate.madds, **{f"path_{p.index}": p.path_madds for p in manifest.paths}}
    results = [GraphResult(name, path.name, path.stat().st_size, madds[name], conv_madds(protos[name], path.parent),
                           len(protos[name].graph.node)) for name, path in graphs.files.items()]
    return ExportResult(work, manifest, report.to_dict(), results, notes, packed)


def _export_graphs(model, exported: list[int], logits: bool, out: Path, say: Progress) -> _Graphs:
    """stem_gate.onnx and path_<k>.onnx (fp32) into `out`."""
    h, w = model.config.input_size
    stem = model.stem_gate_module().eval()
    # Fixed example inputs: the trace (and so the file) must not depend on random numbers.
    rgb = torch.full((1, 3, h, w), 128.0)
    depth = torch.full((1, 1, h, w), 2000.0)
    with torch.no_grad():
        feats = dict(zip(stem.output_names, stem(rgb, depth)))
    say("export stem_gate")
    files = {"stem_gate": _write(out / "stem_gate.onnx",
                                 export_onnx(stem, (rgb, depth), ("rgb", "depth"), stem.output_names))}
    outputs = ("labels", "logits") if logits else ("labels",)
    inputs = {}
    for k in exported:
        say(f"export path_{k}")
        pm = model.path_module(k).eval()
        inputs[k] = tuple(pm.input_names)
        data = export_onnx(LabelsHead(pm, logits), [feats[n] for n in pm.input_names], pm.input_names, outputs)
        files[f"path_{k}"] = _write(out / f"path_{k}.onnx", data)
    return _Graphs(files, tuple(stem.output_names), inputs, outputs)


def int8_scheme(opts: ExportOptions):
    """The quantisation scheme for an export (None unless --precision int8): the target's
    (--int8-target, default from --backend), checked against what the backend accepts."""
    from edgefuse.export.int8 import int8_scheme as scheme_for, resolve_reduce_range

    if opts.precision is not Precision.INT8:
        if opts.int8_target is not None or opts.int8_reduce_range is not None:
            raise ConfigError("--int8-target / --int8-reduce-range apply to --precision int8 only")
        return None
    target = opts.int8_target or ("tensorrt" if opts.backend is Backend.TENSORRT else "cpu")
    if target == "cpu" and opts.backend is Backend.TENSORRT:
        raise ConfigError("--int8-target cpu quantises activations to uint8 with zero points, which TensorRT "
                          "rejects; use --int8-target tensorrt with --backend tensorrt (or --backend onnx)")
    reduce = resolve_reduce_range(target, opts.int8_reduce_range)
    return scheme_for(target, reduce)


def _quantize(graphs: _Graphs, opts: ExportOptions, work: Path, size: tuple[int, int], notes: list[str],
              say: Progress, count: Count) -> dict[str, Any]:
    """Replace graphs.files by Q/DQ int8 graphs in `work`; returns the manifest's calibration
    record. Path graphs are calibrated on the fp32 stem graph's features (export/int8.py), all
    graphs in one pass over the frames, each tensor they share once (export/calibrate.py)."""
    from edgefuse.export.calib_frames import CALIB_SEED, spread_order
    from edgefuse.export.calibrate import NotMergeable, calibrate, shared_graph
    from edgefuse.export.int8 import path_feeds, prepare_graph, quantize_graph, stem_feeds
    from edgefuse.export.verify import ort_session
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    scheme = int8_scheme(opts)
    say(f"load calibration frames ({scheme.target} int8 scheme)")
    calib, source = _frames(opts.calib_data, opts.calib_frames, size, CALIB_SEED, "train", notes,
                           opts.camera_calibration)
    # Any prefix of the frames spreads over the source (the calibration may stop early).
    feeds = stem_feeds([calib[i] for i in spread_order(len(calib))])
    fp32 = dict(graphs.files)
    targets = [n for n in fp32 if n != "stem_gate" or scheme.quantize_stem]
    prep = work / ".calib"
    prep.mkdir(exist_ok=True)
    prepared = {n: prepare_graph(p, prep / p.name) for n, p in fp32.items()}
    say(f"calibrate {len(targets)} graphs in one pass (at most {len(feeds)} frames)")
    try:
        models = {n: load_model_with_shape_infer(p) for n, p in prepared.items()}
        shared = shared_graph(models.pop("stem_gate"), models, targets)
        del models
    except NotMergeable:   # one calibration per graph, as quantize_static does it
        shared = None
    shutil.rmtree(prep)
    result = None
    if shared is not None:
        result = calibrate(shared, feeds, len(feeds), scheme.calibration, opts.calib_tolerance, count)
        del shared
    else:
        stem_session = ort_session(fp32["stem_gate"])
    say(f"quantize {len(targets)} graphs" + ("" if result is not None else " (calibrating each)"))
    count(0, len(targets))
    for name in fp32:
        graphs.files[name] = work / fp32[name].name
        if name not in targets:
            shutil.copyfile(fp32[name], graphs.files[name])   # the scheme keeps it fp32
            continue
        if result is not None:
            quantize_graph(fp32[name], graphs.files[name], None, scheme, ranges=result.ranges[name])
        else:
            graph_feeds = feeds if name == "stem_gate" else path_feeds(
                stem_session, feeds, graphs.path_inputs[int(name.split("_")[1])])
            quantize_graph(fp32[name], graphs.files[name], graph_feeds, scheme)
        count(targets.index(name) + 1, len(targets))
    record = {**scheme.record(), "frames": len(feeds), "source": source}
    if result is not None:
        record.update(result.record(opts.calib_tolerance))
    return record


def _manifest(loaded, model, costs, graphs: _Graphs, protos: dict, serving: list[int], opts: ExportOptions,
              engines: tuple[mf.EngineEntry, ...], calibration: dict[str, Any], weights: mf.WeightsEntry,
              verify: mf.VerifyEntry) -> mf.Manifest:
    cfg = loaded.config
    cost_of = {p.index: p for p in costs.paths}
    paths = []
    for k, inputs in graphs.path_inputs.items():
        c = cost_of[k]
        paths.append(mf.PathEntry(
            index=k, decision=tuple(model.paths[k]), madds=c.madds, depth_encoder_madds=c.depth_encoder_madds,
            path_madds=c.path_madds, file=f"path_{k}.onnx", sha256=sha256_file(graphs.files[f"path_{k}"]),
            inputs=inputs, outputs=graphs.path_outputs, tensors=_specs(protos[f"path_{k}"])))
    return mf.Manifest(
        format_version=mf.FORMAT_VERSION,
        edgefuse_version=edgefuse.__version__,
        model=cfg.to_dict(),
        weights_sha256=loaded.weights_sha256,
        source=_source_name(loaded),
        input_size=tuple(cfg.input_size),
        normalization=_normalization(cfg),
        classes=tuple(cfg.class_names) or tuple(f"class_{i}" for i in range(cfg.num_classes)),
        palette=tuple(tuple(c) for c in (cfg.palette or _palette(cfg.num_classes))),
        precision="int8" if opts.precision is Precision.INT8 else "fp32",
        engine_precision=opts.precision.value,
        labels_dtype=str(LABELS_DTYPE).removeprefix("torch."),
        logits=opts.logits,
        stem_gate=mf.GraphEntry(
            file="stem_gate.onnx", sha256=sha256_file(graphs.files["stem_gate"]), inputs=("rgb", "depth"),
            outputs=graphs.stem_outputs, tensors=_specs(protos["stem_gate"]),
            madds=costs.stem_madds + costs.gate_madds),
        paths=tuple(paths),
        gate_to_path=tuple(serving),
        path_set=tuple(tuple(d) for d in model.paths),
        engines=engines,
        verify=verify,
        calibration=calibration,
        weights=weights,
        int8_target=calibration.get("target", ""),
        operating_point=model.operating_point.to_dict() if model.operating_point is not None else {},
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _specs(proto) -> tuple[mf.TensorSpec, ...]:
    return tuple(mf.TensorSpec(s["name"], tuple(s["shape"]), s["dtype"]) for s in tensor_specs(proto))


def _frames(source, count: int, size: tuple[int, int], seed: int, split: str, notes: list[str],
            camera_calibration=None):
    """Frames from `source`; the default (synthetic benchmark) falls back to procedural
    frames when the synth extra (Open3D) is missing, and says so in the report."""
    from edgefuse.export.calib_frames import load_frames, source_label
    from edgefuse.errors import MissingExtraError

    if source is None:
        try:
            return load_frames("synthetic", count, size, seed=seed), f"synthetic benchmark (seed {seed})"
        except MissingExtraError as exc:
            notes.append(f"synthetic frames unavailable ({exc}); used procedural frames")
            return load_frames("procedural", count, size, seed=seed), f"procedural (seed {seed})"
    return (load_frames(source, count, size, seed=seed, split=split, camera_calibration=camera_calibration),
            source_label(source, split))


def _source_name(loaded) -> str:
    # Only the file name of a checkpoint: the bundle must not depend on (or leak) where
    # the checkpoint lived on the exporting machine.
    return Path(loaded.source).name if loaded.kind == "checkpoint" else str(loaded.source)


def _normalization(cfg) -> dict[str, Any]:
    return {"in_graph": True, "rgb_range": [0, 255], "rgb_order": "RGB", "rgb_mean": list(cfg.rgb_mean),
            "rgb_std": list(cfg.rgb_std), "depth_unit": "mm", "depth_invalid": 0,
            "depth_mean": cfg.depth_mean, "depth_std": cfg.depth_std,
            # how a zero (missing) depth is treated; recorded only when not edgefuse's default,
            # so manifests of earlier models stay byte-identical
            **({"depth_mode": cfg.depth_mode} if cfg.depth_mode != "raw" else {})}


def _palette(num_classes: int) -> list[list[int]]:
    from edgefuse.data.classes import default_palette

    return default_palette(num_classes)
