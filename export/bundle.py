"""Open a bundle folder: read and validate its manifest, resolve its files inside the folder,
and check every file's sha256 against the manifest (a flipped byte is an error, not a
silently wrong robot).

    from edgefuse.export.bundle import load_bundle
    b = load_bundle("bundles/dynmm-tiny")        # raises EdgefuseError on tampering
    b.manifest.input_size, b.stem_gate, b.path_file(b.manifest.gate_to_path[choice])
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefuse.errors import EdgefuseError
from edgefuse.export.manifest import Manifest, ManifestError, check_relative_file, read_manifest
from edgefuse.export.weights import ExternalRef, check_external_refs, read_graph_refs

log = logging.getLogger(__name__)


class BundleIntegrityError(EdgefuseError):
    """A file of the bundle is missing, outside the bundle, or differs from its manifest hash."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_in_bundle(root: Path, name: str, where: str = "manifest") -> Path:
    """The absolute path of bundle file `name`; refuses names (or symlinks) leading outside."""
    check_relative_file(name, where)
    root = root.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise ManifestError(f"{where}: file {name!r} resolves to {path}, outside the bundle {root}")
    return path


@dataclass(frozen=True)
class FileCheck:
    role: str        # stem_gate, path_3, engine path_3, verify
    file: str
    ok: bool
    problem: str = ""


def check_files(root: str | Path, manifest: Manifest, check_hashes: bool = True) -> list[FileCheck]:
    """Check every file the manifest names: inside the bundle, present, and (optionally) with
    the recorded sha256. Returns one FileCheck per file (`edgefuse inspect` shows them all)."""
    root = Path(root)
    results = []
    for role, name, expected in manifest.files():
        try:
            path = resolve_in_bundle(root, name, role)
        except ManifestError as exc:
            results.append(FileCheck(role, name, False, str(exc)))
            continue
        if not path.is_file():
            results.append(FileCheck(role, name, False, "missing"))
        elif check_hashes and (actual := sha256_file(path)) != expected:
            results.append(FileCheck(role, name, False,
                                     f"sha256 {actual[:12]}... differs from the manifest's {expected[:12]}..."))
        else:
            results.append(FileCheck(role, name, True))
    return results


@dataclass(frozen=True)
class Bundle:
    """A validated bundle: the manifest and absolute paths of its files."""

    root: Path
    manifest: Manifest
    stem_gate: Path                 # stem_gate.onnx
    paths: dict[int, Path]          # path index -> path_<k>.onnx
    engines: dict[str, Path]        # graph name ("stem_gate", "path_<k>") -> engine file
    verify_file: Path | None
    weights_file: Path | None = None    # the shared external-data file (format 2)
    # graph name -> its initializers stored in `weights_file` (validated by load_bundle)
    external: dict[str, tuple[ExternalRef, ...]] = field(default_factory=dict)

    def path_file(self, index: int) -> Path:
        if index not in self.paths:
            raise KeyError(f"path {index} is not in this bundle (exported: {sorted(self.paths)})")
        return self.paths[index]

    def file_for_choice(self, choice: int) -> Path:
        """The graph that runs when the gate chooses `choice` (see manifest.gate_to_path)."""
        return self.path_file(self.manifest.gate_to_path[choice])

    def verify_report(self) -> dict[str, Any]:
        if self.verify_file is None:
            return {}
        return json.loads(self.verify_file.read_text(encoding="utf-8"))


def load_bundle(path: str | Path, check_hashes: bool = True, *, allow_unverified: bool = False) -> Bundle:
    """Open the bundle folder `path`. Raises EdgefuseError (ManifestError /
    BundleIntegrityError) when the manifest is invalid, a file is missing, a name escapes the
    folder, a hash differs, or the bundle failed its verification (unless allow_unverified)."""
    root = Path(path)
    if not root.is_dir():
        raise EdgefuseError(f"bundle folder {root} not found (create one with `edgefuse export MODEL --out {root}`)")
    manifest = read_manifest(root)
    bad = [c for c in check_files(root, manifest, check_hashes) if not c.ok]
    if bad:
        lines = "; ".join(f"{c.file} ({c.role}): {c.problem}" for c in bad)
        raise BundleIntegrityError(
            f"bundle {root} failed its integrity check: {lines}. The files were changed after "
            "export; re-export the bundle (`edgefuse export ... --force`)")
    if manifest.verify is not None and not manifest.verify.passed and not allow_unverified:
        raise BundleIntegrityError(f"bundle {root} failed verification at export time "
                                   f"(see {manifest.verify.file}); re-export it")
    root = root.resolve()
    stem_gate = resolve_in_bundle(root, manifest.stem_gate.file)
    paths = {p.index: resolve_in_bundle(root, p.file) for p in manifest.paths}
    weights_file = resolve_in_bundle(root, manifest.weights.file) if manifest.weights else None
    external = graph_external_refs(root, manifest, {"stem_gate": stem_gate,
                                                     **{f"path_{k}": f for k, f in paths.items()}})
    if manifest.format_version < 2:
        log.warning("bundle %s is format %d: every graph holds its own copy of the weights (%d graphs, "
                    "several times the memory); re-export it with this edgefuse to store them once "
                    "(`edgefuse export ... --force`)", root, manifest.format_version, 1 + len(paths))
    return Bundle(
        root=root,
        manifest=manifest,
        stem_gate=stem_gate,
        paths=paths,
        engines={e.graph: resolve_in_bundle(root, e.file) for e in manifest.engines},
        verify_file=resolve_in_bundle(root, manifest.verify.file) if manifest.verify else None,
        weights_file=weights_file,
        external=external,
    )


def graph_external_refs(root: Path, manifest: Manifest, graphs: dict[str, Path]) -> dict[str, tuple[ExternalRef, ...]]:
    """Every graph's external-data references, validated before any runtime opens a graph:
    each must point into the manifest's weights file (which the integrity check hashed),
    within its size. A graph that references anything else is refused (security: ONNX
    external data is a file path inside the graph, outside the manifest's view)."""
    allowed: dict[Path, int] = {}
    if manifest.weights is not None:
        path = resolve_in_bundle(root, manifest.weights.file, "manifest.weights")
        allowed[path] = path.stat().st_size if path.is_file() else 0
    out = {}
    for graph, file in graphs.items():
        refs = read_graph_refs(file)
        check_external_refs(f"{file.name} ({graph})", file.parent, refs, allowed)
        out[graph] = tuple(refs)
    return out
