"""Atomic training checkpoints: write to a temporary file in the same folder, fsync,
``os.replace``; loading names the file and what is wrong with it."""
import io
import os

import torch

from .._atomic import atomic_write_bytes

__all__ = ["atomic_write_bytes", "save_checkpoint", "load_checkpoint", "latest_checkpoint",
           "CHECKPOINT_NAME", "FORMAT_VERSION"]

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1
_REQUIRED = ("format_version", "step", "model", "ema", "optimizer", "model_config",
             "train_config", "rng")


def save_checkpoint(path, state):
    """Save a checkpoint dict (see :func:`load_checkpoint` for the keys) atomically."""
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ValueError(f"save_checkpoint: state lacks keys {missing}")
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path, model_config=None):
    """Load a training checkpoint and check it.

    Args:
        path (str): the file.
        model_config (dict or None): if given, the model configuration the caller is about
            to train; any difference from the stored one raises ``ValueError``.

    Returns:
        dict: with keys ``format_version``, ``step``, ``model``, ``ema``, ``optimizer``,
        ``model_config``, ``train_config``, ``rng`` and more.

    Raises:
        FileNotFoundError: no such file.
        RuntimeError: the file is truncated, corrupted or not a checkpoint.
        ValueError: the stored model configuration differs from ``model_config``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # zip reader errors, unpickling errors, EOF
        raise RuntimeError(f"checkpoint {path!r} is truncated or corrupted and cannot be "
                           f"read ({type(e).__name__}: {e}); delete it to start afresh or "
                           f"restore a copy") from e
    if not isinstance(state, dict) or any(k not in state for k in _REQUIRED):
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise RuntimeError(f"checkpoint {path!r} is not a mrirecon_vdm training checkpoint: "
                           f"expected keys {list(_REQUIRED)}, got {keys}")
    if state["format_version"] != FORMAT_VERSION:
        raise RuntimeError(f"checkpoint {path!r}: expected format version {FORMAT_VERSION}, "
                           f"got {state['format_version']}")
    if model_config is not None:
        stored = state["model_config"]
        diff = {k: (stored.get(k), model_config.get(k))
                for k in sorted(set(stored) | set(model_config))
                if stored.get(k) != model_config.get(k)}
        if diff:
            text = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"checkpoint {path!r} was written for a different model "
                             f"configuration ({text}); use a matching config or another "
                             f"--out folder")
    return state


def latest_checkpoint(out_dir):
    """Path of the checkpoint to resume from in ``out_dir``, or None if there is none."""
    p = os.path.join(os.fspath(out_dir), CHECKPOINT_NAME)
    return p if os.path.exists(p) else None
