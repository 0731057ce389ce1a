#!/usr/bin/env python
"""Milliseconds per call of the data-consistency CG's normal operator AᴴA, 128 × 128.

Compares, in one process, ``FourierStructure.normal`` (plain FFTs on an ifftshifted mask,
torch's FFT on the CPU; 1D across the lines for 1D Cartesian masks) with the plain form
(centred FFTs, ``sigpy.fft(center=True)``, which shifts before and after every transform),
and checks the two agree. docs/results.md ("Speed") quotes it:

    python benchmarks/normal_operator_speed.py --threads 1
    python benchmarks/normal_operator_speed.py --threads 2
"""
import argparse
import pathlib
import sys
import timeit

import numpy as np

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def centred_normal(st, x):
    """AᴴA x with centred FFTs (the plain form, for comparison)."""
    import sigpy as sp

    from mrirecon_vdm.linop import _as_complex

    axis = st._line_axis()
    if axis is None:
        return st.adjoint(st.forward(x))
    c = _as_complex(x)
    if st.phase is not None:
        c = c * st.phase
    if st.maps is not None:
        c = c[..., None, :, :] * st.maps
    k = sp.fft(c, axes=(axis,), center=True) * st._lines
    c = sp.ifft(k, axes=(axis,), center=True)
    if st.maps is not None:
        c = (c * st.maps.conj()).sum(axis=-3)
    if st.phase is not None:
        c = c * st.phase.conj()
    return c


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args(argv)

    import torch

    from mrirecon_vdm.coils import birdcage_maps
    from mrirecon_vdm.linop import FourierSampling, Phase, fourier_structure
    from mrirecon_vdm.phase import smooth_phase
    from mrirecon_vdm.sampling import cartesian_mask, poisson_mask

    torch.set_num_threads(args.threads)
    hw = (args.size, args.size)
    cases = [("Cartesian 4× (lines), phase", cartesian_mask(hw, 4, center=0.08, seed=0), None,
              True),
             ("Poisson-disc 8×, phase", poisson_mask(hw, 8, seed=0), None, True),
             ("8 coils, Cartesian 8×", cartesian_mask(hw, 8, center=0.1, seed=0),
              birdcage_maps(hw, 8), False)]
    print(f"| operator ({args.size} × {args.size}, {args.threads} thread(s)) | centred FFTs, ms "
          f"| shift-free, ms | speed-up |")
    print("|---|---|---|---|")
    for name, m, maps, with_phase in cases:
        A = FourierSampling(hw, m, maps=maps)
        if with_phase:
            A = A * Phase(hw, smooth_phase(hw, seed=1))
        st = fourier_structure(A)
        x = np.random.default_rng(0).standard_normal((1,) + hw).astype(np.float32)
        ref = centred_normal(st, x)
        np.testing.assert_allclose(st.normal(x), ref, atol=1e-5 * float(np.abs(ref).max()))
        best = {}
        for _ in range(2):
            for label, f in (("old", lambda: centred_normal(st, x)),
                             ("new", lambda: st.normal(x))):
                f()
                t = min(timeit.repeat(f, number=50, repeat=7)) / 50 * 1e3
                best[label] = min(best.get(label, np.inf), t)
        print(f"| {name} | {best['old']:.3f} | {best['new']:.3f} | "
              f"{best['old'] / best['new']:.1f}× |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
