"""``mrirecon-vdm recon``: super-resolve a low-resolution image or k-space with the VDM prior.

INPUT is a low-resolution image (NIfTI ``.nii``/``.nii.gz`` volume or 2D image, ``.npy``
real array, ``.png``) or a low-resolution k-space (HDF5 ``.h5``/``.hdf5`` dataset, default
key ``kspace``, or a complex ``.npy``), shape (m1, m2) or (S, m1, m2) for k-space. An image
is converted to the centre block of the high-resolution k-space with
:func:`mrirecon_vdm.linop.lowres_image_to_kspace` (which keeps intensities).

OUTPUT (``.nii``/``.nii.gz`` or ``.npy``) is written atomically (temporary file, then
``os.replace``), in the input's layout: a NIfTI input keeps its axis order; an array input
gives (N1, N2) or (S, N1, N2) in ``.npy`` and (N1, N2, S) in NIfTI. For a NIfTI input the
affine keeps the anatomy in place: the in-plane voxel size is multiplied by m/N, and HR
voxel i sits where the zero-padded DFT puts it, at LR voxel coordinate
``m//2 + (i - N//2) m/N`` (for even sizes HR voxel 0 coincides with LR voxel 0, so the
field-of-view box moves by (1 − m/N)/2 LR voxels).
"""
import pathlib

NIFTI_SUFFIXES = (".nii.gz", ".nii")
INPUT_SUFFIXES = (".nii.gz", ".nii", ".npy", ".png", ".h5", ".hdf5")
OUTPUT_SUFFIXES = (".nii.gz", ".nii", ".npy")
SAMPLER_CHOICES = ("fast", "paper")
DEFAULT_SCALE = 4


def register(subparsers):
    p = subparsers.add_parser(
        "recon", help="super-resolve a low-resolution image or k-space",
        description="Super-resolve a low-resolution MR image (NIfTI volume or 2D image, .npy, "
                    ".png) or low-resolution k-space (.h5/.hdf5, complex .npy) with the "
                    "k-space-guided VDM prior, slice by slice. Writes the high-resolution "
                    "NIfTI (voxel size updated in the affine) or .npy.")
    p.add_argument("input", help="low-resolution input: " + ", ".join(INPUT_SUFFIXES))
    p.add_argument("--out", required=True, help="output file: " + ", ".join(OUTPUT_SUFFIXES))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scale", type=float, default=None,
                   help=f"in-plane upsampling factor (default {DEFAULT_SCALE})")
    g.add_argument("--size", type=int, nargs=2, metavar=("N1", "N2"), default=None,
                   help="target in-plane size (must be multiples of the prior's "
                        "downsample factor)")
    p.add_argument("--sampler", default="fast", choices=SAMPLER_CHOICES,
                   help="'fast' (x0 data consistency + DDIM, default) or 'paper' (ancestral "
                        "with measurement mixing)")
    p.add_argument("--steps", type=int, default=None,
                   help="network evaluations (default 50 fast, 1000 paper)")
    p.add_argument("--samples", type=int, default=1,
                   help="posterior samples averaged into the output (default 1)")
    p.add_argument("--lamda", type=float, default=1.0, help="data weight λ in [0, 1]")
    p.add_argument("--sigma", type=float, default=None,
                   help="k-space noise std in the input's units (default 0: noiseless)")
    p.add_argument("--eta", type=float, default=1.0,
                   help="DDIM stochasticity η in [0, 1] of the fast sampler (default 1)")
    p.add_argument("--seed", type=int, default=None, help="seed of the sampler's noise")
    p.add_argument("--png", default=None, help="also save the middle slice as a PNG")
    p.add_argument("--uncertainty", default=None,
                   help="also save the per-voxel posterior std (needs --samples >= 2)")
    p.add_argument("--prior", default=None,
                   help="folder (or prior.safetensors) of an exported prior "
                        "(default: the shipped pretrained prior)")
    p.add_argument("--key", default="kspace", help="HDF5 dataset of the k-space (default kspace)")
    p.add_argument("--axis", type=int, default=2, choices=(0, 1, 2),
                   help="slice axis of a 3D NIfTI volume (default 2)")
    p.add_argument("--device", type=int, default=-1, help="-1 for CPU (default), else GPU id")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per network call (default: all slices x samples of a run)")
    p.add_argument("--slices-per-run", type=int, default=8,
                   help="slices reconstructed together (default 8)")
    p.add_argument("--intensity-scale", default="slice",
                   help="'slice' (default: one scale per slice, the prior's intensity "
                        "percentile of |zero-filled|), 'volume' (one for the volume) or a "
                        "number (input units that map to 1 in the prior's units)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false",
                   help="run the network in float32 (default: bfloat16 autocast, 1.8x faster "
                        "on CPU with the same quality)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--resume", action="store_true",
                   help="go on after a kill: reuse the runs kept in OUT.partial/ (each run of "
                        "--slices-per-run slices is kept there until the output is written)")
    p.set_defaults(func=_run)


