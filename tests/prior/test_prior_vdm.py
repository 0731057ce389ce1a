import json
import math

import pytest
import torch

from mrirecon_vdm.prior import VDM, VDMConfig
from mrirecon_vdm.prior.vdm import _log_bin_mass



@pytest.fixture
def model(tiny_model_config):
    torch.manual_seed(0)
    return VDM(tiny_model_config)


def _randomise_output(m):
    """The output conv is zero-initialised (ε̂ = 0); give it weights for non-trivial tests."""
    with torch.no_grad():
        m.net.conv_out.weight.normal_(0, 0.1)


def test_protocol_shapes(model):
    assert model.image_channels == 1 and model.downsample_factor == 2
    z = torch.randn(3, 1, 8, 12)
    assert model.predict_eps(z, torch.rand(3)).shape == z.shape
    assert model.predict_eps(z, 0.5).shape == z.shape
    assert model.predict_x0(z, 0.5).shape == z.shape
    assert model.gamma(torch.rand(2, 5)).shape == (2, 5)


def test_config_json_roundtrip(tiny_model_config):
    d = json.loads(json.dumps(tiny_model_config.to_dict()))
    assert VDMConfig.from_dict(d) == tiny_model_config
    with pytest.raises(ValueError, match="unknown keys"):
        VDMConfig.from_dict({**d, "bogus": 1})
    with pytest.raises(ValueError, match="schedule"):
        VDMConfig(schedule="cosine")
    assert VDMConfig().downsample_factor == 8


def test_default_size():
    n = sum(p.numel() for p in VDM().net.parameters())
    assert 2.0e6 < n < 3.0e6


def test_alpha_sigma_stable():
    g = torch.tensor([-40.0, -13.3, 0.0, 5.0, 40.0])
    a, s = VDM.alpha_sigma(g)
    torch.testing.assert_close(a ** 2 + s ** 2, torch.ones(5))
    torch.testing.assert_close(torch.log(a[1:4] ** 2 / s[1:4] ** 2), -g[1:4], atol=1e-4, rtol=1e-4)
    assert torch.isfinite(a).all() and torch.isfinite(s).all()


def test_x0_eps_consistency(model):
    _randomise_output(model)
    z, t = torch.randn(2, 1, 8, 8), torch.tensor([0.2, 0.7])
    eps, x0 = model.predict_eps(z, t), model.predict_x0(z, t)
    a, s = model.alpha_sigma(model.gamma(t))
    torch.testing.assert_close(a[:, None, None, None] * x0 + s[:, None, None, None] * eps, z,
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(1, 8, 8), "rank 4"),
    (torch.zeros(1, 2, 8, 8), "1 channel"),
    (torch.zeros(1, 1, 9, 8), "multiples of downsample_factor=2"),
    (torch.full((1, 1, 8, 8), float("nan")), "finite"),
])
def test_bad_inputs(model, bad, match):
    for call in (lambda: model.predict_eps(bad, 0.5), lambda: model.loss(bad)):
        with pytest.raises(ValueError, match=match):
            call()
    with pytest.raises(ValueError, match=r"scalar or of shape \(2,\)"):
        model.predict_eps(torch.zeros(2, 1, 8, 8), torch.zeros(3))


