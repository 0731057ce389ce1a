"""Shipped prior weights: export from a training checkpoint, load for inference.

A pretrained prior is two files side by side:

* ``prior.safetensors`` — the EMA weights (float32);
* ``prior.json`` — ``{"format", "model_config", "provenance", "sha256"}``, where
  ``provenance`` says what it was trained on, for how long, with which code, and
  ``sha256`` is the checksum of the weights file.
"""
import datetime
import hashlib
import json
import pathlib

import torch

from .checkpoint import atomic_write_bytes, load_checkpoint
from .vdm import VDM, VDMConfig

__all__ = ["load_pretrained", "export_pretrained", "default_weights_path", "FORMAT"]

FORMAT = "mrirecon_vdm.prior/1"
WEIGHTS_NAME = "prior.safetensors"
META_NAME = "prior.json"


def default_weights_path():
    """``mrirecon_vdm/prior/weights/prior.safetensors`` inside the installed package."""
    return pathlib.Path(__file__).with_name("weights") / WEIGHTS_NAME


def _paths(path):
    p = pathlib.Path(path)
    if p.is_dir() or p.suffix == "":
        p = p / WEIGHTS_NAME
    return p, p.with_suffix(".json")


#: Storage dtypes of :func:`export_pretrained` (the model always runs in float32).
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16,
                  "bfloat16": torch.bfloat16}


def export_pretrained(checkpoint_path, out_dir, provenance, dtype="float32"):
    """Write the EMA weights of a training checkpoint as ``prior.safetensors`` +
    ``prior.json`` in ``out_dir`` (both written atomically).

    Args:
        checkpoint_path (str): a training checkpoint (``checkpoint.pt``).
        out_dir (str): destination folder (created if needed).
        provenance (dict): JSON-serialisable facts to record (data set, sources, licence,
            command line, ...). Step, images seen, training time, the last validation bound
            and the training configuration are added from the checkpoint.
        dtype (str): storage dtype of the weights, ``"float32"``, ``"float16"`` (half the
            size: a 64-channel U-Net's 9 M parameters in 18 MB) or ``"bfloat16"``;
            :func:`load_pretrained` returns float32 either way. Recorded as
            ``weights_dtype``.

    Returns:
        tuple: (weights path, metadata path) as ``pathlib.Path``.
    """
    from safetensors.torch import save as st_save

    if not isinstance(provenance, dict):
        raise ValueError(f"export_pretrained: expected provenance to be a dict, got "
                         f"{type(provenance).__name__}")
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"export_pretrained: dtype must be one of {sorted(STORAGE_DTYPES)}, "
                         f"got {dtype!r}")
    state = load_checkpoint(checkpoint_path)
    config = VDMConfig.from_dict(state["model_config"])
    model = VDM(config)
    model.load_state_dict(state["ema"])           # checks keys and shapes
    tensors = {k: v.detach().to("cpu", STORAGE_DTYPES[dtype]).contiguous()
               for k, v in model.state_dict().items()}
    blob = st_save(tensors, metadata={"format": FORMAT})
    prov = dict(provenance)
    prov["weights_dtype"] = dtype
    prov.setdefault("step", int(state["step"]))
    prov.setdefault("images_seen", state.get("images_seen"))
    prov.setdefault("train_wall_time_s", state.get("wall_time_s"))
    prov.setdefault("val_bpd", state.get("val_bpd"))
    prov.setdefault("world_size", state.get("world_size"))
    prov.setdefault("torch_version", state.get("torch_version"))
    prov.setdefault("train_config", state.get("train_config"))
    prov.setdefault("exported", datetime.datetime.now(datetime.timezone.utc).isoformat())
    meta = {"format": FORMAT, "model_config": config.to_dict(), "provenance": prov,
            "sha256": hashlib.sha256(blob).hexdigest()}
    text = json.dumps(meta, indent=2, default=str) + "\n"
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wpath, mpath = out / WEIGHTS_NAME, out / META_NAME
    atomic_write_bytes(wpath, blob)
    atomic_write_bytes(mpath, text.encode())
    return wpath, mpath


