"""The surrogate objective (acteach.surrogate): (1/N) sum over the valid steps of log pi * SG[w],
and for K stacked seeds one value per seed (its checker, exercise 1.2, is in test_checks.py)."""
import pytest
import torch

from acteach.surrogate import policy_gradient_surrogate


def test_k_seeds_give_each_seed_its_own_surrogate_and_gradient():
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(5, 3, 4, generator=g, requires_grad=True)             # (T, K, N)
    weights = torch.randn(5, 3, 4, generator=g)
    mask = torch.rand(5, 3, 4, generator=g) < 0.7
    stacked = policy_gradient_surrogate(logp, weights, mask)
    assert stacked.shape == (3,)
    (grad,) = torch.autograd.grad(stacked[1], logp)
    assert torch.all(grad[:, [0, 2]] == 0)                                   # no other seed's
    for k in range(3):
        one = policy_gradient_surrogate(logp[:, k], weights[:, k], mask[:, k])
        torch.testing.assert_close(stacked[k], one)
        by_hand = (logp[:, k] * weights[:, k])[mask[:, k]].sum() / 4         # divided by N = 4
        torch.testing.assert_close(one, by_hand)


@pytest.mark.parametrize("shapes, name", [(((5,), (5,), (5,)), "logp"),
                                          (((5, 2), (5, 3), (5, 2)), "weights"),
                                          (((5, 2, 3), (5, 2, 3), (5, 2)), "mask")])
def test_bad_shapes_are_refused_by_name(shapes, name):
    logp, weights, mask = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=f"^{name}:"):
        policy_gradient_surrogate(logp, weights, mask.bool())
