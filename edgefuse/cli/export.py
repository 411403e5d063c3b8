"""`edgefuse export MODEL --out BUNDLE` and `edgefuse inspect BUNDLE` (issue 4).

Thin: flags -> `edgefuse.export.exporter.export_bundle` / `edgefuse.export.bundle`; this
module only draws the progress display and the tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgefuse.cli.common import console, parse_size
from edgefuse.errors import EdgefuseError


def _madds(x: float) -> str:
    return f"{x / 1e9:.2f} G" if x >= 1e9 else f"{x / 1e6:.1f} M"


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def export(
    model: str = typer.Argument(..., help="Checkpoint file, shipped weights name, or registered model."),
    out: Path = typer.Option(..., "--out", "-o", help="Bundle folder to write."),
    input_size: Optional[str] = typer.Option(None, "--input-size", help="HxW (static; one bundle per size)."),
    paths: str = typer.Option("all", "--paths", help="'all' or path indices, e.g. 0,2,4."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 | fp16 (TensorRT flag) | int8 (Q/DQ)."),
    backend: str = typer.Option("onnx", "--backend", help="onnx | tensorrt (builds engines too)."),
    calib_data: Optional[str] = typer.Option(None, "--calib-data",
                                             help="INT8 calibration frames: a dataset folder (train split) or a "
                                                  "recording / camera spec: bag:FILE, rosbag:FILE, "
                                                  "folder:DIR[:SPLIT], synthetic[:SEED] (frames taken evenly "
                                                  "over it, resized to the input size); default: synthetic "
                                                  "benchmark frames."),
    calib_frames: int = typer.Option(32, "--calib-frames", help="Most calibration frames (fewer when the ranges "
                                                                 "are stable, see --calib-tolerance)."),
    calib_tolerance: float = typer.Option(0.02, "--calib-tolerance",
                                          help="Stop calibrating once no tensor's range moved more than this "
                                               "share of its width over a batch of 8 frames; 0: use every frame."),
    int8_target: Optional[str] = typer.Option(None, "--int8-target",
                                              help="int8 scheme for the runtime: cpu (uint8 activations, int8 "
                                                   "weights: ONNX Runtime's fast CPU path) or tensorrt (symmetric "
                                                   "int8); default: tensorrt with --backend tensorrt, else cpu."),
    int8_reduce_range: Optional[bool] = typer.Option(None, "--int8-reduce-range/--no-int8-reduce-range",
                                                     help="cpu scheme: 7-bit weights, so x86 CPUs without VNNI "
                                                          "do not saturate (default: on; see docs/export.md)."),
    verify_data: Optional[str] = typer.Option(None, "--verify-data",
                                              help="Frames to verify on: dataset folder (test split), "
                                                   "a camera spec as for --calib-data, "
                                                   "'synthetic' (default) or 'procedural'."),
    verify_frames: int = typer.Option(8, "--verify-frames", help="Number of verification frames."),
    camera_calibration: Optional[str] = typer.Option(None, "--camera-calibration",
                                                     help="camera.yaml (`edgefuse calibrate`) applied to camera-spec "
                                                          "--calib-data / --verify-data, as `edgefuse run "
                                                          "--calibration` applies it (depth registered)."),
    logits: bool = typer.Option(False, "--logits", help="Path graphs also output logits."),
    force: bool = typer.Option(False, "--force", help="Replace an existing bundle."),
) -> None:
    """Export a model to a bundle: stem_gate.onnx + one graph per path, verified against PyTorch."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from edgefuse.export.exporter import Backend, ExportOptions, Precision, export_bundle

    opts = ExportOptions(input_size=parse_size(input_size), paths=paths, precision=_enum(Precision, precision, "--precision"),
                         backend=_enum(Backend, backend, "--backend"), calib_data=calib_data,
                         calib_frames=calib_frames, calib_tolerance=calib_tolerance, verify_data=verify_data,
                         verify_frames=verify_frames,
                         camera_calibration=camera_calibration, logits=logits, force=force,
                         int8_target=int8_target, int8_reduce_range=int8_reduce_range)
    # A step with counted work (calibration frames) shows done/total and the time left.
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False) as bar:
        task = bar.add_task(f"exporting {model}", total=None, done="")
        last: list[str] = []

        def step(message: str) -> None:
            if last:
                bar.console.print(f"  [green]done[/] {last[-1]}")
            last.append(message)
            bar.reset(task, description=message, total=None, done="")

        def count(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, done=f"{done}/{total}")

        result = export_bundle(model, out, opts, progress=step, count=count)
        if last:
            bar.console.print(f"  [green]done[/] {last[-1]}")
        bar.update(task, description=f"bundle written to {result.bundle}", total=1, completed=1)
    _summary(result)