def weights_sha256(prior):
    """SHA-256 of a torch prior's weights (names and float32 bytes of its state dict), or
    None for a prior without a ``state_dict`` (e.g. the analytic Gaussian prior). Identifies
    the weights whatever file or folder they were loaded from."""
    if not hasattr(prior, "state_dict"):
        return None
    h = hashlib.sha256()
    for k, v in sorted(prior.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def _state_mismatch(ours, theirs):
    """A one-line summary of how a state dict ``theirs`` differs from the model's ``ours``
    (tensors of another shape, missing, unexpected), or "" when it fits."""
    shape = [k for k in ours if k in theirs and tuple(ours[k].shape) != tuple(theirs[k].shape)]
    missing = [k for k in ours if k not in theirs]
    unexpected = [k for k in theirs if k not in ours]
    parts = []
    if shape:
        k = shape[0]
        parts.append(f"{len(shape)} tensors of another shape, e.g. {k}: file "
                     f"{tuple(theirs[k].shape)}, config {tuple(ours[k].shape)}")
    if missing:
        parts.append(f"{len(missing)} missing, e.g. {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
    return "; ".join(parts)


def load_pretrained(device="cpu", path=None):
    """Load a pretrained VDM prior for inference.

    Args:
        device (str or torch.device): where to put it.
        path (str or None): a ``prior.safetensors`` file or the folder holding it (with
            ``prior.json`` beside it); default: the weights shipped in
            ``mrirecon_vdm/prior/weights/``.

    Returns:
        VDM: in eval mode, ``requires_grad`` off, float32 (set ``model.compute_dtype =
        torch.bfloat16`` for faster inference where :func:`mrirecon_vdm.precision.fast_bf16`
        says so; on an AVX2-only CPU it is ~100x slower). ``model.provenance`` holds the
        record.

    Raises:
        FileNotFoundError: the weights or their JSON are missing.
        ValueError: the JSON is not a prior description, the checksum does not match, the
            weights file is truncated or not a safetensors file, or the weights do not fit
            the model config (the message counts the tensors that differ and names the
            config fields that differ from the ones recorded at training time).
    """
    from safetensors.torch import load as st_load

    default = path is None
    wpath, mpath = _paths(default_weights_path() if default else path)
    for p, what in ((wpath, "weights"), (mpath, "metadata")):
        if not p.exists():
            hint = (" (the default pretrained prior is not installed: train one with "
                    "`mrirecon-vdm train` and export it with "
                    "mrirecon_vdm.prior.export_pretrained, or pass path=)") if default else ""
            raise FileNotFoundError(f"load_pretrained: prior {what} file {str(p)!r} not "
                                    f"found{hint}")
    try:
        meta = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"load_pretrained: {str(mpath)!r} is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "model_config" not in meta:
        raise ValueError(f"load_pretrained: {str(mpath)!r} is not a prior description: "
                         f"expected format {FORMAT!r} with a model_config")
    blob = wpath.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if meta.get("sha256") and meta["sha256"] != digest:
        raise ValueError(f"load_pretrained: checksum of {str(wpath)!r} is {digest}, expected "
                         f"{meta['sha256']} from {str(mpath)!r} (corrupted or mismatched files)")
    try:
        tensors = st_load(blob)
    except Exception as e:       # safetensors' SafetensorError: truncated or not safetensors
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        note = "" if meta.get("sha256") else f" ({str(mpath)!r} records no checksum)"
        raise ValueError(f"load_pretrained: weights {str(wpath)!r} cannot be read, the file is "
                         f"truncated or not a safetensors file{note}: {why}; export the prior "
                         f"again or restore a copy") from None
    try:
        config = VDMConfig.from_dict(meta["model_config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"load_pretrained: {str(mpath)!r}: bad model_config: {e}") from None
    model = VDM(config)
    mismatch = _state_mismatch(model.state_dict(), tensors)
    if mismatch:
        trained = (meta.get("provenance") or {}).get("train_config") or {}
        trained = trained.get("model") if isinstance(trained, dict) else None
        fields = ""
        if isinstance(trained, dict):
            from .._checks import differing_keys
            mc = config.to_dict()
            diff = differing_keys(trained, mc)
            if diff:
                fields = ("; its model_config differs from the one the weights were trained "
                          "with (provenance train_config.model) in " + ", ".join(
                              f"{k}: {mc.get(k)!r} vs trained {trained.get(k)!r}" for k in diff))
        raise ValueError(f"load_pretrained: weights {str(wpath)!r} do not fit the model config "
                         f"in {str(mpath)!r} ({mismatch}){fields}")
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in tensors.items()})
    except RuntimeError as e:
        raise ValueError(f"load_pretrained: weights {str(wpath)!r} do not fit the model "
                         f"config in {str(mpath)!r}: {str(e).splitlines()[0]}") from None
    model.provenance = meta.get("provenance", {})
    model.requires_grad_(False)
    return model.to(device).eval()
