"""Costs are measured with torch.utils.flop_counter and match the published ESANet-R50 figure."""

import json

import pytest

from edgefuse.cli.main import main
from edgefuse.models.costs import count_madds, measure_costs
from edgefuse.models.registry import build_model

PUBLISHED_TOTAL = 56.9e9   # ESANet-R50 at 480x640, DynMM paper Tables 3/4
PUBLISHED_DEPTH = 24.7e9


@pytest.mark.parametrize("name", ["dynmm-r50", "esanet-r50"])
def test_r50_full_path_matches_the_paper_within_3_percent(name):
    costs = measure_costs(build_model(name))
    full = costs.paths[-1]
    assert full.madds == pytest.approx(PUBLISHED_TOTAL, rel=0.03)
    assert full.depth_encoder_madds == pytest.approx(PUBLISHED_DEPTH, rel=0.03)
    if name == "dynmm-r50":
        assert len(costs.paths) == 5
        assert costs.gate_madds == pytest.approx(0.12e9, rel=0.1)  # DynMM's gate: about 0.12 GMAC (docs/models-and-training.md "DynMM")


def test_count_madds_counts_a_conv_exactly():
    import torch

    conv = torch.nn.Conv2d(4, 8, 3, padding=1, bias=False)
    x = torch.rand(1, 4, 10, 10)
    assert count_madds(lambda: conv(x)) == 8 * 4 * 9 * 100


def test_info_json_contract(capsys):
    assert main(["info", "dynmm-tiny", "--input-size", "192x256", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "dynmm-tiny" and data["input_size"] == [192, 256]
    assert isinstance(data["gate_madds"], float) and data["gate_madds"] > 0
    assert [p["index"] for p in data["paths"]] == [0, 1, 2, 3, 4]
    for p in data["paths"]:
        assert set(p) >= {"index", "decision", "madds", "depth_encoder_madds"}
        assert len(p["decision"]) == 4 and all(isinstance(b, bool) for b in p["decision"])
    madds = [p["madds"] for p in data["paths"]]
    assert madds == sorted(madds)


def test_info_static_model_reports_one_path(capsys):
    assert main(["info", "esanet-tiny", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["paths"]) == 1 and data["paths"][0]["decision"] == [True] * 4
    assert data["gate_madds"] == 0


def test_info_errors_exit_2_without_traceback(capsys):
    assert main(["info", "dynmm-tny"]) == 2
    err = capsys.readouterr().err
    assert "unknown model" in err and "dynmm-tiny" in err and "Traceback" not in err
    assert main(["info", "dynmm-r50", "--input-size", "480by640"]) == 2
    assert main(["info", "dynmm-r50", "--input-size", "512x512"]) == 2