def _run(args):
    import torch

    from ..prior import load_pretrained
    device = "cpu" if args.device < 0 else f"cuda:{args.device}"
    prior = load_pretrained(device=torch.device(device), path=args.prior)
    intensity = args.intensity_scale
    if intensity not in ("volume", "slice"):
        try:
            intensity = float(intensity)
        except ValueError:
            raise ValueError(f"recon: --intensity-scale must be 'volume', 'slice' or a number, "
                             f"got {intensity!r}") from None
    out = recon_file(args.input, args.out, prior, factor=args.scale, size=args.size,
                     key=args.key, axis=args.axis, png=args.png, uncertainty=args.uncertainty,
                     sampler=args.sampler, num_steps=args.steps, num_samples=args.samples,
                     lamda=args.lamda, sigma=args.sigma, eta=args.eta, seed=args.seed,
                     device=args.device, batch_size=args.batch_size,
                     slices_per_run=args.slices_per_run, intensity_scale=intensity,
                     bf16=args.bf16, resume=args.resume,
                     show_pbar=not args.quiet)
    print(out)


def _suffix(path, allowed):
    name = pathlib.Path(path).name.lower()
    for s in sorted(allowed, key=len, reverse=True):
        if name.endswith(s):
            return s
    return None


def _read_input(path, key, axis):
    """(kind, array, affine, layout): kind "image" (S, m1, m2) real or "kspace" complex;
    for NIfTI the affine and the slice axis, else None and the input's rank (2 or 3)."""
    import numpy as np
    path = pathlib.Path(path)
    suffix = _suffix(path, INPUT_SUFFIXES)
    if suffix is None:
        raise ValueError(f"{path}: unsupported input type {''.join(path.suffixes) or '(none)'!r}; "
                         f"allowed: {', '.join(INPUT_SUFFIXES)}")
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    affine = None
    if suffix in NIFTI_SUFFIXES:
        import nibabel as nib
        try:
            img = nib.load(str(path))
            vol = np.asarray(img.dataobj, dtype=np.float32)
        except Exception as e:
            raise ValueError(f"{path}: could not read NIfTI ({type(e).__name__}: {e})") from e
        affine = np.asarray(img.affine, dtype=np.float64)
        if vol.ndim == 4 and vol.shape[-1] == 1:
            vol = vol[..., 0]
        if vol.ndim == 2:
            vol = vol[..., None]
            axis = 2
        if vol.ndim != 3:
            raise ValueError(f"{path}: expected a 2D or 3D NIfTI image, got shape {vol.shape}")
        return "image", np.ascontiguousarray(np.moveaxis(vol, axis, 0)), affine, axis
    if suffix in (".h5", ".hdf5"):
        import h5py
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise ValueError(f"{path}: could not read HDF5 ({e})") from e
        with f:
            if key not in f:
                raise KeyError(f"{path}: no dataset {key!r}; available: {sorted(f.keys())} "
                               f"(choose one with --key)")
            arr = f[key][()]
        if not np.iscomplexobj(arr):
            raise ValueError(f"{path}[{key}]: expected complex k-space, got dtype {arr.dtype}")
        kind = "kspace"
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as e:
            raise ValueError(f"{path}: could not read numpy file ({type(e).__name__}: {e})") from e
        kind = "kspace" if np.iscomplexobj(arr) else "image"
    else:  # .png
        import matplotlib.image
        try:
            arr = np.asarray(matplotlib.image.imread(str(path)), dtype=np.float32)
        except Exception as e:
            raise ValueError(f"{path}: could not read PNG ({type(e).__name__}: {e})") from e
        if arr.ndim == 3:
            arr = arr[..., :3].mean(axis=-1)
        kind = "image"
    ndim = arr.ndim
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.size == 0:
        what = "k-space (m1, m2) or (S, m1, m2)" if kind == "kspace" else \
            "image (m1, m2) or (S, m1, m2)"
        raise ValueError(f"{path}: expected a {what} (multi-coil k-space is not supported), "
                         f"got shape {arr.shape}")
    arr = arr.astype(np.complex64 if kind == "kspace" else np.float32)
    return kind, arr, None, ndim


