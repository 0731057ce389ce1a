"""The method registry (mrirecon_vdm.bench.registry): the classical methods in order, name
checks, unknown names, a registered method that reports its own NFE."""
import numpy as np
import pytest

from mrirecon_vdm import baselines as B
from mrirecon_vdm.bench import registry as R
from test_baselines import measure, phantom  # noqa: F401  (phantom: a fixture)


def test_registry():
    assert list(R.METHODS)[:6] == ["zero-fill", "bicubic", "sigpy-wavelet", "sigpy-tv",
                                   "bart-wavelet", "bart-tv"]
    with pytest.raises(ValueError, match="already registered"):
        R.register_method("zero-fill", lambda y, A, s: None)
    with pytest.raises(ValueError, match="lowercase"):
        R.register_method("VDM", lambda y, A, s: None)
    with pytest.raises(ValueError, match="registered: zero-fill"):
        R.reconstruct("nope", None, None, 4)


def test_registered_method_with_nfe(phantom):  # noqa: F811
    y, A = measure(phantom, (16, 16))
    R.register_method("test-double-zf", lambda y, A, s, k=2: (k * B.ZeroFillRecon(y, A).run(), 7),
                      nfe=1)
    try:
        x, nfe = R.reconstruct("test-double-zf", y, A, 4, k=3)
        assert nfe == 7
        np.testing.assert_allclose(x, 3 * B.ZeroFillRecon(y, A).run(), atol=1e-5)
    finally:
        del R.METHODS["test-double-zf"]


def test_refine_phase_plugin_registers_a_versioned_method():
    import sys
    from pathlib import Path

    from mrirecon_vdm.bench import registry
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import refine_phase_plugin  # noqa: F401
        m = registry.METHODS["vdm-mean4-norefine"]
        assert m.nfe == 200 and m.settings == {"refine_phase": False}
    finally:
        sys.path.pop(0)
        registry.METHODS.pop("vdm-mean4-norefine", None)


def test_sigma0_plugin_runs_the_samplers_with_sigma_zero(monkeypatch):
    """The ablation plugin of the noisy single-coil tables: plug-and-play and the mean of 4
    with sigma=0 (data fitted as if noiseless), while the defaults estimate σ."""
    import sys
    from pathlib import Path

    from mrirecon_vdm.bench import registry, vdm_methods
    from mrirecon_vdm.gaussian_prior import GaussianPrior, stationary_variance
    from mrirecon_vdm.linop import FourierSampling
    from mrirecon_vdm.noise import GaussianNoise
    from mrirecon_vdm.pnp import PnPVDMRecon
    from mrirecon_vdm.sampling import cartesian_mask

    H = 16
    prior = GaussianPrior(np.full((H, H), 0.4), variance=stationary_variance((H, H), 0.03, 2.0))
    monkeypatch.setattr(vdm_methods, "get_prior", lambda: prior)
    monkeypatch.setattr(vdm_methods, "BF16", False)
    x = prior.sample(1, seed=0)[0].astype(np.float32)
    mask = cartesian_mask((H, H), 2, center=6, seed=0)
    A = FourierSampling((H, H), mask)
    y = (GaussianNoise(0.05, 1)(A(x)) * mask).astype(np.complex64)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import sigma0_plugin  # noqa: F401
        m = registry.METHODS["vdm-pnp-sigma0"]
        assert m.nfe == vdm_methods.PNP_STEPS and m.settings == {"sigma": 0.0}
        assert registry.METHODS["vdm-mean4-sigma0"].nfe == 4 * vdm_methods.MEAN_STEPS
        out, nfe = registry.reconstruct("vdm-pnp-sigma0", y, A, 2)
        ref = PnPVDMRecon(y, A, prior, sigma=0.0, bf16=False).run()
        np.testing.assert_allclose(out, ref, atol=1e-6)
        assert PnPVDMRecon(y, A, prior, num_steps=1, bf16=False).sigma > 0.03
    finally:
        sys.path.pop(0)
        registry.METHODS.pop("vdm-pnp-sigma0", None)
        registry.METHODS.pop("vdm-mean4-sigma0", None)
