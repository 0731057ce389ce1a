import pytest
import torch

from mrirecon_vdm.prior import LearnedGamma, LinearGamma

T = torch.linspace(0, 1, 2001)


def _perturb(module, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


def test_learned_endpoints_at_init():
    g = LearnedGamma(-13.3, 5.0, num_features=64)
    ends = g(torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(ends, torch.tensor([-13.3, 5.0]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("scale", [0.0, 1.0, 5.0])
def test_learned_monotone_after_perturbation(seed, scale):
    g = LearnedGamma(-13.3, 5.0, num_features=32)
    _perturb(g, scale, seed)
    with torch.no_grad():
        v, dv = g.forward_with_derivative(T)
    assert torch.isfinite(v).all() and torch.isfinite(dv).all()
    assert (v[1:] > v[:-1]).all()
    assert (dv > 0).all()


def test_derivative_matches_autograd():
    g = LearnedGamma(num_features=16)
    _perturb(g, 0.5, 3)
    t = torch.rand(7, dtype=torch.float32).requires_grad_()
    v, dv = g.forward_with_derivative(t)
    (auto,) = torch.autograd.grad(v.sum(), t)
    torch.testing.assert_close(dv, auto, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(), (3,), (2, 3, 4)])
def test_any_shape(shape):
    t = torch.rand(shape)
    for g in (LearnedGamma(num_features=8), LinearGamma()):
        v, dv = g.forward_with_derivative(t)
        assert v.shape == t.shape == dv.shape == g(t).shape


def test_linear():
    g = LinearGamma(-10.0, 6.0)
    torch.testing.assert_close(g(torch.tensor([0.0, 0.5, 1.0])), torch.tensor([-10.0, -2.0, 6.0]))
    assert list(g.parameters()) == []
    with pytest.raises(ValueError, match="gamma_max > gamma_min"):
        LinearGamma(1.0, 0.0)


def test_shape_hook_leaves_endpoint_gradient():
    """The variance-minimisation hook rescales only the shape parameters' gradient."""
    g = LearnedGamma(num_features=8)
    t = torch.rand(5)
    v, dv = g.forward_with_derivative(t, shape_grad_hook=lambda grad: grad * 0.0)
    (v + dv).sum().backward()
    assert g.gamma_0.grad is not None and g.gamma_0.grad != 0
    assert g.range_raw.grad != 0
    for p in (g.w1_raw, g.w2_raw, g.w3_raw, g.b2):
        assert float(p.grad.abs().sum()) == 0.0
