"""Training of the VDM prior: random augmented patches, AdamW, EMA, bf16 autocast,
atomic checkpoints with exact resume, validation bound, sample grids, optional
multi-process data parallelism (``torchrun``).

Outputs in ``config.out_dir``:

* ``config.json``       the training configuration;
* ``checkpoint.pt``     the latest checkpoint (atomic; ``ckpt_<step>.pt`` copies every
                        ``keep_every`` steps if asked);
* ``metrics.csv``       one row per step: step, loss_bpd (the bound being minimised, in
                        bits/dim), its three terms, γ(0), γ(1), gradient norm, lr, images
                        seen, wall time;
* ``val.csv``           the validation bound (EMA weights, fixed seed and t-grid);
* ``samples_<step>.png`` unconditional samples from the EMA weights.

References:
    Kingma, D. P., Salimans, T., Poole, B., Ho, J. (2021). Variational Diffusion Models.
    Advances in Neural Information Processing Systems 34 (NeurIPS 2021), 21696–21707.
    arXiv:2107.00630.
"""
import contextlib
import copy
import csv
import dataclasses
import io
import json
import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist

from .augment import AugmentConfig, augment_patches
from .checkpoint import (CHECKPOINT_NAME, FORMAT_VERSION, atomic_write_bytes, latest_checkpoint,
                         load_checkpoint, save_checkpoint)
from .data import BatchSampler, load_images
from .vdm import VDM, VDMConfig

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged", "train", "evaluate_bound"]

#: The lock file that keeps a second run out of a training folder (:mod:`mrirecon_vdm._lock`).
LOCK_NAME = "train.lock"


class TrainingDiverged(RuntimeError):
    """The loss or a gradient (checked at every step, before the update), the weights
    (checked before every checkpoint) or the validation bound became NaN/Inf: training
    stopped without applying or saving that step, and the last checkpoint on disk (written
    before) is kept."""

METRIC_FIELDS = ("step", "loss_bpd", "recon_bpd", "prior_bpd", "diff_bpd", "gamma_0",
                 "gamma_1", "grad_norm", "lr", "images_seen", "wall_time_s")
VAL_FIELDS = ("step", "val_bpd", "val_recon_bpd", "val_prior_bpd", "val_diff_bpd",
              "wall_time_s")


