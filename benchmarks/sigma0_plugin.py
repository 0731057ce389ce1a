"""Benchmark plugin: the samplers with σ = 0 (an ablation: data fitted as if noiseless).

Both samplers estimate σ for one coil without a phase from the measured pairs (k, −k)
(:func:`mrirecon_vdm.noise.estimate_sigma`). This plugin registers ``vdm-pnp-sigma0`` and ``vdm-mean4-sigma0`` (the
defaults with ``sigma=0``), to measure beside the defaults what the estimate gives on noisy
k-space (docs/results.md, "Undersampled and multi-coil k-space"):

    PYTHONPATH=benchmarks mrirecon-vdm bench --plugin sigma0_plugin --split test \\
        --stride 8 --task cartesian --accel 4 --sigma 0.05 \\
        --methods vdm-pnp-sigma0 vdm-mean4-sigma0 --out docs/bench/operators/cart4noisy_sigma0_test
"""
from mrirecon_vdm.bench.registry import register_method
from mrirecon_vdm.bench.vdm_methods import MEAN_STEPS, PNP_STEPS, pnp_recon, vdm_recon


def _pnp_sigma0(y, A, scale, **opts):
    x, nfe, _ = pnp_recon(y, A, scale, sigma=0.0, **opts)
    return x, nfe


def _mean4_sigma0(y, A, scale, **opts):
    x, nfe, _ = vdm_recon(y, A, scale, sampler="fast", num_steps=MEAN_STEPS, num_samples=4,
                          sigma=0.0, **opts)
    return x, nfe


register_method("vdm-pnp-sigma0", _pnp_sigma0, nfe=PNP_STEPS, replace=True,
                description="plug-and-play with sigma=0 (ablation)", settings={"sigma": 0.0})
register_method("vdm-mean4-sigma0", _mean4_sigma0, nfe=4 * MEAN_STEPS, replace=True,
                description="guided VDM, mean of 4 fast samples with sigma=0 (ablation)",
                settings={"sigma": 0.0})
