#!/usr/bin/env python
"""Volumes: slice consistency (noise correlated along the slice axis) and calibrated uncertainty.

    export MRIRECON_VDM_THREADS=1
    python benchmarks/volumes.py tune --work results/volumes          # val_person: rho sweep, K = 8
    python benchmarks/volumes.py test --work results/volumes --rho R  # test_coronal, test
    python benchmarks/volumes.py tables --work results/volumes [--write-calibration] \
        [--figure docs/figures/fig_slice_consistency.png]

4x super-resolution (centre crop 32 -> 128 of the HR k-space, noiseless), the shipped prior,
fast sampler at its defaults (50 steps, fresh renoising, bf16; ``--renoise ddim``: DDIM
renoising with eta = 1), one torch thread, seed 0.
``--write-calibration`` replaces the shipped table's entries of this renoising
(``fast/crop4x`` for DDIM, ``fast-fresh/crop4x`` for fresh) and keeps the others.

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
#: The renoising of every run (``--renoise``; None: the sampler's default).
RENOISE = [None]


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
                         slice_correlation=rho, show_pbar=False, renoise=RENOISE[0])
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
    out = {"x": x, "first": first, "K4_rho0": samples(x, prior, 4, 0.0),
           f"K4_rho{a.rho}": samples(x, prior, 4, a.rho)}
    t = time.perf_counter()
    v, _ = reconstruct_volume(measure(x), (128, 128), prior, seed=1, show_pbar=False,
                              slice_correlation=a.rho, renoise=RENOISE[0])
    print(f"  volume rho={a.rho}: {time.perf_counter() - t:.0f} s", flush=True)
    out[f"V1_rho{a.rho}"] = np.asarray(v)[None]
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


def metric_rows(x, d):
    """(name, through-plane gradient, PSNR, image) rows for the arrays of one npz."""
    rows = [("zero-filled", zero_filled(x))]
    for key in sorted(d):
        if not key[:2] in ("K1", "K4", "K8", "V1"):
            continue
        s, rho = d[key], key.split("rho")[1]
        where = " (reconstruct_volume, 2 runs of 8)" if key.startswith("V1") else ""
        rows.append((f"one sample, rho {rho}{where}", s[0]))
        if s.shape[0] >= 4:
            rows.append((f"mean of 4, rho {rho}", s[:4].mean(0)))
    return rows


def spread_rows(x, d):
    """Mean ± sd over the individual samples of each multi-sample key."""
    out = []
    for key in sorted(d):
        s = d[key] if key[:1] in "KV" else None
        if s is None or s.shape[0] < 2:
            continue
        g = [through_plane(v, x) for v in s]
        p = [psnr(v, x) for v in s]
        out.append((f"one sample, rho {key.split('rho')[1]}: mean ± sd over {len(s)} samples",
                    f"{np.mean(g):.5f} ± {np.std(g, ddof=1):.5f}",
                    f"{np.mean(p):.2f} ± {np.std(p, ddof=1):.2f}"))
    return out


def print_metrics(title, x, d, res):
    print(f"\n{title}\n\n| image | through-plane error gradient | in-plane PSNR (dB) |"
          f"\n|---|---|---|")
    rows = metric_rows(x, d)
    for name, xh in rows:
        res[name] = dict(grad=through_plane(xh, x), psnr=psnr(xh, x))
        print(f"| {name} | {res[name]['grad']:.5f} | {res[name]['psnr']:.2f} |")
    for name, g, p in spread_rows(x, d):
        res[name] = dict(grad=g, psnr=p)
        print(f"| {name} | {g} | {p} |")
    return rows


def tables(a):
    w = pathlib.Path(a.work)
    res = {"val_person": {}, "test_coronal": {}}
    tune = dict(np.load(w / "tune.npz"))
    x = tune["x"]
    f0 = int(tune["first"])
    print_metrics(f"val_person, axial slices {f0}..{f0 + len(x) - 1} (4x)", x, tune,
                  res["val_person"])
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
    tests = []
    if (w / "test_coronal.npz").exists():
        cor = dict(np.load(w / "test_coronal.npz"))
        x = cor["x"]
        f0 = int(cor["first"])
        rows = print_metrics(f"test_coronal, slices {f0}..{f0 + len(x) - 1} (4x)", x, cor,
                             res["test_coronal"])
        if a.figure:
            keep = [r for r in rows if r[0].startswith(("one sample, rho 0", "mean of 4, rho 0"))
                    and "reconstruct_volume" not in r[0]]
            figure(a.figure, x, [rows[0]] + keep, f0)
        for key in sorted(cor):
            if key.startswith("K4"):
                tests.append((f"test_coronal (rho {key.split('rho')[1]})", x, cor[key], [4]))
    if (w / "test.npz").exists():
        t = dict(np.load(w / "test.npz"))
        tests.append(("test", t["x"], t["K8_rho0"], [4, 8]))
    if tests:
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
        from mrirecon_vdm.alg import DEFAULT_RENOISE
        from mrirecon_vdm.calibration import load_table, sampler_key
        renoise = RENOISE[0] or DEFAULT_RENOISE
        method = f"{sampler_key('fast', renoise)}/crop4x"
        sha = weights_sha256(load_pretrained())
        old = load_table()
        kept = [e for e in old.get("entries", []) if e["method"] != method] \
            if old.get("prior_sha256") == sha else []
        for e in kept:      # a table may say it once for all entries
            e.setdefault("measured_on", old.get("measured_on"))
        measured_on = (f"val_person, axial slices {int(tune['first'])}.."
                       f"{int(tune['first']) + len(tune['x']) - 1}, head mask, 4x crop, "
                       f"fast sampler defaults (50 steps), {renoise} renoising"
                       + (" (eta 1)" if renoise == "ddim" else ""))
        table = {
            "about": "std = factor * std_raw (the spread of the K samples) so that "
                     "mean +- 1.96 std covers the truth on 95 % of the head pixels of the "
                     "validation person; learned by benchmarks/volumes.py (docs/results.md); "
                     "method 'fast' is the fast sampler with DDIM renoising, 'fast-fresh' "
                     "with fresh renoising",
            "prior_sha256": sha,
            "target_coverage": 0.95,
            "entries": kept + [dict(method=method, num_samples=k, factor=round(c, 4),
                                    coverage_raw=round(res["calibration"][k]["coverage_raw"], 4),
                                    measured_on=measured_on)
                               for k, c in factors.items()]}
        from mrirecon_vdm._atomic import atomic_write_text
        atomic_write_text(TABLE_PATH, json.dumps(table, indent=1) + "\n")
        print(f"wrote {TABLE_PATH}")


def figure(path, x, rows, first, row=None):
    """Reformats across the slices (slice index down, one image row across): the truth and
    each of ``rows``, with the through-plane error gradient in the titles; 2 mm pixels, 3 mm
    slices drawn to scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    row = x.shape[-2] // 2 if row is None else row
    panels = [("truth", x)] + [(n, xh) for n, xh in rows]
    fig, ax = plt.subplots(len(panels), 1, figsize=(6.4, 1.05 * len(panels) + 0.4))
    for a, (n, v) in zip(ax, panels):
        a.imshow(v[:, row, :], cmap="gray", vmin=0, vmax=1, aspect=1.5,
                 interpolation="nearest")
        t = n if n == "truth" else f"{n}: through-plane error gradient {through_plane(v, x):.5f}"
        a.set_title(t, fontsize=7)
        a.axis("off")
    fig.suptitle(f"test_coronal slices {first}..{first + len(x) - 1} (3 mm apart, slice down), "
                 f"image row {row}, 4x", fontsize=8)
    fig.tight_layout()
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=["tune", "test", "tables"])
    p.add_argument("--work", required=True)
    p.add_argument("--val-slices", type=int, default=8)
    p.add_argument("--rhos", type=float, nargs="+", default=[0.5, 0.9, 0.98])
    p.add_argument("--rho", type=float, default=None)
    p.add_argument("--write-calibration", action="store_true")
    p.add_argument("--figure", default=None)
    p.add_argument("--renoise", default=None, choices=["fresh", "ddim"],
                   help="the fast sampler's renoising (default: its default, fresh)")
    a = p.parse_args()
    RENOISE[0] = a.renoise
    pathlib.Path(a.work).mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if a.stage == "tables":
        return tables(a)
    from mrirecon_vdm import load_pretrained
    prior = load_pretrained()
    (tune if a.stage == "tune" else test)(a, prior)


if __name__ == "__main__":
    main()