@dataclass
class TrainConfig:
    """Everything a training run needs. JSON-serialisable (``to_dict``/``from_dict``,
    ``load``/``save``).

    Attributes:
        data: training data file (HDF5 with ``train/images``, ``val/images``; or .npz/.npy);
            empty means the default data set of :mod:`mrirecon_vdm.data`
            (``default_dataset_path()``, built by ``mrirecon-vdm data``).
        val_data: optional separate validation file.
        out_dir: output folder (checkpoints, logs, sample grids).
        model: the :class:`VDMConfig`.
        augment: the :class:`AugmentConfig`.
        steps: total optimiser steps (a resumed run continues up to this number).
        batch_size: images per step *per process*.
        patch_size: side of the random square training patches (multiple of the model's
            downsample_factor, at most the image size).
        lr, warmup_steps, weight_decay, adam_betas, adam_eps: AdamW with linear warm-up then
            constant learning rate (weight decay on conv/linear weights only).
        lr_decay_steps, lr_min: the last ``lr_decay_steps`` steps (0 = none) follow a cosine
            from ``lr`` down to ``lr_min`` (see :func:`learning_rate`); set on a resumed
            run to anneal a run that was trained at constant ``lr``.
        grad_clip: max gradient norm (network and schedule clipped separately); 0 = off.
        ema_decay: EMA decay of the weights (warm-up min(decay, (1+n)/(10+n))).
        bf16: run the network under bfloat16 autocast where the device runs it fast
            (:func:`mrirecon_vdm.precision.fast_bf16`; float32 on an AVX2-only CPU, where
            bfloat16 convolutions are about 100x slower).
        channels_last: channels-last memory format for weights and activations.
        seed: model initialisation and data seeds (each process gets its own data stream).
        val_fraction: held-out fraction when the data file has no validation split.
        val_every, val_num_images, val_num_t, val_batch_size, val_seed: validation bound
            every ``val_every`` steps (0 = never) on the first ``val_num_images``
            validation images at full size, at the midpoints of a ``val_num_t``-point grid
            in t, noise from ``val_seed``.
        sample_every, sample_num, sample_steps, sample_size, sample_seed: a PNG grid of
            unconditional samples (0 = never); ``sample_size`` 0 means the image size.
        save_every: checkpoint every this many steps; save_every_seconds: and at least this
            often in wall time; keep_every: also keep a copy every this many steps (0 = no).
        num_threads: torch CPU threads (0 = torch's default, or cores / processes).
        progress: show a tqdm progress bar (rank 0).
        init: fine-tune: start the network, its schedule and the EMA from an exported prior
            (a folder or ``prior.safetensors`` written by ``export_pretrained``, e.g. the
            shipped ``mrirecon_vdm/prior/weights``) instead of a random initialisation; the
            optimiser and the step count start afresh. Its model config must equal
            ``model``. Ignored when a checkpoint is resumed (the checkpoint has the weights).
    """
    data: str = ""
    val_data: Optional[str] = None
    out_dir: str = "results/prior"
    model: VDMConfig = field(default_factory=VDMConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    steps: int = 10000
    batch_size: int = 16
    patch_size: int = 64
    lr: float = 2e-4
    warmup_steps: int = 200
    lr_decay_steps: int = 0
    lr_min: float = 0.0
    weight_decay: float = 0.01
    adam_betas: Tuple[float, float] = (0.9, 0.99)
    adam_eps: float = 1e-8
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    bf16: bool = True
    channels_last: bool = True
    seed: int = 0
    val_fraction: float = 0.05
    val_every: int = 1000
    val_num_images: int = 32
    val_num_t: int = 8
    val_batch_size: int = 8
    val_seed: int = 1234
    sample_every: int = 2000
    sample_num: int = 4
    sample_steps: int = 100
    sample_size: int = 0
    sample_seed: int = 4321
    save_every: int = 250
    save_every_seconds: float = 600.0
    keep_every: int = 0
    num_threads: int = 0
    progress: bool = True
    init: str = ""

    def __post_init__(self):
        from .._checks import check_fields, check_seed
        self.model = VDMConfig.from_dict(self.model)
        self.augment = AugmentConfig.from_dict(self.augment)
        check_fields(self)         # "steps": "ten" -> TrainConfig.steps: expected an integer
        for name in ("seed", "val_seed", "sample_seed"):
            check_seed(f"TrainConfig.{name}", getattr(self, name), allow_none=False)
        positive = ("batch_size", "patch_size", "val_num_t", "val_batch_size", "sample_steps")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name}: expected a positive integer, got "
                                 f"{getattr(self, name)!r}")
        nonneg = ("steps", "warmup_steps", "lr_decay_steps", "val_every", "val_num_images",
                  "sample_every", "sample_num", "sample_size", "save_every", "keep_every", "num_threads")
        for name in nonneg:
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TrainConfig.{name}: expected an integer >= 0, got "
                                 f"{getattr(self, name)!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig.lr: expected a finite number > 0, got {self.lr}")
        if not 0.0 <= self.lr_min <= self.lr:
            raise ValueError(f"TrainConfig.lr_min: expected in [0, lr={self.lr}], "
                             f"got {self.lr_min}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"TrainConfig.ema_decay: expected in [0, 1), got {self.ema_decay}")
        f = self.model.downsample_factor
        if self.patch_size % f:
            raise ValueError(f"TrainConfig.patch_size: expected a multiple of the model's "
                             f"downsample_factor={f}, got {self.patch_size}")
        if self.sample_size % f:
            raise ValueError(f"TrainConfig.sample_size: expected a multiple of the model's "
                             f"downsample_factor={f} (or 0), got {self.sample_size}")

    def to_dict(self):
        d = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if hasattr(v, "to_dict"):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            d[f.name] = v
        return d

    @classmethod
    def from_dict(cls, d):
        """From a dict (as in a JSON file); unknown keys raise ``ValueError``."""
        if isinstance(d, cls):
            return d
        if not isinstance(d, dict):
            raise ValueError(f"TrainConfig: expected a dict (a JSON object) of settings, got "
                             f"{type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"TrainConfig: unknown keys {unknown}; allowed: {sorted(names)}")
        return cls(**d)

    @classmethod
    def load(cls, path):
        """Read a JSON configuration file."""
        with open(path) as f:
            try:
                d = json.load(f)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ValueError(f"training config {path!r} is not valid JSON: {e}") from None
        try:
            return cls.from_dict(d)
        except ValueError as e:
            raise ValueError(f"training config {path!r}: {e}") from None

    def save(self, path):
        atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        step: the last completed step.
        checkpoint: path of the last checkpoint written (None if none).
        out_dir: the output folder.
        val_bpd: the last validation bound in bits/dim (None if never evaluated).
        interrupted: True if stopped by SIGTERM/SIGINT before ``config.steps``.
        model: the trained :class:`VDM` (this process's replica).
        ema: its EMA copy (the weights to export).
    """
    step: int
    checkpoint: Optional[str]
    out_dir: str
    val_bpd: Optional[float]
    interrupted: bool
    model: Optional[VDM] = field(default=None, repr=False)
    ema: Optional[VDM] = field(default=None, repr=False)


# --------------------------------------------------------------------------- helpers
def learning_rate(config, step):
    """Learning rate of optimiser step ``step`` (1-based).

    Linear warm-up over ``warmup_steps``, then ``lr``; over the last ``lr_decay_steps``
    steps before ``steps`` a half cosine from ``lr`` to ``lr_min`` (reached at ``steps``).
    """
    lr = config.lr
    if config.warmup_steps:
        lr *= min(1.0, step / config.warmup_steps)
    start = config.steps - config.lr_decay_steps
    if config.lr_decay_steps and step > start:
        frac = min(1.0, (step - start) / config.lr_decay_steps)
        cos = config.lr_min + 0.5 * (config.lr - config.lr_min) * (1.0 + math.cos(math.pi * frac))
        lr = min(lr, cos)
    return lr


def _seed_for(*keys):
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def _param_groups(model, weight_decay):
    decay, no_decay, sched = [], [], []
    for name, p in model.named_parameters():
        if name.startswith("schedule."):
            sched.append(p)
        elif p.ndim >= 2:
            decay.append(p)
        else:
            no_decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if sched:
        groups.append({"params": sched, "weight_decay": 0.0})
    return groups


@torch.no_grad()
def _ema_update(ema, model, decay):
    ep = [p for p in ema.parameters()]
    mp = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ep, mp, 1.0 - decay)
    for eb, mb in zip(ema.buffers(), model.buffers()):
        eb.copy_(mb)


@torch.no_grad()
def evaluate_bound(model, images, num_t=8, batch_size=8, seed=1234):
    """Variational bound in bits/dim on fixed images, a fixed t-grid and fixed noise.

    Every image is evaluated at the ``num_t`` midpoints t_k = (k + ½)/num_t (a midpoint
    rule for the diffusion integral), with noise from a generator seeded with ``seed``,
    so that numbers from different steps and runs are comparable.

    Args:
        model (VDM): the model (its ``compute_dtype`` is used).
        images (torch.Tensor): (M, C, H, W) on the model's device.
        num_t (int): points of the t-grid.
        batch_size (int): images × times per forward pass.
        seed (int): noise seed.

    Returns:
        dict: ``bpd``, ``recon_bpd``, ``prior_bpd``, ``diff_bpd`` (floats).
    """
    device = images.device
    gen = torch.Generator(device=device).manual_seed(int(seed))
    m = images.shape[0]
    tk = (torch.arange(num_t, device=device, dtype=torch.float32) + 0.5) / num_t
    xs = images.repeat_interleave(num_t, dim=0)
    ts = tk.repeat(m)
    dim = images[0].numel() * math.log(2.0)
    tot = {"bpd": 0.0, "recon_bpd": 0.0, "prior_bpd": 0.0, "diff_bpd": 0.0}
    n = xs.shape[0]
    for i in range(0, n, batch_size):
        x = xs[i:i + batch_size]
        eps = torch.randn(x.shape, generator=gen, device=device)
        out = model.loss(x, generator=gen, t=ts[i:i + batch_size], eps=eps)
        tot["bpd"] += float(out.bpd.sum())
        tot["recon_bpd"] += float(out.loss_recon.sum()) / dim
        tot["prior_bpd"] += float(out.loss_prior.sum()) / dim
        tot["diff_bpd"] += float(out.loss_diff.sum()) / dim
    return {k: v / n for k, v in tot.items()}


def _save_sample_grid(path, x):
    """Save (B, 1, H, W) samples side by side as a grey PNG (clipped to [0, 1])."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    imgs = x[:, 0].float().clamp(0, 1).cpu().numpy()
    row = np.concatenate(list(imgs), axis=1)
    buf = io.BytesIO()
    plt.imsave(buf, row, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    atomic_write_bytes(path, buf.getvalue())


class _CSVLog:
    """Append-only CSV; on resume, rows after the checkpoint's step are dropped."""

    def __init__(self, path, fields, keep_until_step=None):
        self.path, self.fields = path, fields
        rows = []
        if keep_until_step is not None and os.path.exists(path):
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f)
                        if r.get("step", "").isdigit() and int(r["step"]) <= keep_until_step]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
        atomic_write_bytes(path, buf.getvalue().encode())
        self.f = open(path, "a", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=fields)

    def write(self, row):
        self.w.writerow(row)
        self.f.flush()

    def close(self):
        self.f.close()


class _StopFlag:
    """SIGTERM/SIGINT set a flag checked after each step; a second SIGINT interrupts."""

    def __init__(self):
        self.stop = False
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def _default_data_path():
    """The data set built by ``mrirecon-vdm data`` (``mrirecon_vdm.data``), if any."""
    try:
        from mrirecon_vdm.data import default_dataset_path
    except ImportError as e:
        raise ValueError(f"TrainConfig.data: expected the path of a training data file, got "
                         f"'' and the default data set is unavailable ({e})") from None
    path = str(default_dataset_path())
    if not os.path.exists(path):
        raise FileNotFoundError(f"TrainConfig.data is empty and the default data set {path} "
                                f"does not exist; build it with `mrirecon-vdm data` or pass "
                                f"--data FILE")
    return path


def _setup_distributed():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 1, 0, 0, False
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    created = False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
        created = True
    return dist.get_world_size(), dist.get_rank(), local_rank, created


def _rng_state(data_gen, noise_gen):
    return {"data": data_gen.get_state(), "noise": noise_gen.get_state()}


# --------------------------------------------------------------------------- train
def train(config, resume=False):
    """Train the VDM prior.

    Runs under ``torchrun`` as well: each process then trains on its own data stream
    (seeded with its rank) and ``DistributedDataParallel`` averages gradients (backend gloo
    on CPU, nccl on CUDA, device ``cuda:LOCAL_RANK`` when available); only rank 0 writes
    files.

    Stops after ``config.steps`` steps, or after the current step on SIGTERM / Ctrl-C
    (checkpoint written first). A run resumed from a checkpoint reproduces the loss
    sequence of an uninterrupted one exactly (same machine, same number of processes).

    Args:
        config (TrainConfig or dict): the configuration.
        resume (bool): continue from ``out_dir/checkpoint.pt`` if it exists (start afresh
            if not). Without it an existing checkpoint in ``out_dir`` is an error.

    Returns:
        TrainResult: last step, checkpoint path, last validation bound, interrupted flag.

    Raises:
        FileNotFoundError: missing data file.
        ValueError: bad data (rank, size vs. patch and downsample factor, non-finite,
            empty), a bad configuration, a checkpoint for another model.
        RuntimeError: a truncated or corrupted checkpoint.
    """
    config = TrainConfig.from_dict(config)
    if not config.data:
        config = config.replace(data=_default_data_path())
    world, rank, local_rank, created_pg = _setup_distributed()
    try:
        with _out_dir_lock(config.out_dir, rank == 0):
            return _train(config, resume, world, rank, local_rank)
    finally:
        if created_pg and dist.is_initialized():
            dist.destroy_process_group()


@contextlib.contextmanager
def _out_dir_lock(out_dir, is_main):
    """Rank 0 holds ``out_dir/train.lock`` for the run: a second run into the same folder
    (``--resume`` or not) is refused (:class:`mrirecon_vdm._lock.OutputLocked`). A folder
    made here and left empty (the run failed its checks) is removed again."""
    if not is_main:
        yield
        return
    from .._checks import check_output_path
    from .._lock import exclusive_lock
    check_output_path("TrainConfig.out_dir", out_dir, folder=True)
    made = not os.path.exists(out_dir)
    try:
        with exclusive_lock(os.path.join(out_dir, LOCK_NAME), f"training folder {out_dir!r}",
                            hint="wait for that run to finish (or stop it) or choose "
                                 "another --out"):
            yield
    finally:
        if made:
            try:
                os.rmdir(out_dir)          # only when empty
            except OSError:
                pass


def _all_finite(tensors):
    """True when every tensor holds only finite values (one device sync)."""
    flags = [torch.isfinite(t).all() for t in tensors]
    return bool(torch.stack(flags).all()) if flags else True


def _diverged(step, lr, what, good):
    """Raise :class:`TrainingDiverged`; ``good``: the last checkpoint written and its step."""
    kept = (f"the last good checkpoint {good['ckpt']} (step {good['step']}) is kept (resume "
            f"from it with a lower --lr)" if good["ckpt"] else
            "no checkpoint had been written yet")
    raise TrainingDiverged(f"training diverged at step {step}: {what} (lr {lr:g}); stopped "
                           f"without saving this step; {kept}")


def _check_finite_step(step, lr, loss, grad_norm, sched_norm, world, good):
    """:class:`TrainingDiverged` when the loss or a gradient norm is NaN/Inf (on any
    process: the flag is reduced so that every process stops at the same step)."""
    vals = torch.stack([loss.float(), grad_norm.float().to(loss.device),
                        sched_norm.float().to(loss.device)])
    bad = (~torch.isfinite(vals)).any().float()
    if world > 1:
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    if bool(bad):
        v = [float(a) for a in vals]
        what = ("the loss is " + repr(v[0]) if not math.isfinite(v[0]) else
                f"the gradient norm is {v[1] if not math.isfinite(v[1]) else v[2]!r}")
        if world > 1 and all(math.isfinite(a) for a in v):
            what = "another process got a NaN/Inf loss or gradient"
        _diverged(step, lr, what, good)


def _init_state(path, model_config):
    """The state dict of the exported prior at ``path`` (``TrainConfig.init``), checked
    against the run's model config, and whether it is the same network without the run's
    ``extra_res_blocks`` (then it is loaded with ``UNet.load_shallower``)."""
    from .._checks import differing_keys
    from .pretrained import load_pretrained

    prior = load_pretrained(path=path)
    theirs, ours = prior.config.to_dict(), model_config.to_dict()
    diff = differing_keys(theirs, ours)
    deepen = diff == ["extra_res_blocks"] and not any(theirs["extra_res_blocks"])
    if diff and not deepen:
        raise ValueError(f"TrainConfig.init: the prior at {str(path)!r} has another model "
                         f"config than this run (differs in {', '.join(diff)}: prior "
                         f"{[theirs.get(k) for k in diff]}, run {[ours.get(k) for k in diff]}; "
                         f"only extra_res_blocks may differ, from none to some)")
    return prior.state_dict(), deepen


def _load_init(model, state, deepen):
    """Start ``model`` (a VDM) from ``state``; the extra blocks of a deepened U-Net keep
    their identity initialisation."""
    if not deepen:
        model.load_state_dict(state)
        return
    net = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
    model.net.load_shallower(net)
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("net.")}
                          | model.net.state_dict(prefix="net."))


