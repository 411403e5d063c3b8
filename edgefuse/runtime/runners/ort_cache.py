"""Layout-optimised graphs, built once per machine and shared like the bundle's weights
(issue 10).

ONNX Runtime's fastest CPU convolutions use its NCHWc layout: at session creation the
NchwcTransformer reorders every Conv weight into a new, session-owned initializer. With
shared weights that is a private copy per session again, and without it fp32 convolutions
run markedly slower (docs/export.md "Findings"). So the
runner does the layout optimisation once per machine instead of once per session: every
graph is optimised (ORT_ENABLE_ALL) and saved with `SessionOptions.optimized_model_filepath`,
the reordered weights of all graphs go through the same packing as the bundle's
(`edgefuse.export.weights.pack_weights`: each distinct tensor stored once), and later starts
load these graphs with optimisations off and their weights shared by name. Start-up also
gets shorter: nothing is optimised at load.

ORT's layout optimisations are specific to the CPU and the ORT release, so the cache key is
the bundle's manifest (which hashes every graph and the weights), the ORT version, the
machine type and the CPU's vector extensions. The cache lives in `$EDGEFUSE_CACHE_DIR`, else
`$XDG_CACHE_HOME/edgefuse`, else `~/.cache/edgefuse`; it is built in a child process (its
peak memory is not the runner's) into a temporary folder renamed into place when complete.
Where it cannot be written or read, the runner shares the bundle's own weights without the
NCHWc layout and says so. Its graphs' external-data references are validated like a
bundle's: only the cache's own weights file, within its size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefuse.errors import EdgefuseError

log = logging.getLogger(__name__)

CACHE_ENV = "EDGEFUSE_CACHE_DIR"
INDEX = "cache.json"
CACHE_FORMAT = 1
# CPU features that change which kernels / layouts ORT's optimiser picks (NCHWc block size
# is 16 floats with AVX-512, 8 with AVX2; int8 kernels differ with VNNI).
_ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "asimd",
              "asimddp", "sve")


@dataclass(frozen=True)
class OptimizedGraphs:
    folder: Path
    files: dict[str, Path]         # graph name -> optimised graph
    weights_file: Path
    external: dict[str, tuple[Any, ...]]   # graph name -> validated ExternalRefs


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "edgefuse"


def _isa() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in _ISA_FLAGS if flag in have]
    except OSError:
        pass
    return []


def cache_key(bundle: Any) -> str:
    """What the optimised graphs depend on: the bundle (its manifest hashes every graph and
    the weights), ONNX Runtime's release, and this CPU."""
    import onnxruntime as ort

    h = hashlib.sha256()
    h.update((Path(bundle.root) / "manifest.json").read_bytes())
    h.update(json.dumps([CACHE_FORMAT, ort.__version__, platform.machine(), _isa()]).encode())
    return h.hexdigest()[:32]


def bundle_graphs(bundle: Any) -> dict[str, Path]:
    files = {"stem_gate": Path(bundle.stem_gate)}
    files.update({f"path_{k}": Path(f) for k, f in sorted(bundle.paths.items())})
    return files


def optimized_graphs(bundle: Any, root: Path | None = None) -> OptimizedGraphs | None:
    """This machine's optimised graphs of `bundle`, built on first use; None (with a warning)
    where the cache cannot be built or read - the caller then runs the bundle's graphs."""
    root = Path(root) if root is not None else cache_root()
    folder = root / "ort" / cache_key(bundle)
    try:
        if not (folder / INDEX).is_file():
            _build_in_child(bundle, folder)
        return _open(folder, list(bundle_graphs(bundle)))
    except (OSError, EdgefuseError, subprocess.SubprocessError) as exc:
        log.warning("no optimised-graph cache (%s); running the bundle's graphs with shared weights and "
                    "without ONNX Runtime's NCHWc layout (slower fp32 convolutions). Set %s to a writable "
                    "folder to use one", exc, CACHE_ENV)
        return None


def _build_in_child(bundle: Any, folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("optimising %s for this CPU once (cache %s)", bundle.root, folder)
    proc = subprocess.run([sys.executable, "-m", __name__, str(bundle.root), str(tmp)],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EdgefuseError(f"building the optimised graphs failed: {tail[0]}")
    try:
        tmp.rename(folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)   # another process finished first: use its cache
        if not (folder / INDEX).is_file():
            raise


def _open(folder: Path, graphs: list[str]) -> OptimizedGraphs:
    from edgefuse.export.weights import WEIGHTS_NAME, check_external_refs, read_graph_refs

    index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    if index.get("format") != CACHE_FORMAT or sorted(index.get("graphs", [])) != sorted(graphs):
        raise EdgefuseError(f"{folder} is not a cache of this bundle's graphs")
    weights = (folder / WEIGHTS_NAME).resolve()
    allowed = {weights: weights.stat().st_size}
    files, external = {}, {}
    for g in graphs:
        files[g] = folder / f"{g}.onnx"
        refs = read_graph_refs(files[g])
        check_external_refs(f"cached {g}", folder, refs, allowed)
        external[g] = tuple(refs)
    return OptimizedGraphs(folder, files, weights, external)


def build(bundle_dir: Path, out: Path) -> None:
    """Optimise every graph of the bundle for this CPU into `out` (run in a child process)."""
    import onnxruntime as ort

    from edgefuse.export.bundle import load_bundle
    from edgefuse.export.weights import pack_weights

    bundle = load_bundle(bundle_dir, check_hashes=False)   # the parent checked them
    out.mkdir(parents=True)
    graphs = bundle_graphs(bundle)
    for g, src in graphs.items():
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.optimized_model_filepath = str(out / f"{g}.onnx")
        opts.log_severity_level = 3   # the "hardware specific" notice is the point here
        opts.add_session_config_entry("session.optimized_model_external_initializers_file_name", f"{g}.bin")
        opts.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
    pack_weights({g: out / f"{g}.onnx" for g in graphs}, out)
    for g in graphs:
        (out / f"{g}.bin").unlink(missing_ok=True)
    (out / INDEX).write_text(json.dumps({"format": CACHE_FORMAT, "bundle": str(bundle.root),
                                         "onnxruntime": ort.__version__, "graphs": list(graphs)}, indent=2))


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]))
