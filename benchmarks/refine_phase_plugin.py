"""Benchmark plugin: the guided sampler without its phase refinement (an ablation).

The fast guided sampler refines an estimated phase by default (``GuidedVDMRecon``,
``refine_phase=None``; chosen on the validation person: mean of 4, Cartesian 4× with a
smooth phase, 31.70 against 31.17 dB). This plugin registers ``vdm-mean4-norefine`` (mean
of 4 fast-sampler samples, 50 steps, ``refine_phase=False``), to measure beside the
default what the refinement gives (docs/results.md, "Undersampled and multi-coil
k-space"):

    PYTHONPATH=benchmarks mrirecon-vdm bench --plugin refine_phase_plugin --split test \\
        --stride 8 --task cartesian --accel 4 --phase smooth --methods vdm-mean4-norefine \\
        --out docs/bench/operators/cart4phase_norefine_test
"""
from mrirecon_vdm.bench.registry import register_method
from mrirecon_vdm.bench.vdm_methods import MEAN_STEPS, vdm_recon


def _mean4_norefine(y, A, scale, **opts):
    x, nfe, _ = vdm_recon(y, A, scale, sampler="fast", num_steps=MEAN_STEPS, num_samples=4,
                          refine_phase=False, **opts)
    return x, nfe


register_method("vdm-mean4-norefine", _mean4_norefine, nfe=4 * MEAN_STEPS, replace=True,
                description="guided VDM, mean of 4 fast samples without the phase refinement",
                settings={"refine_phase": False})
