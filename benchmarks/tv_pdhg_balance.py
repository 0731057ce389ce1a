#!/usr/bin/env python
"""SigPy TV (PDHG) on undersampled k-space: the step balance of ``baselines.TVRecon``.

min ½‖Ax − y‖² + λ s ‖∇x‖₁ with SigPy's plain PDHG (σ = 1, τ = 1/‖[A; ∇]‖², ‖∇‖² ≈ 8)
converges slowly: the data block gets a far smaller share of the step than the gradient
block. Scaling ∇ by 1/c (and λ by c; the same problem) balances them; ``baselines.TVRecon``
uses c = √8 (``baselines.TV_BALANCE``). On 11 validation slices (``val_person`` every 8th from 4) this prints the mean
PSNR of the current default, BART TV, and a small grid (λ, iterations, c):

    python benchmarks/tv_pdhg_balance.py cartesian 4

Validation data only. docs/baselines.md ("SigPy TV's balanced PDHG") quotes it.
"""
import argparse
import pathlib
import sys
import time

import numpy as np

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def tv_balanced(y, A, lamda, max_iter, c):
    """|x| of min ½‖Ax − y‖² + λ s ‖∇x‖₁ by PDHG with ∇/c and λc (σ = 1, τ = 1/‖[A; ∇/c]‖²),
    s = max|Aᴴy| as in ``baselines.TVRecon``; c = 1 is the baseline's iteration."""
    import sigpy as sp

    from mrirecon_vdm import baselines as B
    from mrirecon_vdm.linop import max_eig

    s = B.data_scale(y, A)
    G = sp.linop.FiniteDifference(A.ishape, axes=(-2, -1)) * (1.0 / c)
    proxg = sp.prox.L1Reg(G.oshape, lamda * s * c)
    tau = 1.0 / max_eig(A, G, dtype=y.dtype)
    lls = sp.app.LinearLeastSquares(A, y, proxg=proxg, G=G, max_iter=max_iter, tau=tau,
                                    sigma=1.0, show_pbar=False)
    return np.abs(lls.run())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("task", nargs="?", default="cartesian", choices=["cartesian", "poisson"])
    ap.add_argument("accel", nargs="?", type=int, default=4)
    args = ap.parse_args(argv)

    from mrirecon_vdm import baselines as B
    from mrirecon_vdm.bench.runner import load_data
    from mrirecon_vdm.bench.tasks import Task, simulate_task
    from mrirecon_vdm.metrics import psnr

    images, _ = load_data(split="val_person")
    idx = list(range(4, images.shape[0], 8))[:11]
    xs, dr = images[idx], float(images.max())
    ops, ys, _ = simulate_task(xs, Task(task=args.task), args.accel, seed=0)

    def run(label, f):
        t = time.perf_counter()
        p = [psnr(x, f(y, A), data_range=dr) for x, A, y in zip(xs, ops, ys)]
        print(f"{label:40s} {np.mean(p):.3f} dB  {(time.perf_counter() - t) / len(xs):.2f} s",
              flush=True)

    run("current default", lambda y, A: np.abs(B.TVRecon(y, A).run()))
    run("bart-tv default", lambda y, A: np.abs(B.BartPicsRecon(y, A, reg="tv").run()))
    for lam in (0.003, 0.01, 0.0178):
        for it in (100, 200):
            for c in (1.0, np.sqrt(8)):
                run(f"lam {lam} it {it} c {c:.2f}",
                    lambda y, A: tv_balanced(y, A, lam, it, c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
