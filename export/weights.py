"""One copy of the weights (issue 10): every graph of a bundle keeps its large initializers
in one shared ONNX external-data file, `weights.bin`, where each distinct tensor is stored
once. A DynMM path graph carries the RGB encoder and decoder like every other path; stored
per graph, a five-path bundle held four static models more than the model it replaces.

    pack_weights({"stem_gate": p0, "path_0": p1, ...}, bundle_dir)   # export: rewrite graphs
    refs = external_refs(onnx.load(p, load_external_data=False))        # runtime: where each lives
    check_external_refs(graph_file, refs, {"weights.bin": size})        # before any runtime reads them

Tensors are matched by content (dtype, shape, bytes), not by name: the TorchScript exporter
names folded constants by trace order (`onnx::Conv_123`), which differs between graphs, while
the bytes of the same folded weight are identical. The file's layout depends only on the
graphs (first use, graph order), so re-exports stay byte-identical.

Security (docs/architecture.md "The bundle": nothing named in a manifest may point outside its bundle): an external
data reference is validated *before* ONNX Runtime or TensorRT opens the graph: its location
must be a weights file the manifest names (and hashes), and its byte range must lie inside
that file and match the tensor's dtype and shape.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefuse.errors import EdgefuseError

WEIGHTS_NAME = "weights.bin"
# Below this, a tensor stays inside its graph (scales, zero points, shape constants): the
# saving is nothing and constant folding / shape inference read them directly.
MIN_EXTERNAL_BYTES = 1024
# Every tensor starts on a 64-byte boundary: numpy views of a mapped file are then aligned
# for any SIMD load (AVX-512 included), with < 64 bytes of padding per tensor.
ALIGN = 64


class ExternalDataError(EdgefuseError):
    """A graph's external-data reference leaves the bundle or does not fit its weights file."""


@dataclass(frozen=True)
class ExternalRef:
    """One tensor of a graph whose bytes live in a weights file."""

    name: str           # initializer name in its graph
    location: str       # file, relative to the graph's folder (the bundle root)
    offset: int
    length: int
    dtype: str          # numpy dtype name
    shape: tuple[int, ...]
    initializer: bool = True   # a top-level initializer (what a runtime can share by name)


@dataclass(frozen=True)
class PackResult:
    file: str               # relative name in the bundle
    size_bytes: int         # of the weights file
    tensors: int            # distinct tensors stored
    references: int         # initializers (over all graphs) that point into it
    referenced_bytes: int   # what per-graph copies would have stored

    @property
    def saved_bytes(self) -> int:
        return self.referenced_bytes - self.size_bytes


def _np_dtype(elem_type: int) -> np.dtype:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def _clear_data(tensor) -> None:
    for field in ("raw_data", "float_data", "int32_data", "string_data", "int64_data", "double_data",
                  "uint64_data"):
        tensor.ClearField(field)


