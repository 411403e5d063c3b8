"""One copy of the weights, and one activation arena, for every ONNX Runtime session of a
bundle (issue 10): the engine set costs about one model plus what the depth stages add.

Weights.
A format-2 bundle stores each distinct tensor once in `weights.bin` (edgefuse.export.weights).
Left to itself, ONNX Runtime would still read that file into every session: a five-path DynMM
would hold the RGB encoder and decoder six times. Instead the file is memory-mapped once, each
distinct tensor becomes one OrtValue over the mapped pages, and every session is handed those
OrtValues by name (`SessionOptions.add_initializer`, ORT's shared-initializer API), so all
sessions read the same memory, which is also the page cache's (a second process running the
same bundle shares it too).

What ORT would otherwise copy per session (measured with ORT 1.32 on the CPU; numbers in
docs/export.md "Findings"):
  - the NCHWc layout transformer reorders every Conv weight into a new, session-owned
    initializer; with it on, sharing saves almost nothing. So the layout optimisation runs
    once per machine and its graphs are cached with their reordered weights stored once
    (ort_cache.py); where no cache can be written, the sessions share the bundle's weights
    with the transformer off (slower fp32 convolutions);
  - kernels that pre-pack their weights (int8 QLinearConv, MatMul) pack a private copy per
    session; ORT's PrepackedWeightsContainer, which would share those, is not exposed to
    Python. Int8 weights are a quarter of fp32 ones, so an int8 bundle's copies stay small.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_arena_registered = False


def shared_cpu_arena(options: Any) -> None:
    """Make the session created with `options` allocate from the one CPU arena in ONNX
    Runtime's environment (registered on first use, shared by every such session of the
    process)."""
    global _arena_registered
    import onnxruntime as ort

    if not _arena_registered:
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        try:
            ort.create_and_register_allocator(info, None)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own types
            if "already" not in str(exc).lower():   # registered by someone else: use that one
                raise
        _arena_registered = True
    options.add_session_config_entry("session.use_env_allocators", "1")


# Graph transformers that turn a shared initializer into a private per-session copy.
COPYING_OPTIMIZERS = ("NchwcTransformer",)
_MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")   # a mapping's header line in /proc/<pid>/smaps


class SharedWeights:
    """The bundle's weights file, mapped once, as OrtValues handed to each session by name."""

    def __init__(self, weights_file: Path, external: dict[str, tuple[Any, ...]]) -> None:
        import onnxruntime as ort

        from edgefuse.export.weights import load_arrays

        self.file = weights_file
        refs = [r for refs in external.values() for r in refs if r.initializer]
        self.arrays = load_arrays(weights_file, refs)
        # OrtValues must outlive every session given them (ORT does not own their memory).
        self.values = {key: ort.OrtValue.ortvalue_from_numpy(a) for key, a in self.arrays.items()}
        self.external = external

    @property
    def nbytes(self) -> int:
        """Bytes of the distinct tensors all sessions share."""
        return int(sum(a.nbytes for a in self.arrays.values()))

    def add_to(self, options: Any, graph: str) -> int:
        """Hand `graph`'s external initializers to its SessionOptions; returns their bytes."""
        total = 0
        for r in self.external.get(graph, ()):
            if r.initializer:
                options.add_initializer(r.name, self.values[(r.offset, r.length)])
                total += r.length
        return total

    def resident_bytes(self) -> int | None:
        """Bytes of the mapped weights file resident in this process (Linux smaps; None
        elsewhere): what the sessions' weights cost in memory, counted once."""
        target = str(self.file.resolve())
        try:
            with open("/proc/self/smaps") as f:
                text = f.read()
        except OSError:
            return None
        total, inside = 0, False
        for line in text.splitlines():
            if _MAPPING.match(line):
                inside = line.rstrip().endswith(" " + target)
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1]) * 1024
        return total