def test_loss_terms_closed_form(tiny_model_config):
    """At initialisation ε̂ ≡ 0 (zero output conv): every term has a closed form."""
    cfg = VDMConfig.from_dict({**tiny_model_config.to_dict(), "likelihood": "gaussian"})
    m = VDM(cfg)
    x = torch.rand(4, 1, 8, 8)
    t = torch.tensor([0.1, 0.4, 0.6, 0.9])
    eps = torch.randn_like(x)
    gen = torch.Generator().manual_seed(5)
    out = m.loss(x, generator=gen, t=t, eps=eps)
    d = x[0].numel()
    g0, g1 = (float(v) for v in m.gamma(torch.tensor([0.0, 1.0])).detach())
    # 2. prior: KL(N(α1 x, σ1²) || N(0, 1)) summed over pixels
    a1, s1 = math.sqrt(1 / (1 + math.exp(g1))), math.sqrt(1 / (1 + math.exp(-g1)))
    q = torch.distributions.Normal(a1 * x, s1)
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0))
    torch.testing.assert_close(out.loss_prior, kl.flatten(1).sum(1), rtol=1e-4, atol=1e-6)
    # 1. Gaussian reconstruction: −log N(x; z0/α0, σ0²/α0²) = ½ Σ (log 2π + γ0 + ε0²), with the
    # ε0 the loss drew first from the generator (t and ε were given)
    eps0 = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    want = 0.5 * (d * (math.log(2 * math.pi) + g0) + eps0.flatten(1).pow(2).sum(1))
    torch.testing.assert_close(out.loss_recon, want, rtol=1e-5, atol=1e-4)
    # 3. diffusion: ½ γ'(t) ‖ε‖² since ε̂ = 0
    _, dg = m.schedule.forward_with_derivative(t)
    torch.testing.assert_close(out.loss_diff, 0.5 * dg * eps.flatten(1).pow(2).sum(1),
                               rtol=1e-4, atol=1e-4)
    total = (out.loss_recon + out.loss_prior + out.loss_diff) / (d * math.log(2))
    torch.testing.assert_close(out.bpd, total)
    torch.testing.assert_close(out.loss, total.mean())


def test_discrete_time_loss(tiny_model_config):
    T = 10
    m = VDM(VDMConfig.from_dict({**tiny_model_config.to_dict(), "num_timesteps": T}))
    x, eps = torch.rand(3, 1, 8, 8), torch.randn(3, 1, 8, 8)
    t = torch.tensor([0.0, 0.33, 1.0])
    out = m.loss(x, t=t, eps=eps)
    ti = torch.tensor([0.1, 0.4, 1.0])
    w = 0.5 * T * torch.expm1(m.gamma(ti) - m.gamma(ti - 1 / T))
    torch.testing.assert_close(out.loss_diff, w * eps.flatten(1).pow(2).sum(1), rtol=1e-4, atol=1e-4)


def test_discretized_likelihood_mass():
    x = torch.tensor([0.0, 0.5, 1.0, 0.2])
    mean = torch.tensor([0.001, 0.49, 1.3, 0.2])
    scale, h = 0.004, 0.5 / 255
    got = _log_bin_mass(x, mean, torch.tensor(scale), h)
    n = torch.distributions.Normal(mean.double(), scale)
    want = torch.log(n.cdf(x.double() + h) - n.cdf(x.double() - h))
    torch.testing.assert_close(got.double()[:2], want[:2], rtol=1e-5, atol=1e-6)
    assert got[2] < -100 and torch.isfinite(got[2])       # far tail: finite, very small
    # the bins of an integer grid partition the real line
    grid = torch.arange(-200, 400) / 255.0
    total = _log_bin_mass(grid, torch.tensor(0.37), torch.tensor(0.05), h).exp().sum()
    torch.testing.assert_close(total, torch.tensor(1.0), rtol=1e-5, atol=1e-5)


def test_loss_decreases_and_gradients_flow(tiny_model_config, make_blobs):
    torch.manual_seed(0)
    m = VDM(tiny_model_config)
    x = torch.from_numpy(make_blobs(8, 16, seed=3))[:, None]
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for i in range(30):
        out = m.loss(x, generator=gen)
        opt.zero_grad()
        out.loss.backward()
        if i == 0:
            for name, p in m.named_parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all(), name
        opt.step()
        losses.append(float(out.loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_sample_and_bf16(model):
    _randomise_output(model)
    gen = torch.Generator().manual_seed(0)
    s = model.sample((2, 1, 8, 8), num_steps=4, generator=gen)
    assert s.shape == (2, 1, 8, 8) and torch.isfinite(s).all()
    with pytest.raises(ValueError, match="multiples"):
        model.sample((1, 1, 7, 8), 2)
    model.compute_dtype = torch.bfloat16
    e = model.predict_eps(torch.randn(1, 1, 8, 8), 0.3)
    assert e.dtype == torch.float32
