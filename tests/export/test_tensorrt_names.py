"""Static check of the TensorRT adapter (it cannot run here): every attribute it uses on a
TensorRT object exists in the Python bindings of both TensorRT 10.3 (JetPack 6) and 11.4,
or sits under a TensorRT version check (tests/export/data/tensorrt-api)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "export" / "tensorrt_build.py"
# Identifier tokens of the two versions' bindings).
VOCAB = Path(__file__).parent / "data" / "tensorrt-api"
# Module dunders are Python's, not the bindings' (the vocabularies list binding names).
PYTHON_DUNDERS = {"__version__"}
# Removed in TensorRT 11 (NVIDIA's 10.x -> 11.x Python migration guide): allowed only
# under a version check. The token lists cannot show this - "FP16" survives as a word.
REMOVED_IN_11 = {"FP16", "INT8", "BF16", "FP8", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS",
                 "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO", "int8_calibrator", "set_calibration_profile",
                 "get_calibration_profile", "set_quantization_flag", "platform_has_fast_fp16",
                 "platform_has_fast_int8", "EXPLICIT_BATCH"}


def _root(node):
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node


def _is_version_guard(test) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "trt_major" for n in ast.walk(test))


def trt_attributes(source: str) -> list[tuple[str, int, bool]]:
    """(attribute, line, under a version check) for every attribute used on a TensorRT
    object: `trt` itself and every variable assigned from an expression that uses one."""
    tree = ast.parse(source)
    found = []
    for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        tainted = {"trt"}
        changed = True
        while changed:   # fixpoint: builder = trt.Builder(...); config = builder.create_builder_config()
            changed = False
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and any(
                        isinstance(n, ast.Name) and n.id in tainted for n in ast.walk(node.value)):
                    for target in node.targets:
                        for name in ast.walk(target):
                            if isinstance(name, ast.Name) and name.id not in tainted:
                                tainted.add(name.id)
                                changed = True
        guarded = set()
        for node in ast.walk(fn):
            if isinstance(node, ast.If) and _is_version_guard(node.test):
                for child in node.body + node.orelse:
                    guarded.update(id(n) for n in ast.walk(child))
            if isinstance(node, ast.IfExp) and _is_version_guard(node.test):
                guarded.update(id(n) for n in ast.walk(node.body))
                guarded.update(id(n) for n in ast.walk(node.orelse))
        for node in ast.walk(fn):
            if isinstance(node, ast.Attribute):
                root = _root(node)
                if isinstance(root, ast.Name) and root.id in tainted:
                    found.append((node.attr, node.lineno, id(node) in guarded))
    return found


def problems(source: str, v10: set[str], v11: set[str]) -> list[str]:
    out = []
    for attr, line, guarded in trt_attributes(source):
        if attr in PYTHON_DUNDERS:
            continue
        if guarded:
            if attr not in v10 | v11:
                out.append(f"line {line}: {attr} is in neither TensorRT vocabulary")
        else:
            missing = [v for v, names in (("10.3", v10), ("11.4", v11)) if attr not in names]
            if missing:
                out.append(f"line {line}: {attr} missing from TensorRT {', '.join(missing)} and not version-guarded")
            if attr in REMOVED_IN_11:
                out.append(f"line {line}: {attr} was removed in TensorRT 11; guard it with a version check")
    return out


@pytest.fixture(scope="module")
def vocab():
    read = lambda name: set((VOCAB / name).read_text().split())  # noqa: E731
    return read("tensorrt-10.3-python-names.txt"), read("tensorrt-11.4-python-names.txt")


def test_adapter_uses_only_shared_names(vocab):
    source = ADAPTER.read_text()
    assert problems(source, *vocab) == []
    used = {a for a, _, _ in trt_attributes(source)}
    # the analysis must actually see the adapter's calls (no vacuous pass)
    assert {"Builder", "OnnxParser", "Logger", "create_network", "create_builder_config", "parse_from_file",
            "num_errors", "get_error", "set_memory_pool_limit", "WORKSPACE", "create_timing_cache",
            "set_timing_cache", "get_timing_cache", "serialize", "build_serialized_network",
            "STRONGLY_TYPED", "FP16", "STRIP_PLAN", "REFIT_IDENTICAL", "Runtime", "deserialize_cuda_engine",
            "device_memory_size_v2"} <= used


def test_the_check_catches_bad_names(vocab):
    bad = """
def build(trt):
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    config = builder.create_builder_config()
    config.int8_calibrator = trt.IInt8EntropyCalibrator2()
    config.set_flag(trt.BuilderFlag.FP16)
    if builder.platform_has_fast_fp16:
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
"""
    found = "\n".join(problems(bad, *vocab))
    assert "IInt8EntropyCalibrator2 missing from TensorRT 11.4" in found
    assert "int8_calibrator missing from TensorRT 11.4" in found
    assert "FP16 was removed in TensorRT 11" in found
    assert "platform_has_fast_fp16 missing from TensorRT 11.4" in found
    assert "EXPLICIT_BATCH missing from TensorRT 11.4" in found
    guarded = """
def build(trt):
    config = trt.Builder(None).create_builder_config()
    if trt_major(trt) < 11:
        config.set_flag(trt.BuilderFlag.FP16)
"""
    assert problems(guarded, *vocab) == []
