#!/usr/bin/env python
"""Volumes: slice consistency (noise correlated along the slice axis) and calibrated uncertainty.

    export MRIRECON_VDM_THREADS=1
    python benchmarks/volumes.py tune --work /tmp/vol          # val_person: rho sweep, K = 8
    python benchmarks/volumes.py test --work /tmp/vol --rho R  # test_coronal, test
    python benchmarks/volumes.py tables --work /tmp/vol [--write-calibration] \
        [--figure docs/figures/fig_slice_consistency.png]

4x super-resolution (centre crop 32 -> 128 of the HR k-space, noiseless), the shipped prior,
fast sampler at its defaults (50 steps, eta = 1, bf16), one torch thread, seed 0.

``tune`` (the validation person, consecutive axial slices ``--val-slices`` from the middle):
one call on all slices with rho = 0 and K = 8 samples (sample 0 is "one sample", samples 0-3
and 4-7 two means of 4), and one sample for each ``--rhos``.
``test``: 16 consecutive coronal slices of the ITK person (test_coronal), K = 4 at rho = 0 in
one call, and one sample with rho = ``--rho`` through ``reconstruct_volume`` (slices_per_run
8: the chain crosses a run boundary); 4 consecutive axial slices of the test person with K = 8.
``tables``: through-plane error gradient mean((dz xhat - dz x)^2), in-plane PSNR (data range
1, images in [0, 1]), coverage of |error| <= 1.96 std on the foreground (head) mask, the
calibration factor learned on val_person (95 % quantile of |error| / (1.96 std_raw)), the
correlation of std with |error|; prints Markdown tables, writes ``tables.json`` in ``--work``.
"""
import argparse
import json
import pathlib
import time

import numpy as np
import torch

MID_SLICES = {"val_person": 8, "test_coronal": 16, "test": 4}


def middle(x, n):
    a = x.shape[0] // 2 - n // 2
    return x[a:a + n], a


def measure(x):
    from mrirecon_vdm import CropFourier
    return CropFourier(x.shape, (x.shape[0], 32, 32))(x).astype(np.complex64)


def samples(x, prior, k, rho, seed=0):
    from mrirecon_vdm import CropFourier, GuidedVDMRecon
    y = measure(x)
    app = GuidedVDMRecon(y, CropFourier(x.shape, y.shape), prior, num_samples=k, seed=seed,
                         slice_correlation=rho, show_pbar=False)
    t = time.perf_counter()
    app.run()
    print(f"  K={k} rho={rho}: {time.perf_counter() - t:.0f} s", flush=True)
    return np.asarray(app.samples)


def tune(a, prior):
    from mrirecon_vdm.data import load_split
    x, first = middle(load_split("val_person"), a.val_slices)
    out = {"x": x, "first": first, "K8_rho0": samples(x, prior, 8, 0.0)}
    for r in a.rhos:
        out[f"K1_rho{r}"] = samples(x, prior, 1, r)
    np.savez(pathlib.Path(a.work) / "tune.npz", **out)


def test(a, prior):
    from mrirecon_vdm.data import load_split
    from mrirecon_vdm.volume import reconstruct_volume
    x, first = middle(load_split("test_coronal"), 16)
    out = {"x": x, "first": first, "K4_rho0": samples(x, prior, 4, 0.0)}
    t = time.perf_counter()
    v, _ = reconstruct_volume(measure(x), (128, 128), prior, seed=1, show_pbar=False,
                              slice_correlation=a.rho)
    print(f"  volume rho={a.rho}: {time.perf_counter() - t:.0f} s", flush=True)
    out[f"K1_rho{a.rho}"] = np.asarray(v)[None]
    np.savez(pathlib.Path(a.work) / "test_coronal.npz", **out)
    x, first = middle(load_split("test"), 4)
    np.savez(pathlib.Path(a.work) / "test.npz", x=x, first=first,
             K8_rho0=samples(x, prior, 8, 0.0))


def foreground(x):
    """Head mask per slice: truth above 5 % of the slice's maximum, holes filled, dilated
    by 2 pixels."""
    from scipy import ndimage
    m = x > 0.05 * x.max(axis=(-2, -1), keepdims=True)
    return np.stack([ndimage.binary_dilation(ndimage.binary_fill_holes(s), iterations=2)
                     for s in m])