def _train(config, resume, world, rank, local_rank):
    from tqdm.auto import tqdm

    is_main = rank == 0
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    elif world > 1 and device.type == "cpu":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))

    # ---- data, checked before anything else
    train_np, val_np = load_images(config.data, config.val_data, config.val_fraction,
                                   percentile=config.model.intensity_percentile)
    f = config.model.downsample_factor
    h, w = train_np.shape[1:]
    if config.patch_size > min(h, w):
        raise ValueError(f"training data {config.data!r}: expected images at least as large "
                         f"as patch_size={config.patch_size}, got {h}x{w}")
    if config.val_every and (h % f or w % f):
        raise ValueError(f"training data {config.data!r}: validation runs on full images, "
                         f"expected height and width multiples of downsample_factor={f}, "
                         f"got {h}x{w} (set val_every=0 to skip validation)")
    images = torch.from_numpy(train_np)[:, None]                       # (n, 1, H, W) CPU
    val_images = torch.from_numpy(val_np[:config.val_num_images])[:, None].to(device)

    out_dir = config.out_dir
    ckpt_path = os.path.join(out_dir, CHECKPOINT_NAME)
    existing = latest_checkpoint(out_dir)
    if existing and not resume:
        raise ValueError(f"output folder {out_dir!r} already holds a checkpoint "
                         f"({existing}); pass --resume (resume=True) to continue it or "
                         f"choose another --out")

    # ---- model, EMA, optimiser
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = VDM(config.model)
    memfmt = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memfmt)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    from ..precision import use_bf16
    compute_dtype = torch.bfloat16 if use_bf16(config.bf16, device, "TrainConfig.bf16") else None
    model.compute_dtype = ema.compute_dtype = compute_dtype
    opt = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr,
                            betas=config.adam_betas, eps=config.adam_eps)
    net_params = [p for n, p in model.named_parameters() if not n.startswith("schedule.")]
    sched_params = [p for n, p in model.named_parameters() if n.startswith("schedule.")]

    data_gen = torch.Generator().manual_seed(_seed_for(config.seed, rank, 1))
    noise_gen = torch.Generator(device=device).manual_seed(_seed_for(config.seed, rank, 2))
    start_step, wall0, images_seen, last_val = 0, 0.0, 0, None

    if config.init and not (existing and resume):
        init_state, deepen = _init_state(config.init, config.model)
        _load_init(model, init_state, deepen)
        ema.load_state_dict(model.state_dict())

    if existing and resume:
        state = load_checkpoint(existing, config.model.to_dict())
        try:
            model.load_state_dict(state["model"])
            ema.load_state_dict(state["ema"])
            opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise RuntimeError(f"checkpoint {existing!r} does not fit the model: {e}") from e
        start_step = int(state["step"])
        wall0 = float(state.get("wall_time_s", 0.0))
        images_seen = int(state.get("images_seen", 0))
        last_val = state.get("val_bpd")
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if device.type == "cuda" and rng.get("cuda") is not None:
            torch.cuda.set_rng_state(rng["cuda"], device)
        ranks = rng["ranks"]
        if len(ranks) == world:
            data_gen.set_state(ranks[rank]["data"])
            noise_gen.set_state(ranks[rank]["noise"])
        else:  # another number of processes: fresh streams, still deterministic
            data_gen.manual_seed(_seed_for(config.seed, rank, 1, start_step))
            noise_gen.manual_seed(_seed_for(config.seed, rank, 2, start_step))

    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        runner = DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None)
    else:
        runner = model

    if is_main:
        os.makedirs(out_dir, exist_ok=True)
        for name in os.listdir(out_dir):        # left by a kill during an atomic write
            if name.startswith(".") and name.endswith(".tmp"):
                os.remove(os.path.join(out_dir, name))
        config.save(os.path.join(out_dir, "config.json"))
        log = _CSVLog(os.path.join(out_dir, "metrics.csv"), METRIC_FIELDS, start_step)
        vlog = _CSVLog(os.path.join(out_dir, "val.csv"), VAL_FIELDS, start_step)

    sampler = BatchSampler(images.shape[0], config.batch_size, data_gen)
    dim_ln2 = config.model.image_channels * config.patch_size ** 2 * math.log(2.0)
    step = start_step
    last_ckpt = existing if (existing and resume) else None
    good = {"ckpt": last_ckpt, "step": start_step}       # for the message of a divergence
    interrupted = False
    t_start = time.perf_counter()
    t_saved = time.monotonic()

    def wall():
        return wall0 + time.perf_counter() - t_start

    def save(step):
        rng_ranks = _rng_state(data_gen, noise_gen)
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, rng_ranks)
            rng_ranks = gathered
        else:
            rng_ranks = [rng_ranks]
        if not is_main:
            return None
        state = {
            "format_version": FORMAT_VERSION, "step": step,
            "model": model.state_dict(), "ema": ema.state_dict(),
            "optimizer": opt.state_dict(),
            "model_config": config.model.to_dict(), "train_config": config.to_dict(),
            "gamma_endpoints": [float(v) for v in model.gamma(torch.tensor([0.0, 1.0])).detach()],
            "images_seen": images_seen, "wall_time_s": wall(), "val_bpd": last_val,
            "world_size": world, "torch_version": torch.__version__,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                    "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "ranks": rng_ranks},
        }
        save_checkpoint(ckpt_path, state)
        if config.keep_every and step % config.keep_every == 0:
            import shutil
            shutil.copyfile(ckpt_path, os.path.join(out_dir, f"ckpt_{step:08d}.pt"))
        return ckpt_path

    pbar = tqdm(total=config.steps, initial=start_step, disable=not (is_main and config.progress),
                dynamic_ncols=True, mininterval=1.0 if os.isatty(2) else 30.0, desc="train")
    model.train()
    with _StopFlag() as flag:
        try:
            while step < config.steps:
                step += 1
                # 1. a batch of augmented random patches
                idx = sampler.next()
                x = augment_patches(images[idx], config.patch_size, config.augment, data_gen)
                x = x.to(device).contiguous(memory_format=memfmt)
                # 2. learning rate: linear warm-up, constant, optional cosine decay
                lr = learning_rate(config, step)
                for g in opt.param_groups:
                    g["lr"] = lr
                # 3. the bound, its gradient, clipping, AdamW, EMA
                out = runner(x, generator=noise_gen)
                opt.zero_grad(set_to_none=True)
                out.loss.backward()
                if config.grad_clip > 0:
                    gn = torch.nn.utils.clip_grad_norm_(net_params, config.grad_clip)
                    gs = (torch.nn.utils.clip_grad_norm_(sched_params, config.grad_clip)
                          if sched_params else gn)
                else:
                    gn = torch.sqrt(sum(p.grad.pow(2).sum() for p in net_params
                                        if p.grad is not None))
                    gs = torch.sqrt(sum(p.grad.pow(2).sum() for p in sched_params
                                        if p.grad is not None)) if sched_params else gn
                # a NaN/Inf loss or gradient: stop before the update reaches the weights
                _check_finite_step(step, lr, out.loss.detach(), gn, gs, world, good)
                opt.step()
                decay = min(config.ema_decay, (1.0 + step) / (10.0 + step))
                _ema_update(ema, model, decay)
                images_seen += config.batch_size * world
                # 4. logging (terms averaged over processes)
                terms = torch.stack([out.loss.detach(), out.loss_recon.detach().mean(),
                                     out.loss_prior.detach().mean(),
                                     out.loss_diff.detach().mean()])
                ctrl = torch.tensor([float(flag.stop),
                                     float(time.monotonic() - t_saved
                                           >= config.save_every_seconds)])
                if world > 1:
                    dist.all_reduce(terms)
                    terms /= world
                    dist.all_reduce(ctrl, op=dist.ReduceOp.MAX)
                stop, time_due = bool(ctrl[0]), bool(ctrl[1])
                if is_main:
                    with torch.no_grad():
                        g01 = model.gamma(torch.tensor([0.0, 1.0]))
                    loss = float(terms[0])
                    log.write({"step": step, "loss_bpd": repr(loss),
                               "recon_bpd": repr(float(terms[1]) / dim_ln2),
                               "prior_bpd": repr(float(terms[2]) / dim_ln2),
                               "diff_bpd": repr(float(terms[3]) / dim_ln2),
                               "gamma_0": f"{float(g01[0]):.5f}",
                               "gamma_1": f"{float(g01[1]):.5f}",
                               "grad_norm": f"{float(gn):.5g}", "lr": f"{lr:.6g}",
                               "images_seen": images_seen, "wall_time_s": f"{wall():.2f}"})
                    pbar.update(1)
                    if step % 10 == 0 or step == config.steps:
                        pbar.set_postfix(bpd=f"{loss:.4f}", val=last_val and f"{last_val:.4f}")
                    # 5. validation bound and samples (EMA weights)
                    if config.val_every and step % config.val_every == 0:
                        v = evaluate_bound(ema, val_images, config.val_num_t,
                                           config.val_batch_size, config.val_seed)
                        if not math.isfinite(v["bpd"]):
                            _diverged(step, lr, f"the validation bound is {v['bpd']}",
                                      good)
                        last_val = v["bpd"]
                        vlog.write({"step": step, "val_bpd": repr(v["bpd"]),
                                    "val_recon_bpd": repr(v["recon_bpd"]),
                                    "val_prior_bpd": repr(v["prior_bpd"]),
                                    "val_diff_bpd": repr(v["diff_bpd"]),
                                    "wall_time_s": f"{wall():.2f}"})
                    if config.sample_every and config.sample_num and \
                            step % config.sample_every == 0:
                        size = config.sample_size or (h // f * f)
                        sw = config.sample_size or (w // f * f)
                        gen = torch.Generator(device=device).manual_seed(config.sample_seed)
                        with torch.no_grad():
                            s = ema.sample((config.sample_num, config.model.image_channels,
                                            size, sw), config.sample_steps, generator=gen)
                        _save_sample_grid(os.path.join(out_dir, f"samples_{step:08d}.png"), s)
                # 6. checkpoint
                if (config.save_every and step % config.save_every == 0) or time_due \
                        or stop or step == config.steps:
                    # finite gradients and a finite lr keep the weights finite; an lr large
                    # enough to overflow them is caught here, before it reaches the disk
                    if not _all_finite(list(model.parameters()) + list(ema.parameters())):
                        _diverged(step, lr, "the weights became NaN/Inf", good)
                    saved = save(step)
                    if saved:
                        last_ckpt = saved
                        good.update(ckpt=saved, step=step)
                    t_saved = time.monotonic()
                if stop:
                    interrupted = step < config.steps
                    break
        finally:
            pbar.close()
            if is_main:
                log.close()
                vlog.close()
    return TrainResult(step=step, checkpoint=last_ckpt if is_main else None, out_dir=out_dir,
                       val_bpd=last_val, interrupted=interrupted, model=model.eval(), ema=ema)
