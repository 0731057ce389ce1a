"""benchmarks/pnp_validation.py: PnPVDMRecon variants on validation slices."""
import json

import numpy as np
import pytest

from bench_scripts import load_benchmark
from toy_images import disc_slices


def test_variants_on_slices(tmp_path):
    from mrirecon_vdm.bench import vdm_methods as vm
    from mrirecon_vdm.gaussian_prior import GaussianPrior, stationary_variance
    script = load_benchmark("pnp_validation")
    data = tmp_path / "s.npy"
    np.save(data, disc_slices(2, size=64))
    prior = GaussianPrior(np.full((64, 64), 0.3),
                          variance=stationary_variance((64, 64), 0.03, 2.0))
    vm.set_prior(prior)
    try:
        out = tmp_path / "rows.json"
        assert script.main(["cart4", "cart4phase", "sr2", "--data", str(data), "--offset", "0",
                            "--stride", "1", "--count", "2",
                            "--variant", '{"data_step": "gradient", "num_steps": 4}',
                            "--variant", '{"num_steps": 4, "true_phase": true}',
                            "--json", str(out)]) == 0
    finally:
        vm.set_prior(None)
    rows = json.loads(out.read_text())
    assert [(r["task"], r["variant"].get("data_step")) for r in rows] == [
        ("cart4", "gradient"), ("cart4", None), ("cart4phase", "gradient"),
        ("cart4phase", None), ("sr2", "gradient"), ("sr2", None)]
    assert all(np.isfinite(r["psnr"]) and len(r["psnr_per_slice"]) == 2 for r in rows)
    with pytest.raises(SystemExit):
        script.main(["cart4", "--variant", "[1]"])


def test_variant_with_the_highpass_sigma(tmp_path):
    """``sigma_highpass``: σ = f × the high-pass bound of each slice's data (noisy task)."""
    from mrirecon_vdm.bench import vdm_methods as vm
    from mrirecon_vdm.gaussian_prior import GaussianPrior, stationary_variance
    script = load_benchmark("pnp_validation")
    data = tmp_path / "s.npy"
    np.save(data, disc_slices(2, size=64))
    vm.set_prior(GaussianPrior(np.full((64, 64), 0.3),
                               variance=stationary_variance((64, 64), 0.03, 2.0)))
    try:
        out = tmp_path / "rows.json"
        assert script.main(["cart4_noisy", "--data", str(data), "--offset", "0", "--stride",
                            "1", "--count", "2", "--variant", '{"num_steps": 4}',
                            "--variant", '{"num_steps": 4, "sigma_highpass": 1.0}',
                            "--variant", '{"num_steps": 4, "sigma": 0}',
                            "--variant", '{"num_steps": 4, "sigma_true": 1.0}',
                            "--json", str(out)]) == 0
    finally:
        vm.set_prior(None)
    rows = json.loads(out.read_text())
    assert [r["variant"].get("sigma_highpass") for r in rows] == [None, 1.0, None, None]
    assert all(np.isfinite(r["psnr"]) for r in rows)
    default, highpass, zero, true = (r["psnr"] for r in rows)
    assert highpass > zero and default > zero       # σ = 0 fits the noise
    assert abs(default - true) < 0.3                # the estimate from the pairs (k, −k)