def pack_weights(graph_files: dict[str, Path], out_dir: Path, name: str = WEIGHTS_NAME) -> PackResult:
    """Move every initializer of at least MIN_EXTERNAL_BYTES of the graphs (in the order
    given) into `out_dir/name`, each distinct tensor once, and rewrite each graph file in
    place to reference it. The graph files must be in `out_dir` (locations are relative)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    stored: dict[bytes, tuple[int, int]] = {}       # content key -> (offset, length)
    size = references = referenced = 0
    with open(out_dir / name, "wb") as blob:
        for graph, path in graph_files.items():
            if path.parent.resolve() != out_dir.resolve():
                raise EdgefuseError(f"{graph}: {path} is not in {out_dir}; weights are referenced relatively")
            model = onnx.load(str(path), load_external_data=True)
            for tensor in model.graph.initializer:
                array = numpy_helper.to_array(tensor)
                if array.nbytes < MIN_EXTERNAL_BYTES or array.dtype == object:
                    continue
                data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
                key = hashlib.sha256(f"{array.dtype.str}|{array.shape}|".encode() + data).digest()
                if key not in stored:
                    pad = -size % ALIGN
                    blob.write(b"\0" * pad)
                    stored[key] = (size + pad, len(data))
                    blob.write(data)
                    size += pad + len(data)
                offset, length = stored[key]
                _clear_data(tensor)
                del tensor.external_data[:]
                for k, v in (("location", name), ("offset", str(offset)), ("length", str(length))):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = k, v
                tensor.data_location = TensorProto.EXTERNAL
                references += 1
                referenced += length
            path.write_bytes(model.SerializeToString())
    return PackResult(name, size, len(stored), references, referenced)


def _all_tensors(graph, top: bool = True):
    """(tensor, is a top-level initializer) for every TensorProto a graph holds: initializers,
    sparse initializers, and node attributes (Constant values, subgraphs of If / Loop / Scan).
    Any of them may name external data, so all of them are checked."""
    for t in graph.initializer:
        yield t, top
    for sparse in graph.sparse_initializer:
        yield sparse.values, False
        yield sparse.indices, False
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t, False
            yield from ((t, False) for t in attr.tensors)
            if attr.HasField("g"):
                yield from _all_tensors(attr.g, False)
            for g in attr.graphs:
                yield from _all_tensors(g, False)


def external_refs(model) -> list[ExternalRef]:
    """The external-data tensors of a ModelProto loaded *without* its external data
    (anywhere in the graph: see _all_tensors). Raises ExternalDataError for a reference
    that is malformed (ONNX stores its fields as strings)."""
    from onnx import TensorProto

    refs = []
    for tensor, initializer in _all_tensors(model.graph):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        try:
            offset, length = int(info.get("offset", 0)), int(info["length"])
            dtype = _np_dtype(tensor.data_type)
        except (KeyError, ValueError, TypeError) as exc:
            raise ExternalDataError(f"tensor {tensor.name!r} has a malformed external-data "
                                    f"reference {info} ({exc})") from None
        refs.append(ExternalRef(tensor.name, info.get("location", ""), offset, length, dtype.name,
                                tuple(int(d) for d in tensor.dims), initializer))
    return refs


def check_external_refs(graph: str, graph_dir: Path, refs: list[ExternalRef], allowed: dict[Path, int]) -> None:
    """Raise ExternalDataError unless every reference, resolved against the graph's folder
    the way ONNX Runtime and TensorRT resolve it, is one of the `allowed` files (absolute
    resolved path -> size in bytes: the weights files the manifest names and hashes) and
    names a byte range inside it that holds exactly the tensor's dtype x shape."""
    for r in refs:
        target = None
        if r.location and not Path(r.location).is_absolute() and ".." not in Path(r.location).parts:
            target = (graph_dir / r.location).resolve()
        if target not in allowed:
            raise ExternalDataError(
                f"{graph}: initializer {r.name!r} reads its data from {r.location!r}, which is not the "
                "bundle's weights file; graphs may only reference the file the manifest names. "
                "Re-export the bundle")
        want = int(np.prod(r.shape, dtype=np.int64)) * np.dtype(r.dtype).itemsize
        if r.offset < 0 or r.length != want or r.offset + r.length > allowed[target]:
            raise ExternalDataError(
                f"{graph}: initializer {r.name!r} ({r.dtype} {list(r.shape)}, {want} bytes) points at bytes "
                f"{r.offset}..{r.offset + r.length} of {r.location} ({allowed[target]} bytes); the "
                "reference does not fit the file. Re-export the bundle")


def read_graph_refs(path: Path) -> list[ExternalRef]:
    """external_refs of the graph file at `path` (its external data is not read)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own types; name the file
        raise ExternalDataError(f"{path.name} is not a readable ONNX graph: {exc}") from exc
    return external_refs(model)


def load_arrays(weights_file: Path, refs: list[ExternalRef]) -> dict[tuple[int, int], np.ndarray]:
    """Read-only numpy views of the distinct tensors `refs` point at, keyed by (offset,
    length), all backed by one memory map of `weights_file`: every session that is handed
    these arrays reads the same pages (one copy in memory, shared with the page cache)."""
    mapped = np.memmap(weights_file, dtype=np.uint8, mode="r")
    out: dict[tuple[int, int], np.ndarray] = {}
    for r in refs:
        key = (r.offset, r.length)
        if key not in out:
            out[key] = mapped[r.offset:r.offset + r.length].view(r.dtype).reshape(r.shape)
    return out