def _target_size(lr_shape, factor, size):
    if size is not None:
        hr = tuple(int(n) for n in size)
    else:
        factor = DEFAULT_SCALE if factor is None else float(factor)
        if not factor > 0:
            raise ValueError(f"recon: --scale must be > 0, got {factor}")
        hr = tuple(int(round(m * factor)) for m in lr_shape)
    if len(hr) != 2 or any(n < m for n, m in zip(hr, lr_shape)):
        raise ValueError(f"recon: the target size {hr} is smaller than the input "
                         f"{tuple(lr_shape)}; super-resolution needs a target at least as large")
    return hr


def hr_affine(affine, lr_shape, hr_shape, axis=2):
    """The affine of the HR grid: in-plane voxel size × m/N, anatomy kept in place.

    Args:
        affine (array): (4, 4) affine of the LR volume.
        lr_shape, hr_shape (tuples of 2 ints): in-plane sizes (m1, m2), (N1, N2).
        axis (int): the slice axis of the volume (the in-plane axes are the other two).

    Returns:
        array: (4, 4) float64.
    """
    import numpy as np
    inplane = [a for a in range(3) if a != axis]
    M = np.eye(4)
    for a, m, n in zip(inplane, lr_shape, hr_shape):
        r = m / n
        M[a, a] = r
        M[a, 3] = m // 2 - r * (n // 2)
    return np.asarray(affine, dtype=np.float64) @ M


def _atomic_save(path, data, affine):
    import numpy as np
    path = pathlib.Path(path)
    suffix = _suffix(path, OUTPUT_SUFFIXES)
    if suffix is None:
        raise ValueError(f"{path}: unsupported output type {''.join(path.suffixes) or '(none)'!r}; "
                         f"allowed: {', '.join(OUTPUT_SUFFIXES)}")
    from .._atomic import atomic_path
    with atomic_path(path, suffix=suffix) as tmp:
        if suffix == ".npy":
            np.save(tmp, data)
        else:
            import nibabel as nib
            img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
            img.set_qform(affine, code=1)
            img.set_sform(affine, code=1)
            nib.save(img, tmp)
    return path


def progress_dir_for(out):
    """``<out>.partial``: where :func:`recon_file` keeps finished runs until ``out`` is written."""
    out = pathlib.Path(out)
    return out.with_name(out.name + ".partial")


