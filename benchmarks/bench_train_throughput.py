"""Training throughput of the VDM prior on this CPU, in image pixels per second.

Compares, side by side in one run, a full training step (augmentation, the variational
bound, backward, gradient clipping, AdamW, EMA) of the default 2.25 M-parameter U-Net:

* the baseline: float32 on full 128×128 images, NCHW;
* intermediate variants;
* the recipe of ``mrirecon_vdm/prior/configs/brain128.json``: bfloat16 autocast, random
  64×64 patches, channels-last.

Variants are timed in interleaved rounds (so a busy machine hurts all alike) and the
median step time is reported. Synthetic 128×128 images, so no data set is needed.

``--widths 32 48 64`` times the recipe instead at several U-Net widths (base channels), with
the parameter count and the size of the weights in float16: the capacity lever of
``docs/training.md`` ("Capacity: wider networks").

Usage::

    python benchmarks/bench_train_throughput.py [--rounds 3] [--batch-size 16] [--json FILE]
    python benchmarks/bench_train_throughput.py --widths 32 48 64 --threads 1
"""
import argparse
import json
import math
import platform
import statistics
import time

import numpy as np
import torch

from mrirecon_vdm.prior import VDM, VDMConfig
from mrirecon_vdm.prior.augment import AugmentConfig, augment_patches
from mrirecon_vdm.prior.training import _ema_update, _param_groups

VARIANTS = [
    # name, bf16, patch, channels_last, baseline
    ("fp32, full 128×128, NCHW (baseline)", False, 128, False, True),
    ("bf16, full 128×128, channels-last", True, 128, True, False),
    ("fp32, 64×64 patches, NCHW", False, 64, False, False),
    ("bf16, 64×64 patches, NCHW", True, 64, False, False),
    ("bf16 + 64×64 patches + channels-last (recipe)", True, 64, True, False),
]


def synthetic_images(n=32, size=128, seed=0):
    """(n, 1, size, size) smooth random 'heads': an ellipse with blobs, max 1."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    out = np.zeros((n, size, size), np.float32)
    for i in range(n):
        a, b = rng.uniform(0.3, 0.45, 2)
        img = ((xx / a) ** 2 + (yy / b) ** 2 < 1).astype(np.float32) * 0.5
        for _ in range(6):
            cx, cy = rng.uniform(-0.25, 0.25, 2)
            r = rng.uniform(0.02, 0.1)
            img += rng.uniform(0.1, 0.5) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        out[i] = img / img.max()
    return torch.from_numpy(out)[:, None]


class Runner:
    """One training set-up: model, EMA, optimiser, generators."""

    def __init__(self, bf16, patch, channels_last, batch_size, images, seed=0, width=None):
        torch.manual_seed(seed)
        cfg = VDMConfig() if width is None else VDMConfig(base_channels=width)
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = VDM(cfg).to(memory_format=self.fmt)
        self.model.compute_dtype = torch.bfloat16 if bf16 else None
        self.ema = VDM(cfg).to(memory_format=self.fmt).requires_grad_(False)
        self.ema.load_state_dict(self.model.state_dict())
        self.opt = torch.optim.AdamW(_param_groups(self.model, 0.01), lr=2e-4)
        self.patch, self.batch_size, self.images = patch, batch_size, images
        self.data_gen = torch.Generator().manual_seed(seed + 1)
        self.noise_gen = torch.Generator().manual_seed(seed + 2)
        self.aug = AugmentConfig()

    def step(self):
        idx = torch.randint(self.images.shape[0], (self.batch_size,), generator=self.data_gen)
        x = augment_patches(self.images[idx], self.patch, self.aug, self.data_gen)
        x = x.contiguous(memory_format=self.fmt)
        out = self.model.loss(x, generator=self.noise_gen)
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.net.parameters(), 1.0)
        self.opt.step()
        _ema_update(self.ema, self.model, 0.999)
        return float(out.loss.detach())


def run(rounds=3, batch_size=16, min_seconds=2.0, threads=0, widths=None):
    if threads:
        torch.set_num_threads(threads)
    images = synthetic_images()
    variants = VARIANTS
    if widths:
        variants = [(f"recipe, base {w} channels", True, 64, True, i == 0)
                    for i, w in enumerate(widths)]
        runners = [Runner(True, 64, True, batch_size, images, width=w) for w in widths]
    else:
        runners = [Runner(bf16, patch, cl, batch_size, images)
                   for _, bf16, patch, cl, _ in VARIANTS]
    for r in runners:                      # warm-up (allocations, oneDNN primitive caches)
        r.step()
    times = [[] for _ in runners]
    for _ in range(rounds):
        for i, r in enumerate(runners):
            n, t0 = 0, time.perf_counter()
            while True:
                loss = r.step()
                n += 1
                if not math.isfinite(loss):
                    raise RuntimeError(f"non-finite loss in {variants[i][0]}")
                if time.perf_counter() - t0 >= min_seconds:
                    break
            times[i].append((time.perf_counter() - t0) / n)
    rows = []
    base = None
    for (name, bf16, patch, cl, is_base), ts, r in zip(variants, times, runners):
        dt = statistics.median(ts)
        px = batch_size * patch * patch / dt
        if is_base:
            base = px
        rows.append({"variant": name, "bf16": bf16, "patch": patch, "channels_last": cl,
                     "batch_size": batch_size, "s_per_step": dt, "pixels_per_s": px,
                     "images_per_s": batch_size / dt,
                     "params": sum(q.numel() for q in r.model.parameters()),
                     "fp16_mb": sum(q.numel() for q in r.model.parameters()) * 2 / 1e6})
    for r in rows:
        r["speedup"] = r["pixels_per_s"] / base
    return {"rows": rows, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine(), "rounds": rounds}


def markdown(result):
    lines = [f"Training step of the VDM U-Net, batch "
             f"{result['rows'][0]['batch_size']}, torch {result['torch']}, "
             f"{result['threads']} threads (median of {result['rounds']} interleaved rounds)",
             "",
             "| variant | parameters | weights, fp16 (MB) | s / step | images / s | pixels / s "
             "| vs first |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['variant']} | {r['params'] / 1e6:.2f} M | {r['fp16_mb']:.1f} | "
                     f"{r['s_per_step']:.3f} | {r['images_per_s']:.1f} | "
                     f"{r['pixels_per_s']:,.0f} | {r['speedup']:.2f}× |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--min-seconds", type=float, default=2.0,
                   help="minimum timed seconds per variant and round")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--widths", type=int, nargs="*", default=None,
                   help="time the recipe at these U-Net base widths instead of the variants")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    result = run(args.rounds, args.batch_size, args.min_seconds, args.threads, args.widths)
    print(markdown(result))
    if args.json:
        from mrirecon_vdm._atomic import atomic_write_text
        atomic_write_text(args.json, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
