#!/usr/bin/env python
"""Pack the training slices small enough to travel to a GPU machine (docs/training.md).

Writes ``.devicedata/train.npz`` (ignored by git; the device tool's ``carry``): the
``train`` split of the built data set and the validation person (``val_person``) as
``val``, float16, compressed: about 19 MB for ``brain128_people.h5`` (1,039 + 88 slices of
128 × 128), against 64 MiB that may travel. ``mrirecon-vdm train --data`` reads it as any
``.npz`` with ``train`` and ``val`` (each slice is normalised to its maximum on loading, so
float16's 11-bit mantissa is the only change: a relative error below 5e-4).

    mrirecon-vdm data build --extra-people        # once: <cache>/brain128_people.h5
    python benchmarks/pack_device_data.py         # -> .devicedata/train.npz
    # then on the device: bash benchmarks/device_train.sh (its header has the call)
"""
import argparse
import pathlib
import sys

import numpy as np

try:
    import mrirecon_vdm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def main(argv=None):
    import h5py

    from mrirecon_vdm._atomic import atomic_write_bytes
    from mrirecon_vdm.data.fetch import default_cache_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(default_cache_dir() / "brain128_people.h5"),
                    help="built data set (HDF5 with train/images and val_person/images)")
    ap.add_argument("--out", default=".devicedata/train.npz")
    ap.add_argument("--max-mb", type=float, default=40.0,
                    help="refuse to write more than this (default 40 MB)")
    args = ap.parse_args(argv)
    path = pathlib.Path(args.data)
    if not path.exists():
        ap.error(f"{path} not found: build it with `mrirecon-vdm data build --extra-people`")
    with h5py.File(path, "r") as f:
        for key in ("train/images", "val_person/images"):
            if key not in f:
                ap.error(f"{path}: no {key!r} (a data set built by `mrirecon-vdm data build`)")
        train = f["train/images"][:].astype(np.float16)
        val = f["val_person/images"][:].astype(np.float16)
    if not (np.all(np.isfinite(train)) and np.all(np.isfinite(val))):
        ap.error(f"{path}: non-finite values after the float16 cast")
    import io
    buf = io.BytesIO()
    np.savez_compressed(buf, train=train, val=val)
    blob = buf.getvalue()
    if len(blob) > args.max_mb * 1e6:
        ap.error(f"the pack is {len(blob) / 1e6:.1f} MB, over --max-mb {args.max_mb}")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, blob)
    print(f"wrote {out}: train {train.shape}, val {val.shape}, float16, "
          f"{len(blob) / 1e6:.1f} MB (from {path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