def _enum(cls, value: str, flag: str):
    try:
        return cls(value)
    except ValueError:
        raise EdgefuseError(f"{flag} {value!r} is not one of {', '.join(m.value for m in cls)}") from None


def _summary(result) -> None:
    from rich.markup import escape
    from rich.table import Table

    m = result.manifest
    v = result.verify
    int8 = bool(v.get("int8"))
    table = Table(title=f"{m.model.get('name') or m.source}: {m.input_size[0]}x{m.input_size[1]}, {m.precision}, "
                        f"verified on {v['frames']} frames")
    for col in ("graph", "decision", "serves", "MAdds", "ONNX MAdds", "size", "vs PyTorch") + (("int8 vs fp32",) if int8 else ()):
        table.add_column(col, justify="left" if col in ("graph", "decision", "serves") else "right")
    graphs = {g.name: g for g in result.graphs}
    stem = graphs["stem_gate"]
    diff = max(v["stem"]["max_abs_diff"].values(), default=0.0)
    row = ["stem_gate", "-", "-", _madds(stem.madds), _madds(stem.onnx_madds), _size(stem.size_bytes),
           f"max|d| {diff:.0e}"]
    if int8:
        row.append(f"gate {v['int8']['gate_agreement_vs_fp32']:.0%}")
    table.add_row(*row)
    for p in m.paths:
        g = graphs[f"path_{p.index}"]
        served = [c for c, k in enumerate(m.gate_to_path) if k == p.index]
        row = [f"path_{p.index}", "".join("1" if d else "0" for d in p.decision), ",".join(map(str, served)),
               _madds(p.path_madds), _madds(g.onnx_madds), _size(g.size_bytes),
               f"{v['paths'][f'path_{p.index}']['label_agreement']:.2%}"]
        if int8:
            row.append(f"{v['int8']['path_label_agreement_vs_fp32'][f'path_{p.index}']:.1%}")
        table.add_row(*row)
    console.print(table)
    console.print("vs PyTorch: share of pixels whose label agrees (paths), max abs diff of features (stem)")
    e2e = v["end_to_end"]
    line = f"end to end (ORT stem -> gate -> path vs PyTorch): {e2e['label_agreement']:.3%} of pixels agree"
    if e2e.get("miou") is not None:
        line += f", mIoU {e2e['miou']:.3f}"
    console.print(line)
    if int8:
        i8 = v["int8"]
        text = f"int8 vs fp32: labels {i8['label_agreement_vs_fp32']:.2%}, gate {i8['gate_agreement_vs_fp32']:.0%}"
        if i8.get("miou_change") is not None:
            text += f", mIoU {i8['miou_fp32']:.3f} -> {i8['miou_int8']:.3f} ({i8['miou_change']:+.3f})"
        console.print(text)
    calib = m.calibration
    if calib.get("max_frames"):
        console.print(f"calibration: {calib['frames']} of at most {calib['max_frames']} frames "
                      f"({escape(calib.get('stop_rule', ''))}), one pass for all graphs: "
                      f"{calib['one_pass']['distinct']} distinct of {calib['one_pass']['tensors']} tensors")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    console.print(f"[green]verified[/] on {escape(v['frames_source'])}; bundle: {escape(str(result.bundle))}")
    console.print(f"next: [bold]edgefuse run --bundle {escape(str(result.bundle))} --camera synthetic[/]",
                  soft_wrap=True)


def _preprocessing_text(n: dict) -> str:
    """The normalisation inside stem_gate.onnx, and how a zero (missing) depth is treated."""
    mode = n.get("depth_mode", "raw")
    zero = "missing depth 0 stays 0" if mode == "raw" else "every depth value normalised, 0 included"
    return (f"RGB /255 mean {n.get('rgb_mean')} std {n.get('rgb_std')}; depth {n.get('depth_unit', 'mm')} "
            f"mean {n.get('depth_mean')} std {n.get('depth_std')}, {mode} ({zero})")


