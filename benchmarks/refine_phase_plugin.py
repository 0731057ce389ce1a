"""Benchmark plugin: the guided sampler with its optional phase refinement.

Registers ``vdm-mean4-refine`` (mean of 4 fast-sampler samples, 50 steps,
``GuidedVDMRecon(refine_phase=True)``), to measure the option beside the default methods
before it becomes a default (docs/results.md, "Undersampled and multi-coil k-space"):

    PYTHONPATH=benchmarks mrirecon-vdm bench --plugin refine_phase_plugin --split test \\
        --stride 8 --task cartesian --accel 4 --phase smooth --methods vdm-mean4-refine \\
        --out docs/bench/operators/cart4phase_refine_test
"""
from mrirecon_vdm.bench.registry import register_method
from mrirecon_vdm.bench.vdm_methods import MEAN_STEPS, vdm_recon


def _mean4_refine(y, A, scale, **opts):
    x, nfe, _ = vdm_recon(y, A, scale, sampler="fast", num_steps=MEAN_STEPS, num_samples=4,
                          refine_phase=True, **opts)
    return x, nfe


register_method("vdm-mean4-refine", _mean4_refine, nfe=4 * MEAN_STEPS, replace=True,
                description="guided VDM, mean of 4 fast samples with the phase refinement",
                settings={"refine_phase": True})
