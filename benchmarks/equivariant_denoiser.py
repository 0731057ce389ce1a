#!/usr/bin/env python
"""The benchmark with a stochastically equivariant denoiser: a test-time lever for the prior.

At every network call each state is flipped left-right (probability 1/2, ``EQ_MODE`` with
``flip``) and/or circularly shifted by 0–7 pixels per axis (``shift``; ``EQ_SHIFT``) before
the prior sees it, and ε̂ is transformed back (the training used left-right flips; the
U-Net's three downsamplings make it equivariant to shifts of 8 only). Averaged over the
steps and the samples this is the group-averaged denoiser of equivariant plug-and-play, at
no extra cost. The transform is drawn from a hash of the state, so runs are reproducible.
All other arguments go to ``mrirecon-vdm bench``:

    EQ_MODE=shift MRIRECON_VDM_THREADS=1 python benchmarks/equivariant_denoiser.py \\
        --split val_person --stride 8 --scales 4 --methods vdm-mean4 --out OUT --resume

Result (``docs/bench/generalise/equivariant_denoiser_val.json``): +0.008 dB
(flip) and +0.016 dB (shift) over the plain denoiser on five ``val_person`` slices at 4×:
not a lever.
"""
import hashlib
import os
import pathlib
import sys

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import torch

MODE = os.environ.get("EQ_MODE", "flip")
SHIFT = int(os.environ.get("EQ_SHIFT", "8"))


class EquivariantPrior(torch.nn.Module):
    """The prior protocol around ``prior``, with a random flip / shift per image and call."""

    def __init__(self, prior):
        super().__init__()
        self.prior = prior
        self.image_channels = prior.image_channels
        self.downsample_factor = prior.downsample_factor

    def gamma(self, t):
        return self.prior.gamma(t)

    def predict_eps(self, z, t):
        digest = hashlib.sha256(z[:, :, :4, :].float().cpu().numpy().tobytes()).digest()
        g = torch.Generator().manual_seed(int.from_bytes(digest[:4], "little"))
        params, zs = [], []
        for i in range(z.shape[0]):
            zi = z[i:i + 1]
            flip = "flip" in MODE and bool(torch.randint(2, (1,), generator=g))
            dy = dx = 0
            if "shift" in MODE:
                dy, dx = (int(v) for v in torch.randint(SHIFT, (2,), generator=g))
            if flip:
                zi = zi.flip(-1)
            zs.append(torch.roll(zi, (dy, dx), (-2, -1)))
            params.append((flip, dy, dx))
        eps = self.prior.predict_eps(torch.cat(zs), t)
        out = []
        for i, (flip, dy, dx) in enumerate(params):
            e = torch.roll(eps[i:i + 1], (-dy, -dx), (-2, -1))
            out.append(e.flip(-1) if flip else e)
        return torch.cat(out)


def main(argv=None):
    import mrirecon_vdm.bench.vdm_methods as vm
    from mrirecon_vdm._cli.bench import main as bench_main
    from mrirecon_vdm.prior.pretrained import load_pretrained

    vm.set_prior(EquivariantPrior(load_pretrained(path=os.environ.get(vm.PRIOR_ENV) or None)))
    return bench_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
