#!/usr/bin/env python
"""Seconds per 128 x 128 slice of the recommended reconstructions on this CPU (two torch
threads, the shipped prior, three shipped held-out slices after one warm-up): plug-and-play
(super-resolution 4x and Cartesian 4x), the guided sampler with one sample at 50 and 25
steps. Prints one JSON line with the CPU kind torch uses and whether bfloat16 runs fast.

    python benchmarks/cpu_speed.py                                               # this CPU
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/cpu_speed.py   # its AVX2 path
"""
import json
import pathlib
import sys
import time

import numpy as np

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def main():
    import torch

    import mrirecon_vdm as mv
    from mrirecon_vdm.data import shipped_test_slices
    from mrirecon_vdm.linop import FourierSampling
    from mrirecon_vdm.pnp import PnPVDMRecon
    from mrirecon_vdm.precision import fast_bf16
    from mrirecon_vdm.sampling import cartesian_mask

    torch.set_num_threads(2)
    xs = shipped_test_slices()[:3]
    prior = mv.load_pretrained()
    A = mv.CropFourier((128, 128), (32, 32))
    B = FourierSampling((128, 128), cartesian_mask((128, 128), 4, seed=0))

    def seconds(f):
        f(xs[0])                                   # warm-up
        start = time.perf_counter()
        for x in xs:
            f(x)
        return round((time.perf_counter() - start) / len(xs), 2)

    def lr(x):
        return mv.simulate_lowres(x, (32, 32))
    out = {"cpu": torch.backends.cpu.get_cpu_capability(), "bf16": fast_bf16("cpu"),
           "pnp_sr4": seconds(lambda x: PnPVDMRecon(lr(x), A, prior, show_pbar=False).run()),
           "guided_1x50": seconds(lambda x: mv.GuidedVDMRecon(lr(x), A, prior, seed=0,
                                                              show_pbar=False).run()),
           "guided_1x25": seconds(lambda x: mv.GuidedVDMRecon(lr(x), A, prior, num_steps=25,
                                                              seed=0, show_pbar=False).run()),
           "pnp_cart4": seconds(lambda x: PnPVDMRecon(B(x).astype(np.complex64), B, prior,
                                                      show_pbar=False).run())}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