def recon_file(input, out, prior, factor=None, size=None, key="kspace", axis=2, png=None,
               uncertainty=None, slices_per_run=8, intensity_scale="slice", resume=False,
               **recon_kwargs):
    """Read a low-resolution file, super-resolve it slice by slice, write the result.

    Args:
        input (path): LR image (.nii/.nii.gz/.npy/.png) or LR k-space (.h5/.hdf5/complex .npy).
        out (path): output .nii/.nii.gz/.npy (atomic write).
        prior: the prior (protocol of ``docs/architecture.md``).
        factor (float or None): in-plane upsampling factor (default 4); or
        size (tuple of 2 ints or None): the target in-plane size.
        key (str): HDF5 dataset name.
        axis (int): slice axis of a 3D NIfTI volume.
        png (path or None): PNG of the middle slice.
        uncertainty (path or None): the per-voxel std (same format as ``out``), needs
            ``num_samples >= 2``.
        slices_per_run (int): slices per :class:`GuidedVDMRecon` run.
        intensity_scale (str or float): ``"volume"``, ``"slice"`` or a number, see
            :func:`mrirecon_vdm.volume.reconstruct_volume` (``scale``).
        resume (bool): reuse the finished runs kept in ``<out>.partial/``
            (:func:`progress_dir_for`) by an earlier call that was killed; the folder is
            removed once the outputs are written.
        **recon_kwargs: for :class:`mrirecon_vdm.app.GuidedVDMRecon` (sampler, num_steps,
            num_samples, lamda, sigma, eta, seed, device, batch_size, bf16, show_pbar).

    Returns:
        pathlib.Path: the output file.

    Raises:
        FileNotFoundError: no input file.
        ValueError: unsupported suffix, unreadable file, bad shape, target smaller than the
            input, ``uncertainty`` with one sample, or any GuidedVDMRecon check.
    """
    import numpy as np
    import sigpy as sp

    from ..linop import lowres_image_to_kspace
    from ..volume import reconstruct_volume

    for p in (out,) + ((uncertainty,) if uncertainty else ()):
        if _suffix(p, OUTPUT_SUFFIXES) is None:
            raise ValueError(f"{p}: unsupported output type; allowed: {', '.join(OUTPUT_SUFFIXES)}")
    if uncertainty is not None and recon_kwargs.get("num_samples", 1) < 2:
        raise ValueError("recon: an uncertainty map needs at least 2 posterior samples "
                         "(--samples 2 or more)")
    kind, arr, affine, layout = _read_input(input, key, axis)
    lr_shape = arr.shape[-2:]
    hr_shape = _target_size(lr_shape, factor, size)
    y = arr if kind == "kspace" else lowres_image_to_kspace(arr, hr_shape).astype(np.complex64)
    progress = progress_dir_for(out)
    x, std = reconstruct_volume(y, hr_shape, prior, slices_per_run=slices_per_run,
                                scale=intensity_scale, progress_dir=progress, resume=resume,
                                **recon_kwargs)
    x = sp.to_device(x)
    std = None if std is None else sp.to_device(std)
    is_nifti = affine is not None
    axis = layout if is_nifti else 2
    new_affine = hr_affine(affine if is_nifti else np.eye(4), lr_shape, hr_shape, axis)

    def layout_for(v, target):
        """(S, N1, N2) -> a NIfTI input's axis order; arrays keep (S, N1, N2) or (N1, N2)
        in .npy and put slices last in NIfTI."""
        if is_nifti:
            return np.moveaxis(v, 0, axis)
        if _suffix(target, OUTPUT_SUFFIXES) == ".npy":
            return v[0] if layout == 2 else v
        return np.moveaxis(v, 0, -1)

    path = _atomic_save(out, layout_for(x, out), new_affine)
    if uncertainty is not None:
        _atomic_save(uncertainty, layout_for(std, uncertainty), new_affine)
    import shutil
    shutil.rmtree(progress, ignore_errors=True)
    if png is not None:
        import matplotlib.pyplot as plt
        mid = x[x.shape[0] // 2]
        pathlib.Path(png).parent.mkdir(parents=True, exist_ok=True)
        # NIfTI: voxel axes (i, j) shown with i to the right and j up
        plt.imsave(str(png), mid.T if is_nifti else mid, cmap="gray",
                   origin="lower" if is_nifti else "upper")
    return path
