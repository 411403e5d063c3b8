"""Stage II's resource term (DynMM eq. 4) with a compute budget: relu(r - budget), r the batch's
mean gate-weighted path cost as a share of the costliest path. Under the budget it neither
costs nor pulls; above it, its gradient moves gate probability to cheaper paths."""

import pytest
import torch

from edgefuse.models.base import SegOutput
from edgefuse.models.gumbel import gumbel_softmax
from edgefuse.train.config import StageConfig
from edgefuse.train.losses import resource_term

MADDS = torch.tensor([2.0, 3.0, 5.0, 7.0, 8.0]) * 1e8     # measured path costs, cheapest first
SHARE = MADDS / MADDS.max()


def _gate(favoured: int, hard: bool = False, batch: int = 3):
    """Gate logits (a leaf to take gradients of) favouring one path; weights as in stage II."""
    logits = torch.zeros(batch, len(MADDS))
    logits[:, favoured] = 3.0
    logits = logits + 0.1 * torch.randn(batch, len(MADDS))
    logits.requires_grad_(True)
    weights = gumbel_softmax(logits, tau=1.0, hard=hard, noise=False) if hard else torch.softmax(logits, 1)
    return logits, weights


def _term(weights, lam, budget):
    stage = StageConfig(name="stage2", resource_lambda=lam, budget=budget)
    return resource_term(SegOutput(logits=torch.zeros(1), gate_weights=weights), MADDS, stage)


@pytest.mark.parametrize("hard", [False, True])
def test_under_budget_costs_nothing_and_pulls_nothing(hard):
    logits, weights = _gate(favoured=0, hard=hard)
    r = float((weights.detach() * SHARE).sum(1).mean())
    budget = 0.6
    assert r < budget                                     # the set-up: mostly the cheapest path
    loss = _term(weights, lam=2.0, budget=budget)
    assert float(loss) == 0.0
    loss.backward()
    assert logits.grad is not None and torch.count_nonzero(logits.grad) == 0


@pytest.mark.parametrize("hard", [False, True])
def test_over_budget_pays_the_excess_and_pushes_to_cheaper_paths(hard):
    lam, budget = 2.0, 0.6
    logits, weights = _gate(favoured=4, hard=hard)
    r = (weights.detach() * SHARE).sum(1).mean()
    assert r > budget
    loss = _term(weights, lam=lam, budget=budget)
    assert float(loss) == pytest.approx(lam * float(r - budget), rel=1e-5) and float(loss) > 0
    loss.backward()
    grad = logits.grad
    assert torch.count_nonzero(grad) > 0
    # descending the gradient raises every path cheaper than the batch's expected cost
    # relative to every dearer one; the cheapest path gains, the dearest loses
    probs = torch.softmax(logits.detach(), 1)
    expected = (probs * SHARE).sum(1, keepdim=True)
    assert torch.all(torch.sign(grad) == torch.sign(SHARE - expected))
    after = torch.softmax(logits.detach() - 1.0 * grad, 1)
    assert torch.all(after[:, 0] > probs[:, 0]) and torch.all(after[:, -1] < probs[:, -1])
    assert float((after * SHARE).sum(1).mean()) < float((probs * SHARE).sum(1).mean())


def test_budget_is_a_share_of_the_costliest_path():
    """The same gate weights cost the same whatever the MAdds' scale; no budget: all of r."""
    _, weights = _gate(favoured=2)
    r = float((weights.detach() * SHARE).sum(1).mean())
    stage = StageConfig(name="s", resource_lambda=1.0, budget=0.3)
    out = SegOutput(logits=torch.zeros(1), gate_weights=weights)
    assert float(resource_term(out, MADDS, stage)) == pytest.approx(r - 0.3, rel=1e-5)
    assert float(resource_term(out, MADDS * 1e3, stage)) == pytest.approx(r - 0.3, rel=1e-5)
    assert float(_term(weights, lam=1.0, budget=None)) == pytest.approx(r, rel=1e-5)
    assert _term(weights, lam=0.0, budget=0.3) is None                  # stage I: no resource term
    assert resource_term(SegOutput(logits=torch.zeros(1)), MADDS, stage) is None   # static model
