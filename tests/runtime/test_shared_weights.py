"""The ORT runner's sessions share one copy of the weights (issue 10), observed in memory:
the same bundle is activated in two fresh processes, with and without sharing, and the
kernel's own accounting of the process (/proc/self/status: anonymous vs file-backed resident
memory) shows where the weights went. No timing."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgefuse.export.bundle import load_bundle
from edgefuse.runtime.runners import make_runner

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")

PROBE = """
import json, sys
from edgefuse.export.bundle import load_bundle
from edgefuse.runtime.runners import make_runner

def status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) * 1024
    return out

runner = make_runner("ort", load_bundle(sys.argv[1]), threads=1, share_weights=sys.argv[2] == "1")
import onnxruntime  # noqa: F401 - loaded before the first reading, so only the sessions count
before = status()
runner.activate()
after = status()
print(json.dumps({"anon": after["RssAnon"] - before["RssAnon"], "file": after["RssFile"] - before["RssFile"],
                  "memory": runner.memory_bytes()}))
"""


def _activate_in_child(bundle_dir, share: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(bundle_dir), "1" if share else "0"],
                         capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_sessions_share_one_copy_of_the_weights(bundle_dir):
    w = load_bundle(bundle_dir).manifest.weights
    shared = _activate_in_child(bundle_dir, True)
    private = _activate_in_child(bundle_dir, False)
    # Sharing: the weights are the mapped file's pages (the bundle's, or their layout-optimised
    # copy in this machine's cache: the same tensors, reordered), counted once...
    assert shared["memory"]["shared_weights_bytes"] <= 1.25 * w.size_bytes
    assert shared["memory"]["shared_weights_resident_bytes"] >= 0.9 * shared["memory"]["shared_weights_bytes"]
    assert shared["file"] >= 0.9 * shared["memory"]["shared_weights_bytes"]
    # ... while private sessions each copy their graph's weights into their own memory: the
    # anonymous memory they take beyond the sharing run is about every graph's copy.
    assert private["memory"] == {}
    assert private["anon"] - shared["anon"] >= 0.7 * w.referenced_bytes, (shared, private, w)


def test_shared_and_private_sessions_compute_the_same_labels(bundle_dir):
    b = load_bundle(bundle_dir)
    h, w = b.manifest.input_size
    rng = np.random.default_rng(3)
    rgb = (rng.random((1, 3, h, w)) * 255).astype(np.float32)
    depth = (rng.random((1, 1, h, w)) * 4000).astype(np.float32)
    with make_runner("ort", b, threads=1) as shared, make_runner("ort", b, threads=1, share_weights=False) as own:
        assert shared.shared is not None and own.shared is None
        a, c = shared.stem_gate(rgb, depth), own.stem_gate(rgb, depth)
        np.testing.assert_allclose(a.gate_logits, c.gate_logits, rtol=1e-4, atol=1e-4)
        for k in b.paths:
            assert (shared.run_path(k, a.features) == own.run_path(k, c.features)).mean() > 0.999