def inspect(bundle: Path = typer.Argument(..., help="Bundle folder written by `edgefuse export`.")) -> None:
    """Show a bundle's manifest and re-check every file's sha256 (exit 2 on any mismatch)."""
    from rich.table import Table

    from edgefuse.export.bundle import BundleIntegrityError, check_files
    from edgefuse.export.manifest import read_manifest

    if not bundle.is_dir():
        raise EdgefuseError(f"bundle folder {bundle} not found; write one with `edgefuse export MODEL --out "
                            f"{bundle}` (e.g. MODEL = dynmm-tiny-synth)")
    m = read_manifest(bundle)
    head = Table(title=f"bundle {bundle}", show_header=False)
    head.add_column("field")
    head.add_column("value")
    rows = [("format_version", str(m.format_version)), ("edgefuse_version", m.edgefuse_version),
            ("model", f"{m.model.get('name', '')} ({m.model.get('family', '')})"), ("source", m.source),
            ("weights_sha256", m.weights_sha256 or "none (random init)"),
            ("input_size", f"{m.input_size[0]}x{m.input_size[1]}"),
            ("precision", f"graphs {m.precision}, engines {m.engine_precision}; labels {m.labels_dtype}"
                          + (f"; int8 for {m.int8_scheme}" if m.int8_scheme else "")),
            ("classes", f"{len(m.classes)}: {', '.join(m.classes[:6])}{' ...' if len(m.classes) > 6 else ''}"),
            ("preprocessing", _preprocessing_text(m.normalization)),
            ("gate_to_path", str(list(m.gate_to_path))),
            ("weights", _weights_text(m)),
            ("verified", _verify_text(m.verify))]
    if m.calibration:
        rows.append(("calibration", str(m.calibration)))
    for k, v in rows:
        head.add_row(k, v)
    console.print(head)
    paths = Table(title="paths (MAdds per frame)")
    for col in ("index", "decision", "MAdds", "depth encoder", "graph", "file", "inputs"):
        paths.add_column(col, no_wrap=col == "file")
    for p in m.paths:
        paths.add_row(str(p.index), "".join("1" if d else "0" for d in p.decision), _madds(p.madds),
                      _madds(p.depth_encoder_madds), _madds(p.path_madds), p.file, ", ".join(p.inputs))
    console.print(paths)
    if m.engines:
        eng = Table(title="engines (device memory as the build reported it)")
        for col in ("graph", "backend", "precision", "file", "TensorRT", "GPU", "CC", "weights", "device memory"):
            eng.add_column(col, justify="right" if col in ("weights", "device memory") else "left")
        for e in m.engines:
            eng.add_row(e.graph, e.backend, e.precision, e.file, e.tensorrt_version, e.gpu_name, e.compute_capability,
                        ("stripped, " if e.stripped else "in plan, ") + (_size(e.weights_bytes) if e.weights_bytes else "?"),
                        _size(e.device_memory_bytes + e.weights_bytes) if e.device_memory_bytes else "not recorded")
        console.print(eng)
        if all(e.device_memory_bytes for e in m.engines):
            total = sum(e.device_memory_bytes + e.weights_bytes for e in m.engines)
            console.print(f"all engines loaded: {_size(total)} of device memory (activations/scratch per engine "
                          "+ its weights: TensorRT shares no weights between engines)")
    checks = check_files(bundle, m)
    refs = _reference_check(bundle, m)
    files = Table(title="files (sha256 re-checked)")
    for col in ("role", "file", "status"):
        files.add_column(col)
    for c in checks + [refs]:
        files.add_row(c.role, c.file, "[green]ok[/]" if c.ok else f"[red]{c.problem}[/]")
    console.print(files)
    bad = [c for c in checks + [refs] if not c.ok]
    if bad:
        raise BundleIntegrityError("integrity check failed for " + ", ".join(f"{c.file} ({c.problem})" for c in bad)
                                   + "; re-export the bundle")
    console.print(f"[green]all {len(checks)} files match the manifest[/]; the graphs reference no other file")


def _reference_check(bundle: Path, m):
    """The graphs' external-data references, checked as load_bundle checks them."""
    from edgefuse.export.bundle import FileCheck, graph_external_refs, resolve_in_bundle

    graphs = [("stem_gate", m.stem_gate.file)] + [(f"path_{p.index}", p.file) for p in m.paths]
    try:
        graph_external_refs(bundle.resolve(), m, {g: resolve_in_bundle(bundle.resolve(), f) for g, f in graphs})
    except (EdgefuseError, OSError) as exc:
        return FileCheck("references", "graphs -> weights", False, str(exc))
    return FileCheck("references", "graphs -> weights", True)


def _weights_text(m) -> str:
    w = m.weights
    if w is None:
        return (f"inside every graph (bundle format {m.format_version}); re-export to store them once")
    return (f"{w.file}: {_size(w.size_bytes)}, {w.tensors} tensors stored once for "
            f"{_size(w.referenced_bytes)} referenced by the graphs")


def _verify_text(entry) -> str:
    if entry is None:
        return "-"
    s = entry.summary
    text = (f"{'passed' if entry.passed else 'FAILED'} on {s.get('frames')} frames ({s.get('frames_source')}): "
            f"stem max|d| {s.get('stem_max_abs_diff', 0):.1e}, paths >= {s.get('min_path_label_agreement', 0):.2%} "
            f"of labels agree")
    i8 = s.get("int8")
    if i8:
        text += f"; int8 vs fp32 {i8.get('label_agreement_vs_fp32', 0):.2%}"
        if i8.get("miou_change") is not None:
            text += f", mIoU {i8['miou_change']:+.3f}"
    return text


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("inspect")(inspect)
