"""This CPU's arithmetic peak, read from the machine, so a benchmark can say how far a graph
runs from the limit (issue 19, "the distance to the silicon").

    peak MAC/s = cores used x clock x vector units x MACs per instruction

Read from the machine (/proc/cpuinfo, sysfs): the model, the clock, the instruction-set flags
(AVX-512, AVX2 + FMA, VNNI). Not readable anywhere: how many vector multiply units a core
has. `units` defaults to 2 - every x86 core with AVX2 since Haswell / Zen 2 issues two 256-bit
FMAs per cycle; AMD Zen 4 executes AVX-512 as two 256-bit halves, so it counts as 256-bit
there; `--vector-units` overrides it for a core with one (some Xeon Silver / Bronze AVX-512).

MACs per instruction (per unit, per cycle):
  - fp32: one FMA per 32-bit lane: width / 32 (8 for a 256-bit FMA);
  - int8 with VNNI (vpdpbusd, what ONNX Runtime's U8S8 kernels use when present): four u8 x s8
    products per 32-bit lane: width / 8 (32 per 256-bit instruction);
  - int8 without VNNI (AVX2): vpmaddubsw forms the 16-bit pair sums and vpmaddwd widens them,
    two instructions on the same multiply units for width / 8 products: width / 16 per
    instruction slot - twice fp32's peak, not four times. That factor, not the graph, bounds
    an int8 speed-up on such a CPU.

The clock is the highest the machine states (cpufreq's max, else /proc/cpuinfo's "cpu MHz",
which a virtual machine reports as its nominal clock): boost clocks above it make the real
peak higher, so a fraction of this peak is an upper bound of the true fraction.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuPeak:
    model: str
    ghz: float
    ghz_source: str
    cores: int                 # cores the measurement used (threads, one per core)
    vector_bits: int           # widest vector the multiply units take
    units: int                 # vector multiply units per core (assumed, see module doc)
    vnni: bool
    fp32_mac_per_cycle: int    # per core
    int8_mac_per_cycle: int    # per core

    def gmacs(self, precision: str) -> float:
        """Peak GMAC/s over `cores` for 'fp32' or 'int8'."""
        per = self.fp32_mac_per_cycle if precision == "fp32" else self.int8_mac_per_cycle
        return self.cores * self.ghz * per

    def describe(self) -> str:
        return (f"{self.model}: {self.cores} core(s) x {self.ghz:.2f} GHz ({self.ghz_source}) x {self.units} "
                f"x {self.vector_bits}-bit units{' + VNNI' if self.vnni else ' (no VNNI)'}: fp32 "
                f"{self.fp32_mac_per_cycle} MAC/cycle/core = {self.gmacs('fp32'):.1f} GMAC/s, int8 "
                f"{self.int8_mac_per_cycle} MAC/cycle/core = {self.gmacs('int8'):.1f} GMAC/s")

    def record(self) -> dict:
        return {**asdict(self), "fp32_gmacs": self.gmacs("fp32"), "int8_gmacs": self.gmacs("int8")}


def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                key, value = (s.strip() for s in line.split(":", 1))
                fields.setdefault(key, value)   # the first processor's
    except OSError:
        pass
    return fields


def _clock(info: dict[str, str]) -> tuple[float, str]:
    try:
        khz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text())
        return khz / 1e6, "cpufreq max"
    except (OSError, ValueError):
        pass
    try:
        return float(info["cpu MHz"]) / 1e3, "/proc/cpuinfo cpu MHz (nominal; boost not visible)"
    except (KeyError, ValueError):
        return float("nan"), "unknown"


def read_peak(cores: int = 1, units: int | None = None) -> CpuPeak:
    """The peak of `cores` cores of this machine (see the module doc for what is assumed)."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    family = info.get("cpu family", "")
    vendor = info.get("vendor_id", "")
    zen4_split = vendor == "AuthenticAMD" and family == "25" and "avx512f" in flags
    if "avx512f" in flags and not zen4_split:
        bits = 512
    elif "avx2" in flags or "avx512f" in flags:
        bits = 256
    else:
        bits = 128
    vnni = bool({"avx512_vnni", "avx_vnni"} & flags)
    units = 2 if units is None else units
    ghz, source = _clock(info)
    fp32 = units * bits // 32
    int8 = units * bits // 8 if vnni else units * bits // 16
    return CpuPeak(model=info.get("model name", os.uname().machine), ghz=ghz, ghz_source=source, cores=cores,
                   vector_bits=bits, units=units, vnni=vnni, fp32_mac_per_cycle=fp32, int8_mac_per_cycle=int8)


def gemm_ceiling(precision: str, threads: int = 1, n: int = 1024, runs: int = 30) -> float:
    """GMAC/s ONNX Runtime's own GEMM reaches on this machine: an n x n x n MatMul (fp32) or
    MatMulInteger (uint8 x int8, the U8S8 kernel the cpu int8 scheme's convolutions use),
    best of `runs` (CPU time with one thread; the best, because a virtual machine's CPU time
    also counts time its host took away). What a convolution could reach in practice, beside
    the paper peak; above the paper peak when the core runs faster than the clock it states."""
    import time

    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    if precision == "fp32":
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = helper.make_tensor("b", TensorProto.FLOAT, (n, n), rng.standard_normal(n * n).astype(np.float32))
        node = helper.make_node("MatMul", ["a", "b"], ["y"])
        inp = helper.make_tensor_value_info("a", TensorProto.FLOAT, (n, n))
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, (n, n))
    else:
        a = rng.integers(0, 255, (n, n), dtype=np.uint8)
        b = helper.make_tensor("b", TensorProto.INT8, (n, n), rng.integers(-63, 63, n * n).astype(np.int8))
        node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
        inp = helper.make_tensor_value_info("a", TensorProto.UINT8, (n, n))
        out = helper.make_tensor_value_info("y", TensorProto.INT32, (n, n))
    graph = helper.make_graph([node], "gemm", [inp], [out], initializer=[b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    sess.run(None, {"a": a})
    # One thread runs on the calling thread: its CPU time is robust to other jobs on the machine.
    clock = time.thread_time if threads == 1 else time.perf_counter
    best = float("inf")
    for _ in range(runs):
        t0 = clock()
        sess.run(None, {"a": a})
        best = min(best, clock() - t0)
    return n ** 3 / best / 1e9


if __name__ == "__main__":
    print(read_peak().describe())
    for p in ("fp32", "int8"):
        print(f"ONNX Runtime {p} GEMM, 1 thread: {gemm_ceiling(p):.1f} GMAC/s")
