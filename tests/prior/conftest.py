"""Tiny synthetic data and configurations for the prior tests (fast on 2 CPU cores)."""
import numpy as np
import pytest


def blobs(n, size, seed=0):
    """(n, size, size) float32 smooth random blobs, each slice max-normalised to 1."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    out = np.zeros((n, size, size), np.float32)
    for i in range(n):
        for _ in range(3):
            cx, cy = rng.uniform(0.25, 0.75, 2)
            r = rng.uniform(0.06, 0.2)
            out[i] += rng.uniform(0.3, 1.0) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    return out / out.max(axis=(1, 2), keepdims=True)


TINY_MODEL = dict(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,),
                  norm_groups=4, fourier_exponents=(6,), schedule_features=16)


@pytest.fixture
def tiny_model_config():
    from mrirecon_vdm.prior import VDMConfig
    return VDMConfig(**TINY_MODEL)


@pytest.fixture
def toy_h5(tmp_path):
    import h5py
    path = tmp_path / "toy.h5"
    with h5py.File(path, "w") as f:
        f["train/images"] = blobs(12, 16, seed=0)
        f["val/images"] = blobs(2, 16, seed=1)
    return str(path)


@pytest.fixture
def tiny_train_config(toy_h5, tmp_path, tiny_model_config):
    from mrirecon_vdm.prior import TrainConfig
    return TrainConfig(data=toy_h5, out_dir=str(tmp_path / "run"), model=tiny_model_config,
                       steps=6, batch_size=4, patch_size=16, warmup_steps=2, bf16=False,
                       val_every=3, val_num_images=2, val_num_t=2, val_batch_size=4,
                       sample_every=0, save_every=3, progress=False, num_threads=1)


@pytest.fixture
def make_blobs():
    """The :func:`blobs` generator, as a fixture (test modules here are not a package)."""
    return blobs
