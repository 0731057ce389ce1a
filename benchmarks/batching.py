#!/usr/bin/env python
"""How many images per network call: the default ``batch_size`` of ``GuidedVDMRecon``.

    MRIRECON_VDM_THREADS=1 python benchmarks/batching.py --out docs/bench/batching/run2.json \
        [--sizes 1 2 4 8 16 32 64] [--threads 1 2] [--rounds 2] [--volume-slices 8]

Part 1 times one network call (shipped prior, bf16 autocast as in the sampler where the CPU
has fast bfloat16 kernels, float32 otherwise, 128 × 128)
at each batch size and torch thread count, the variants interleaved round by round (the
machine is shared, so only ratios measured side by side mean anything). Part 2 times a whole
reconstruction at the default settings: one slice alone against ``--volume-slices``
consecutive slices of the validation person through ``reconstruct_volume`` (one sample; at
the default batch size and with ``batch_size="all"``, every image of a run in one call),
alternating.
Prints Markdown tables and writes every number to ``--out`` (JSON).
"""
import argparse
import json
import pathlib
import time

import numpy as np
import torch

from mrirecon_vdm.precision import fast_bf16


def network_table(prior, sizes, threads, rounds):
    t = {}
    for r in range(rounds):
        for nt in threads:
            torch.set_num_threads(nt)
            for bs in sizes:
                z = torch.randn(bs, 1, 128, 128, generator=torch.Generator().manual_seed(bs))
                tt = torch.full((bs,), 0.5)
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                            enabled=fast_bf16("cpu")):
                    if r == 0:
                        prior.predict_eps(z[:1], tt[:1])      # warm-up of this shape path
                    start = time.perf_counter()
                    prior.predict_eps(z, tt)
                    dt = time.perf_counter() - start
                t.setdefault((nt, bs), []).append(dt / bs)
                print(f"round {r} threads {nt} batch {bs}: {dt / bs:.3f} s/image", flush=True)
    return {f"{nt}/{bs}": v for (nt, bs), v in t.items()}


def volume_table(prior, n_slices, rounds):
    from mrirecon_vdm import CropFourier, GuidedVDMRecon
    from mrirecon_vdm.data import load_split
    from mrirecon_vdm.volume import reconstruct_volume
    torch.set_num_threads(1)
    x = load_split("val_person")
    mid = x.shape[0] // 2
    x = x[mid - n_slices // 2: mid - n_slices // 2 + n_slices]
    y = CropFourier(x.shape, (n_slices, 32, 32))(x).astype(np.complex64)   # 4x
    out = {"single": [], "volume": [], "volume_all": []}
    for r in range(rounds):
        start = time.perf_counter()
        GuidedVDMRecon(y[0], CropFourier((128, 128), (32, 32)), prior, seed=r,
                       show_pbar=False).run()
        out["single"].append(time.perf_counter() - start)
        start = time.perf_counter()
        reconstruct_volume(y, (128, 128), prior, seed=r, show_pbar=False)
        out["volume"].append((time.perf_counter() - start) / n_slices)
        start = time.perf_counter()          # every image of a run in one call
        reconstruct_volume(y, (128, 128), prior, seed=r, show_pbar=False, batch_size="all")
        out["volume_all"].append((time.perf_counter() - start) / n_slices)
        print(f"round {r}: single {out['single'][-1]:.1f} s, volume "
              f"{out['volume'][-1]:.1f} s/slice, volume with batch_size='all' "
              f"{out['volume_all'][-1]:.1f} s/slice", flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--volume-slices", type=int, default=8)
    p.add_argument("--volume-rounds", type=int, default=2)
    a = p.parse_args()
    from mrirecon_vdm import load_pretrained
    prior = load_pretrained()
    res = {"args": vars(a)}
    net = network_table(prior, a.sizes, a.threads, a.rounds)
    res["network_s_per_image"] = net
    print("\n| threads | " + " | ".join(f"batch {b}" for b in a.sizes) + " |")
    print("|---|" + "---|" * len(a.sizes))
    ref = np.median(net[f"1/1"])
    for nt in a.threads:
        cells = [f"{np.median(net[f'{nt}/{b}']):.3f} s ({np.median(net[f'{nt}/{b}']) / ref:.2f})"
                 for b in a.sizes]
        print(f"| {nt} | " + " | ".join(cells) + " |")
    if a.volume_slices > 0:
        vol = volume_table(prior, a.volume_slices, a.volume_rounds)
        res["recon_s_per_slice"] = vol
        s, v = np.median(vol["single"]), np.median(vol["volume"])
        va = np.median(vol["volume_all"])
        print(f"\nsingle slice {s:.1f} s, volume of {a.volume_slices} {v:.1f} s/slice "
              f"(ratio {v / s:.2f}), with batch_size='all' {va:.1f} s/slice "
              f"(ratio {va / s:.2f})")
    pathlib.Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(a.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
