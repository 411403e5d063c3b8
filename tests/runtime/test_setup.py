"""One runtime set-up (edgefuse.runtime.setup): `edgefuse run`, `edgefuse bench` and the ROS
node build the same RuntimeConfig and open it the same way."""

import pytest

from edgefuse.errors import ConfigError
from edgefuse.ros_bridge.config import NodeConfig
from edgefuse.runtime.bench import BenchConfig
from edgefuse.runtime.pipeline import RunConfig
from edgefuse.runtime.setup import RuntimeConfig, open_runtime


def test_runner_options_per_backend():
    assert RuntimeConfig("b").runner_options() == {"providers": "auto", "share_weights": True}
    ort = RuntimeConfig("b", threads=2, providers="cpu", share_weights=False).runner_options()
    assert ort == {"providers": "cpu", "share_weights": False, "threads": 2}
    assert RuntimeConfig("b", backend="tensorrt", on_mismatch="REBUILD").runner_options() == {"on_mismatch": "rebuild"}
    assert RuntimeConfig("b", backend="torch").runner_options() == {}
    assert RuntimeConfig("b", backend="torch", checkpoint="c.safetensors").runner_options() == {"checkpoint": "c.safetensors"}


@pytest.mark.parametrize("kwargs, match", [
    ({"backend": "onnx"}, "unknown backend 'onnx'; choose one of ort, tensorrt, torch"),
    ({"on_mismatch": "ignore"}, "--on-mismatch 'ignore' is not one of refuse, rebuild"),
    ({"threads": -1}, "--threads must be >= 0"),
    ({"budget_ms": 0.0}, "must be > 0"),
])
def test_bad_settings_fail_before_anything_loads(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RuntimeConfig("does-not-exist", **kwargs)


def test_run_bench_and_the_node_build_the_same_runtime_config():
    settings = dict(backend="ort", threads=3, providers="cpu", share_weights=False, on_mismatch="refuse",
                    min_depth_valid=0.3)
    expected = RuntimeConfig("b", budget_ms=12.0, **settings)
    run = RunConfig(bundle="b", budget_ms=12.0, camera="synthetic", frames=5, **settings)
    bench = BenchConfig(bundle="b", budget_ms=12.0, frames=5, **settings)
    node = NodeConfig(bundle="b", budget_ms=12.0, **settings).runtime_config()
    for config in (run, bench, node):
        assert config.runner_options() == expected.runner_options()
        assert config.policy_config() == expected.policy_config()
    # The node's 0 means "no budget", the command line's None does.
    assert NodeConfig(bundle="b").runtime_config().budget_ms is None
    with pytest.raises(ConfigError, match="parameter on_mismatch 'x'"):
        NodeConfig(bundle="b", on_mismatch="x").runtime_config()


def test_open_runtime_opens_bundle_runner_policy_and_hands_sinks_to_the_processor(bundle_dir):
    from edgefuse.runtime.runners.ort import OrtRunner

    class Sink:
        def write(self, out):
            pass

        def close(self):
            pass

    runtime = open_runtime(RuntimeConfig(str(bundle_dir), threads=1, share_weights=False, budget_ms=5.0))
    assert isinstance(runtime.runner, OrtRunner) and runtime.runner.share_weights is False
    assert runtime.runner.threads == 1
    assert runtime.policy.config.budget_ms == 5.0 and runtime.policy.controller is not None
    assert runtime.input_size == tuple(runtime.manifest.input_size)
    sink = Sink()
    processor = runtime.processor([sink])
    assert processor.sinks == [sink] and processor.runner is runtime.runner and processor.policy is runtime.policy


def test_open_runtime_without_a_bundle_says_what_to_give():
    with pytest.raises(ConfigError, match="no bundle"):
        open_runtime(RuntimeConfig(""))