def through_plane(xh, x):
    return float(np.mean((np.diff(xh, axis=0) - np.diff(x, axis=0)) ** 2))


def psnr(xh, x):
    return float(10 * np.log10(1.0 / np.mean((xh - x) ** 2)))


def zero_filled(x):
    from mrirecon_vdm import CropFourier
    y = measure(x)
    return np.asarray(CropFourier(x.shape, y.shape).H(y)).real.astype(np.float32)


def interval_stats(s, x, mask, factor=1.0):
    """Coverage of |mean − x| <= 1.96 factor std_raw on the mask, the corr of std with
    |error|, the max |error| and max std, the ratio |error| / (1.96 std_raw) on the mask."""
    m, sd = s.mean(0), s.std(0, ddof=1)
    err = np.abs(m - x)
    cov = float(np.mean(err[mask] <= 1.96 * factor * sd[mask]))
    corr = float(np.corrcoef(sd[mask], err[mask])[0, 1])
    ratio = err[mask] / np.maximum(1.96 * sd[mask], 1e-12)
    return dict(coverage=cov, corr=corr, max_err=float(err[mask].max()),
                max_std=float(factor * sd[mask].max())), ratio


def tables(a):
    w = pathlib.Path(a.work)
    res = {}
    tune = dict(np.load(w / "tune.npz"))
    x = tune["x"]
    rows = [("zero-filled", zero_filled(x)), ("one sample, rho 0", tune["K8_rho0"][0]),
            ("mean of 4, rho 0", tune["K8_rho0"][:4].mean(0))]
    rows += [(f"one sample, rho {k.split('rho')[1]}", tune[k][0]) for k in sorted(tune)
             if k.startswith("K1_rho")]
    print(f"\nval_person, axial slices {int(tune['first'])}..{int(tune['first']) + len(x) - 1}"
          f" (4x)\n\n| image | through-plane error gradient | in-plane PSNR (dB) |\n|---|---|---|")
    res["val_person"] = {}
    for name, xh in rows:
        res["val_person"][name] = dict(grad=through_plane(xh, x), psnr=psnr(xh, x))
        print(f"| {name} | {through_plane(xh, x):.5f} | {psnr(xh, x):.2f} |")
    # calibration on val_person: K = 4 (two disjoint groups of samples) and K = 8
    mask = foreground(x)
    s8 = tune["K8_rho0"]
    factors = {}
    print("\n| K | coverage of ±1.96 std_raw | factor c (95 %) | corr(std, |err|) | max |err| "
          "| max std_raw |\n|---|---|---|---|---|---|")
    res["calibration"] = {}
    for k, groups in ((4, [s8[:4], s8[4:]]), (8, [s8])):
        st = [interval_stats(g, x, mask) for g in groups]
        ratio = np.concatenate([r for _, r in st])
        c = float(np.quantile(ratio, 0.95))
        factors[k] = c
        cov = float(np.mean([d["coverage"] for d, _ in st]))
        corr = float(np.mean([d["corr"] for d, _ in st]))
        res["calibration"][k] = dict(coverage_raw=cov, factor=c, corr=corr,
                                     max_err=max(d["max_err"] for d, _ in st),
                                     max_std=max(d["max_std"] for d, _ in st))
        print(f"| {k} | {cov:.3f} | {c:.2f} | {corr:.2f} | "
              f"{res['calibration'][k]['max_err']:.3f} | {res['calibration'][k]['max_std']:.3f} |")
    if (w / "test_coronal.npz").exists():
        cor = dict(np.load(w / "test_coronal.npz"))
        x = cor["x"]
        rk = [k for k in cor if k.startswith("K1_rho")][0]
        rows = [("zero-filled", zero_filled(x)), ("one sample, rho 0", cor["K4_rho0"][0]),
                ("mean of 4, rho 0", cor["K4_rho0"].mean(0)),
                (f"one sample, rho {rk.split('rho')[1]} (reconstruct_volume, 2 runs)", cor[rk][0])]
        print(f"\ntest_coronal, slices {int(cor['first'])}..{int(cor['first']) + len(x) - 1} (4x)"
              f"\n\n| image | through-plane error gradient | in-plane PSNR (dB) |\n|---|---|---|")
        res["test_coronal"] = {}
        for name, xh in rows:
            res["test_coronal"][name] = dict(grad=through_plane(xh, x), psnr=psnr(xh, x))
            print(f"| {name} | {through_plane(xh, x):.5f} | {psnr(xh, x):.2f} |")
        if a.figure:
            figure(a.figure, x, rows, int(cor["first"]))
        tests = [("test_coronal", x, cor["K4_rho0"], [4])]
        if (w / "test.npz").exists():
            t = dict(np.load(w / "test.npz"))
            tests.append(("test", t["x"], t["K8_rho0"], [4, 8]))
        print("\n| person | K | coverage raw | coverage calibrated | corr(std, |err|) |"
              "\n|---|---|---|---|---|")
        res["held_out"] = {}
        for name, x, s, ks in tests:
            mask = foreground(x)
            for k in ks:
                groups = [s[i:i + k] for i in range(0, s.shape[0] - k + 1, k)]
                raw = [interval_stats(g, x, mask)[0] for g in groups]
                cal = [interval_stats(g, x, mask, factors[k])[0] for g in groups]
                r = dict(coverage_raw=float(np.mean([d["coverage"] for d in raw])),
                         coverage=float(np.mean([d["coverage"] for d in cal])),
                         corr=float(np.mean([d["corr"] for d in raw])))
                res["held_out"][f"{name}/K{k}"] = r
                print(f"| {name} | {k} | {r['coverage_raw']:.3f} | {r['coverage']:.3f} | "
                      f"{r['corr']:.2f} |")
    (w / "tables.json").write_text(json.dumps(res, indent=1) + "\n")
    if a.write_calibration:
        from mrirecon_vdm.calibration import TABLE_PATH
        from mrirecon_vdm.prior.pretrained import weights_sha256
        from mrirecon_vdm import load_pretrained
        table = {
            "about": "std = factor * std_raw (the spread of the K samples) so that "
                     "mean +- 1.96 std covers the truth on 95 % of the head pixels of the "
                     "validation person; learned by benchmarks/volumes.py (docs/results.md)",
            "prior_sha256": weights_sha256(load_pretrained()),
            "target_coverage": 0.95,
            "measured_on": f"val_person, axial slices {int(tune['first'])}.."
                           f"{int(tune['first']) + len(tune['x']) - 1}, head mask, 4x crop, "
                           f"fast sampler defaults (50 steps, eta 1)",
            "entries": [dict(method="fast/crop4x", num_samples=k, factor=round(c, 4),
                             coverage_raw=round(res["calibration"][k]["coverage_raw"], 4))
                        for k, c in factors.items()]}
        TABLE_PATH.write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {TABLE_PATH}")


