"""`edgefuse import` against the official code: the same predictions, pixel for pixel.

    python benchmarks/vs_official_import.py --esanet /tmp/ESANet --dynmm /tmp/DynMM \\
        [--variants esanet-r34-nbt1d-nyuv2,...] [--input-size 480x640] [--frames 2] [--threads 1]
    python benchmarks/vs_official_import.py --esanet /tmp/ESANet --dynmm /tmp/DynMM --write-facts

`--esanet` / `--dynmm` are checkouts of https://github.com/TUI-NICR/ESANet and
https://github.com/zihuixue/DynMM (e.g. `git --git-dir=MIRROR worktree add /tmp/ESANet`);
nothing of them is copied into this repository. For each variant, in a subprocess of its
own (both repositories name their package `src`):

1. the official model is built by the official `src.build_model.build_model` from the
   official argument parser (the arguments of the published model), with seeded random
   weights, *perturbed BatchNorm statistics* and perturbed learned-upsampling kernels, so
   that every layer and every buffer matters; it is saved as the official training script
   saves (`{'epoch', 'state_dict', 'optimizer'}`) with torch.save;
2. `edgefuse import` (the CLI, in process) turns that file into an edgefuse checkpoint;
3. frames (RGB uint8, depth uint16 mm with ~15% holes: blocks and speckle) are written as PNGs; the official
   inference (`inference_samples.py`'s steps: the official `prepare_data` preprocessor with
   `--raw_depth`, the model, bilinear resize to the image size, argmax) runs on them;
4. compared with it: the imported model in PyTorch (logits), the bundle exported by
   `edgefuse export --logits` through ONNX Runtime (logits), and the masks written by
   `edgefuse run --bundle B --camera folder:FRAMES --save-masks M` (mask = official argmax+1).

What runs around the official code, and only there (it cannot be installed here):
  - torchvision: its `src/preprocessing.py` uses `transforms.Compose` and
    `transforms.Normalize` only. A stub module is put in sys.modules in the subprocess with
    those two (Compose applies the list in order; Normalize does tensor.sub(mean).div(std)
    with mean/std as float32 tensors of shape C x 1 x 1, as torchvision's does);
  - pandas and cityscapesscripts, when missing: `src/utils.py` / `resnet.py` import pandas
    for logs, `src/datasets` imports cityscapesscripts for the Cityscapes class list; empty
    stub modules stand in (nothing of them is called on this path);
  - DynMM's constructor moves cost constants with `.cuda()`: without CUDA, Tensor.cuda
    returns the tensor while the model is built. Its gate runs with `hard_gate = True` (the
    official eval.py --hard): one path per frame.

`--write-facts` records, from the official code, each variant's state-dict names and
shapes (tests/importers/data/official_layouts.json; CI checks the mapping against them)
and the official display colours (edgefuse/resources/official_palettes.json).
Results: benchmarks/results/vs_official_import.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# variant -> (repository, dataset, official arguments of the published / paper model)
VARIANTS: dict[str, tuple[str, str, list[str]]] = {
    "esanet-r34-nbt1d-nyuv2": ("esanet", "nyuv2", ["--dataset", "nyuv2"]),
    "esanet-r34-nbt1d-sunrgbd": ("esanet", "sunrgbd", ["--dataset", "sunrgbd"]),
    "esanet-r50-nyuv2": ("esanet", "nyuv2", ["--dataset", "nyuv2", "--encoder", "resnet50"]),
    "esanet-r18-nyuv2": ("esanet", "nyuv2", ["--dataset", "nyuv2", "--encoder", "resnet18",
                                             "--encoder_block", "BasicBlock"]),
    "dynmm-r50-nyuv2": ("dynmm", "nyuv2", ["--dataset", "nyuv2", "--dynamic", "--global-gate",
                                           "--encoder", "resnet50", "--fuse_depth_in_rgb_encoder", "SE-add"]),
}
REPOSITORIES = {"esanet": "https://github.com/TUI-NICR/ESANet", "dynmm": "https://github.com/zihuixue/DynMM"}
LAYOUTS = REPO / "tests" / "importers" / "data" / "official_layouts.json"
PALETTES = REPO / "edgefuse" / "resources" / "official_palettes.json"


# --- running the official code -----------------------------------------------------------------
def _module(name: str) -> types.ModuleType:
    """An empty module with a spec (torch's import-time scans call find_spec on modules)."""
    import importlib.machinery

    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    return mod


def _stub_modules() -> None:
    """torchvision (and pandas if absent): only what the official preprocessing calls."""
    import torch

    tv = _module("torchvision")
    transforms = _module("torchvision.transforms")

    class Compose:
        def __init__(self, steps):
            self.steps = list(steps)

        def __call__(self, x):
            for step in self.steps:
                x = step(x)
            return x

    class Normalize:
        def __init__(self, mean, std):
            self.mean, self.std = mean, std

        def __call__(self, t):
            mean = torch.as_tensor(self.mean, dtype=t.dtype).view(-1, 1, 1)
            std = torch.as_tensor(self.std, dtype=t.dtype).view(-1, 1, 1)
            return t.sub(mean).div(std)

    transforms.Compose, transforms.Normalize = Compose, Normalize
    tv.transforms = transforms
    sys.modules["torchvision"], sys.modules["torchvision.transforms"] = tv, transforms
    try:
        import pandas  # noqa: F401
    except ImportError:
        sys.modules["pandas"] = _module("pandas")
    try:
        import cityscapesscripts  # noqa: F401
    except ImportError:   # its Cityscapes class lists, built when src.datasets is imported
        for name in ("cityscapesscripts", "cityscapesscripts.helpers", "cityscapesscripts.helpers.labels"):
            sys.modules[name] = _module(name)
        # 34 placeholder labels, all ignored in evaluation (the class lists come out empty)
        placeholder = types.SimpleNamespace(name="", color=(0, 0, 0), trainId=255, ignoreInEval=True)
        sys.modules["cityscapesscripts.helpers.labels"].labels = [placeholder] * 34  # type: ignore[attr-defined]


def _official_root(path: str, repo: str) -> Path:
    root = Path(path).expanduser().resolve()
    for cand in (root, root / "FusionDynMM"):
        if (cand / "src" / "build_model.py").is_file():
            return cand
    raise SystemExit(f"{path}: no src/build_model.py there; pass a checkout of {REPOSITORIES[repo]}")


@contextlib.contextmanager
def _cpu_constants():
    import torch

    original = torch.Tensor.cuda
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *a, **k: self   # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda = original   # type: ignore[method-assign]


def _official(root: Path, variant: str, size: tuple[int, int]):
    """(model, preprocessor, dataset object, args) built by the official code."""
    repo, _, extra = VARIANTS[variant]
    sys.path.insert(0, str(root))
    _stub_modules()
    from src.args import ArgumentParserRGBDSegmentation
    from src.build_model import build_model
    from src.prepare_data import prepare_data

    parser = ArgumentParserRGBDSegmentation(description="official model (benchmark)")
    parser.set_common_args()
    args = parser.parse_args([*extra, "--raw_depth", "--height", str(size[0]), "--width", str(size[1])])
    args.pretrained_on_imagenet = False   # as its inference scripts do
    args.dataset_dir = None               # no dataset files: the preprocessor and class lists only
    with contextlib.redirect_stdout(sys.stderr):
        dataset, preprocessor = prepare_data(args, with_input_orig=True)
        with _cpu_constants():
            model, _ = build_model(args, n_classes=dataset.n_classes_without_void)
    model = model.cpu().eval()
    if repo == "dynmm":
        model.hard_gate = True
    return model, preprocessor, dataset, args


def _perturb(model, seed: int) -> None:
    """Seeded random weights everywhere, BatchNorm statistics far from (0, 1), learned
    upsampling kernels away from their bilinear initialisation."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)

    def rnd(t, lo, hi):
        return torch.rand(t.shape, generator=g) * (hi - lo) + lo

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(rnd(m.weight, 0.5, 1.5))
                m.bias.copy_(rnd(m.bias, -0.2, 0.2))
                m.running_mean.copy_(rnd(m.running_mean, -0.3, 0.3))
                m.running_var.copy_(rnd(m.running_var, 0.5, 2.0))
                m.num_batches_tracked.fill_(int(torch.randint(1, 10_000, (1,), generator=g)))
            elif isinstance(m, nn.Conv2d):
                if m.groups == m.in_channels == m.out_channels and m.kernel_size == (3, 3):
                    m.weight.add_(rnd(m.weight, -0.03, 0.03))   # learned upsampling
                if m.bias is not None:
                    m.bias.copy_(rnd(m.bias, -0.05, 0.05))


def _frames(n: int, size: tuple[int, int], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Smooth random scenes: RGB uint8 and depth uint16 mm with ~15% holes (blocks + speckle)."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = size
    out = []
    for _ in range(n):
        low = rng.uniform(0, 255, (h // 16, w // 16, 3)).astype(np.float32)
        rgb = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 12, (h, w, 3))
        rgb = np.clip(rgb, 0, 255).astype(np.uint8)
        dlow = rng.uniform(400, 6000, (h // 32, w // 32)).astype(np.float32)
        depth = cv2.resize(dlow, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.uint16)
        holes = rng.random((h, w)) < 0.12
        for _ in range(8):
            y, x = rng.integers(0, h - 60), rng.integers(0, w - 80)
            holes[y:y + rng.integers(10, 60), x:x + rng.integers(10, 80)] = True
        depth[holes] = 0
        out.append((rgb, depth))
    return out


def run_variant(variant: str, official: str, size: tuple[int, int], frames: int, seed: int, work: Path) -> dict:
    import cv2
    import torch
    import torch.nn.functional as F

    from edgefuse.cli.main import main as cli

    repo, dataset_name, _ = VARIANTS[variant]
    root = _official_root(official, repo)
    torch.manual_seed(seed)
    model, preprocessor, dataset, _args = _official(root, variant, size)
    _perturb(model, seed)
    ckpt = work / f"{variant}.pth"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    torch.save({"epoch": 499, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict()}, ckpt)

    # the frames, as PNG files (the official inference and `edgefuse run` read the same files)
    cam = work / f"{variant}_frames"
    (cam / "rgb").mkdir(parents=True)
    (cam / "depth").mkdir()
    for i, (rgb, depth) in enumerate(_frames(frames, size, seed)):
        cv2.imwrite(str(cam / "rgb" / f"{i:04d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(cam / "depth" / f"{i:04d}.png"), depth)
    # SUN RGB-D's official depth is millimetres << 3 (its PNGs); edgefuse's cameras give mm
    depth_scale = 8.0 if dataset_name == "sunrgbd" else 1.0

    def official_inference(i: int, path: int | None = None):
        """inference_samples.py's steps on frame i (DynMM: its gate, or path `path` forced)."""
        img = cv2.cvtColor(cv2.imread(str(cam / "rgb" / f"{i:04d}.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
        dep = cv2.imread(str(cam / "depth" / f"{i:04d}.png"), cv2.IMREAD_UNCHANGED).astype("float32") * depth_scale
        sample = preprocessor({"image": img, "depth": dep})
        chosen = None
        with torch.no_grad():
            if repo == "dynmm":
                gate = model.gate_layer
                if path is not None:
                    model.gate_layer = _ForcedGate(gate, path)
                try:
                    pred, weight = model(sample["image"][None], sample["depth"][None], True, True)
                finally:
                    model.gate_layer = gate
                chosen = int(weight.argmax(1))
            else:
                pred = model(sample["image"][None], sample["depth"][None])
            pred = F.interpolate(pred, img.shape[:2], mode="bilinear", align_corners=False)
        return pred[0].numpy(), chosen

    official_logits, official_paths = [], []
    for i in range(frames):
        logits, chosen = official_inference(i)
        official_logits.append(logits)
        official_paths.append(chosen)

    # edgefuse: import, PyTorch, export, ONNX Runtime, `edgefuse run`
    imported = work / f"{variant}.safetensors"
    assert cli(["import", repo, str(ckpt), "--out", str(imported), "--dataset", dataset_name,
                "--input-size", f"{size[0]}x{size[1]}"]) == 0
    from edgefuse.checkpoint import load_model

    ours = load_model(str(imported)).model
    def frame(i: int):
        rgb = cv2.cvtColor(cv2.imread(str(cam / "rgb" / f"{i:04d}.png")), cv2.COLOR_BGR2RGB)
        dep = cv2.imread(str(cam / "depth" / f"{i:04d}.png"), cv2.IMREAD_UNCHANGED)
        return torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), torch.from_numpy(dep.astype(np.float32))[None, None]

    torch_logits, torch_paths = [], []
    for i in range(frames):
        with torch.no_grad():
            logits, index = ours.infer(*frame(i))
        torch_logits.append(logits[0].numpy())
        torch_paths.append(int(index[0]))
    # control: the same weights with the other depth convention (every value normalised)
    # on frames with holes - what an import that got the convention wrong would predict
    refined = work / f"{variant}_refined.safetensors"
    assert cli(["import", repo, str(ckpt), "--out", str(refined), "--dataset", dataset_name,
                "--input-size", f"{size[0]}x{size[1]}", "--depth-mode", "refined"]) == 0
    other = load_model(str(refined)).model
    with torch.no_grad():
        control = [other(*frame(i))[0].numpy() for i in range(frames)]

    bundle = work / f"{variant}_bundle"
    assert cli(["export", str(imported), "--out", str(bundle), "--input-size", f"{size[0]}x{size[1]}",
                "--logits", "--verify-frames", "1"]) == 0
    onnx_logits, onnx_paths = _onnx_logits(bundle, cam, frames)
    masks = work / f"{variant}_masks"
    assert cli(["run", "--bundle", str(bundle), "--camera", f"folder:{cam}", "--save-masks", str(masks)]) == 0
    from PIL import Image

    run_masks = [np.asarray(Image.open(masks / f"{i:06d}_labels.png")) for i in range(frames)]

    forced = None
    if repo == "dynmm":   # every path, forced in the official gate and chosen in ours, on frame 0
        forced = {}
        onnx_forced = _onnx_path_logits(bundle, cam, 0, range(5))
        for k in range(5):
            off, _ = official_inference(0, k)
            with torch.no_grad():
                mine = ours.infer(*frame(0), path=k)[0][0].numpy()
            forced[k] = {"pytorch_max_abs_logit_diff": float(np.abs(off - mine).max()),
                         "onnx_max_abs_logit_diff": float(np.abs(off - onnx_forced[k]).max()),
                         "pytorch_argmax": float((off.argmax(0) == mine.argmax(0)).mean()),
                         "onnx_argmax": float((off.argmax(0) == onnx_forced[k].argmax(0)).mean())}

    def compare(ours_logits):
        diffs = [float(np.abs(a - b).max()) for a, b in zip(official_logits, ours_logits)]
        agree = [float((a.argmax(0) == b.argmax(0)).mean()) for a, b in zip(official_logits, ours_logits)]
        return {"max_abs_logit_diff": max(diffs), "argmax_agreement_min": min(agree)}

    scale = max(float(np.abs(x).max()) for x in official_logits)
    mask_agree = [float((m.astype(np.int64) == a.argmax(0) + 1).mean()) for m, a in zip(run_masks, official_logits)]
    return {
        "variant": variant, "repository": REPOSITORIES[repo], "dataset": dataset_name,
        "input_size": list(size), "frames": frames, "seed": seed,
        "official_logit_abs_max": scale,
        "pytorch": compare(torch_logits), "onnx": compare(onnx_logits),
        "run_masks": {"pixels_equal_official_argmax_plus_1_min": min(mask_agree)},
        "paths": {"official": official_paths, "pytorch": torch_paths, "onnx": onnx_paths} if repo == "dynmm" else None,
        "forced_paths": forced,
        "control_refined_depth_argmax_agreement_min": compare(control)["argmax_agreement_min"],
        "depth_hole_share": [float((cv2.imread(str(cam / "depth" / f"{i:04d}.png"), cv2.IMREAD_UNCHANGED) == 0).mean())
                             for i in range(frames)],
    }


class _ForcedGate(torch.nn.Module):
    """The official gate, run as is, its output replaced by the one-hot vector of `path`."""

    def __init__(self, gate, path: int) -> None:
        super().__init__()
        self.gate, self.path = gate, path

    def forward(self, rgb, depth, temp=1.0, hard=False):
        w = self.gate(rgb, depth, temp, hard)
        return torch.nn.functional.one_hot(torch.full((w.shape[0],), self.path), w.shape[1]).to(w.dtype)


def _onnx_path_logits(bundle: Path, cam: Path, i: int, paths) -> dict[int, np.ndarray]:
    """Logits of each path graph of the bundle on frame i (the stem graph's features)."""
    import cv2
    import onnxruntime as ort

    m = json.loads((bundle / "manifest.json").read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    stem = ort.InferenceSession(str(bundle / m["stem_gate"]["file"]), opts, providers=["CPUExecutionProvider"])
    rgb = cv2.cvtColor(cv2.imread(str(cam / "rgb" / f"{i:04d}.png")), cv2.COLOR_BGR2RGB)
    dep = cv2.imread(str(cam / "depth" / f"{i:04d}.png"), cv2.IMREAD_UNCHANGED)
    feats = dict(zip(m["stem_gate"]["outputs"], stem.run(None, {
        "rgb": rgb.transpose(2, 0, 1)[None].astype(np.float32), "depth": dep[None, None].astype(np.float32)})))
    out = {}
    for entry in m["paths"]:
        if entry["index"] in paths:
            sess = ort.InferenceSession(str(bundle / entry["file"]), opts, providers=["CPUExecutionProvider"])
            res = dict(zip(entry["outputs"], sess.run(None, {k: feats[k] for k in entry["inputs"]})))
            out[entry["index"]] = res["logits"][0]
    return out


def _onnx_logits(bundle: Path, cam: Path, frames: int):
    """Logits of the bundle's graphs through ONNX Runtime: stem_gate, the gate's path, path."""
    import cv2
    import onnxruntime as ort

    m = json.loads((bundle / "manifest.json").read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    stem = ort.InferenceSession(str(bundle / m["stem_gate"]["file"]), opts, providers=["CPUExecutionProvider"])
    paths = {p["index"]: p for p in m["paths"]}
    out, chosen = [], []
    for i in range(frames):
        rgb = cv2.cvtColor(cv2.imread(str(cam / "rgb" / f"{i:04d}.png")), cv2.COLOR_BGR2RGB)
        dep = cv2.imread(str(cam / "depth" / f"{i:04d}.png"), cv2.IMREAD_UNCHANGED)
        feeds = {"rgb": rgb.transpose(2, 0, 1)[None].astype(np.float32),
                 "depth": dep[None, None].astype(np.float32)}
        feats = dict(zip(m["stem_gate"]["outputs"], stem.run(None, feeds)))
        choice = int(np.argmax(feats["gate_logits"][0])) if "gate_logits" in feats else 0
        entry = paths[m["gate_to_path"][choice]]
        sess = ort.InferenceSession(str(bundle / entry["file"]), opts, providers=["CPUExecutionProvider"])
        res = dict(zip(entry["outputs"], sess.run(None, {k: feats[k] for k in entry["inputs"]})))
        out.append(res["logits"][0])
        chosen.append(entry["index"])
    return out, chosen


# --- facts for CI -----------------------------------------------------------------------------
def facts_variant(variant: str, official: str, size: tuple[int, int]) -> dict:
    repo = VARIANTS[variant][0]
    model, _, dataset, _ = _official(_official_root(official, repo), variant, size)
    return {"state_dict": [[k, list(v.shape)] for k, v in model.state_dict().items()],
            "palette": np.asarray(dataset.class_colors).tolist()}


def _git_commit(path: str) -> str | None:
    try:
        return subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> None:
    sys.path.insert(0, str(HERE))
    from _harness import harness_parser

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--esanet", help="checkout of github.com/TUI-NICR/ESANet")
    ap.add_argument("--dynmm", help="checkout of github.com/zihuixue/DynMM")
    ap.add_argument("--variants", default="esanet-r34-nbt1d-nyuv2,dynmm-r50-nyuv2")
    ap.add_argument("--input-size", default="480x640")
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write-facts", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--one", help=argparse.SUPPRESS)        # internal: run one variant in this process
    ap.add_argument("--facts", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    h, w = (int(v) for v in args.input_size.lower().split("x"))

    import torch

    torch.set_num_threads(args.threads)
    if args.one:
        official = args.esanet if VARIANTS[args.one][0] == "esanet" else args.dynmm
        if args.facts:
            result = facts_variant(args.one, official, (h, w))
        else:
            result = run_variant(args.one, official, (h, w), args.frames, args.seed, Path(args.work))
        print("RESULT " + json.dumps(result))
        return

    sys.path.insert(0, str(HERE))
    from _harness import machine_info, write_result

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.write_facts:
        variants = list(VARIANTS)
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant {v}; known: {', '.join(VARIANTS)}")
        if not getattr(args, VARIANTS[v][0]):
            raise SystemExit(f"variant {v} needs --{VARIANTS[v][0]} (a checkout of {REPOSITORIES[VARIANTS[v][0]]})")
    commits = {r: _git_commit(getattr(args, r)) for r in REPOSITORIES if getattr(args, r)}
    results = {}
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory() as tmp:
        for v in variants:
            cmd = [sys.executable, __file__, "--one", v, "--input-size", args.input_size, "--frames",
                   str(args.frames), "--seed", str(args.seed), "--threads", str(args.threads), "--work", tmp]
            cmd += [f"--{r}={getattr(args, r)}" for r in REPOSITORIES if getattr(args, r)]
            if args.write_facts:
                cmd.append("--facts")
            print(f"{v} ...", file=sys.stderr, flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if proc.returncode or line is None:
                sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
                raise SystemExit(f"{v} failed")
            results[v] = json.loads(line[len("RESULT "):])
    if args.write_facts:
        layouts = {"note": "state-dict names and shapes of the official models, recorded by "
                           "benchmarks/vs_official_import.py --write-facts from the official code",
                   "commits": commits, "arguments": {v: VARIANTS[v][2] for v in VARIANTS},
                   "variants": {v: r["state_dict"] for v, r in results.items()}}
        LAYOUTS.parent.mkdir(parents=True, exist_ok=True)
        LAYOUTS.write_text(json.dumps(layouts, separators=(",", ":")) + "\n")
        palettes = {"note": "display colours of the official dataset classes (void first), recorded by "
                            "benchmarks/vs_official_import.py --write-facts from TUI-NICR/ESANet",
                    "commit": commits.get("esanet"),
                    "palettes": {"nyuv2": results["esanet-r34-nbt1d-nyuv2"]["palette"],
                                 "sunrgbd": results["esanet-r34-nbt1d-sunrgbd"]["palette"]}}
        PALETTES.write_text(json.dumps(palettes) + "\n")
        print(f"wrote {LAYOUTS} and {PALETTES}")
        return
    data = {"machine": machine_info(), "commits": commits, "results": results}
    lines = ["# edgefuse import vs the official code", "",
             f"Command: `{data['machine']['command']}`  ", f"Date: {data['machine']['date']}; "
             f"{data['machine'].get('cpu_model', '')}, {args.threads} thread(s)  ",
             "Official commits: " + ", ".join(f"{REPOSITORIES[r]} @ {c}" for r, c in commits.items()), "",
             "Random official weights with perturbed BatchNorm statistics; frames with ~15% depth holes "
             "(raw-depth convention). Logit differences are absolute, fp32; agreement = share of pixels "
             "whose argmax (mask value - 1) equals the official argmax.", "",
             "| variant | size | frames | official max abs logit | PyTorch max diff | PyTorch argmax | "
             "ONNX max diff | ONNX argmax | `edgefuse run` masks | paths (official / ours) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for v, r in results.items():
        paths = r["paths"]
        ptxt = f"{paths['official']} / {paths['onnx']}" if paths else "-"
        lines.append(f"| {v} | {h}x{w} | {r['frames']} | {r['official_logit_abs_max']:.2f} | "
                     f"{r['pytorch']['max_abs_logit_diff']:.2e} | {100 * r['pytorch']['argmax_agreement_min']:.4f}% | "
                     f"{r['onnx']['max_abs_logit_diff']:.2e} | {100 * r['onnx']['argmax_agreement_min']:.4f}% | "
                     f"{100 * r['run_masks']['pixels_equal_official_argmax_plus_1_min']:.4f}% | {ptxt} |")
    if "dynmm-r50-nyuv2" in results and "esanet-r50-nyuv2" in results:
        lines += ["", "Both R50 variants are built from the same seed, so where the architectures coincide the "
                      "weights do: DynMM's path 4 (fusion in every stage) is ESANet-R50, and when its gate picks "
                      "path 4 on every frame its row repeats esanet-r50-nyuv2's figures (two official codebases, "
                      "one function)."]
    lines += ["", "Control: the same weights imported with `--depth-mode refined` (zero depth normalised like any "
              "value) agree with the official raw-depth inference on only this share of pixels, on frames with "
              "these shares of depth holes:", ""]
    for v, r in results.items():
        holes = ", ".join(f"{100 * x:.0f}%" for x in r["depth_hole_share"])
        lines.append(f"- {v}: {100 * r['control_refined_depth_argmax_agreement_min']:.1f}% (holes {holes})")
    for v, r in results.items():
        if r.get("forced_paths"):
            lines += ["", f"{v}, every path forced (official gate output replaced by path k's one-hot; ours and "
                          "the bundle's path_k graph), frame 0:", "",
                      "| path | PyTorch max diff | PyTorch argmax | ONNX max diff | ONNX argmax |", "|---|---|---|---|---|"]
            for k, f in r["forced_paths"].items():
                lines.append(f"| {k} | {f['pytorch_max_abs_logit_diff']:.2e} | {100 * f['pytorch_argmax']:.4f}% | "
                             f"{f['onnx_max_abs_logit_diff']:.2e} | {100 * f['onnx_argmax']:.4f}% |")
    write_result(args.out, "vs_official_import", data, "\n".join(lines) + "\n", args)


if __name__ == "__main__":
    main()
