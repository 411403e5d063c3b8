import pytest

from edgefuse.models.registry import build_model
from edgefuse.train.config import OptimConfig, ScheduleKind
from edgefuse.train.schedules import build_optimizer, build_scheduler


def test_gate_gets_its_own_rate_and_onecycle_peaks_per_group():
    model = build_model("dynmm-tiny", input_size=(64, 64))
    cfg = OptimConfig(lr=0.01)
    opt = build_optimizer(model, cfg, 0.01, gate_lr=0.1)
    gate = {id(p) for p in model.gate_net.parameters()}
    assert [len(g["params"]) for g in opt.param_groups] == [
        sum(1 for p in model.parameters()) - len(gate), len(gate)]
    assert {id(p) for p in opt.param_groups[1]["params"]} == gate
    sched = build_scheduler(opt, cfg, total_steps=10)
    peaks = [0.0, 0.0]
    for _ in range(10):
        peaks = [max(a, g["lr"]) for a, g in zip(peaks, opt.param_groups)]
        opt.step()
        sched.step()
    assert peaks == pytest.approx([0.01, 0.1], rel=0.05)


def test_static_model_has_one_group_and_constant_schedule():
    model = build_model("esanet-tiny", input_size=(64, 64))
    cfg = OptimConfig(lr=0.02, schedule=ScheduleKind.CONSTANT)
    opt = build_optimizer(model, cfg, 0.02, gate_lr=0.5)
    assert len(opt.param_groups) == 1
    sched = build_scheduler(opt, cfg, total_steps=5)
    for _ in range(3):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == 0.02