def figure(path, x, rows, first):
    """Reformat (a cut across the slices, through the middle column): truth and each row."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    col = x.shape[-1] // 2
    panels = [("truth", x)] + [(n, xh) for n, xh in rows]
    fig, ax = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 3.2))
    for a, (n, v) in zip(ax, panels):
        a.imshow(v[:, :, col].T, cmap="gray", vmin=0, vmax=1, aspect=3.0,
                 interpolation="nearest")
        a.set_title(n.replace(" (reconstruct_volume, 2 runs)", ""), fontsize=8)
        a.axis("off")
    fig.suptitle(f"test_coronal slices {first}..{first + len(x) - 1} (3 mm apart), 4x: "
                 f"reformat through column {col}", fontsize=9)
    fig.tight_layout()
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=["tune", "test", "tables"])
    p.add_argument("--work", required=True)
    p.add_argument("--val-slices", type=int, default=8)
    p.add_argument("--rhos", type=float, nargs="+", default=[0.5, 0.9, 0.98])
    p.add_argument("--rho", type=float, default=None)
    p.add_argument("--write-calibration", action="store_true")
    p.add_argument("--figure", default=None)
    a = p.parse_args()
    pathlib.Path(a.work).mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if a.stage == "tables":
        return tables(a)
    from mrirecon_vdm import load_pretrained
    prior = load_pretrained()
    (tune if a.stage == "tune" else test)(a, prior)


if __name__ == "__main__":
    main()
