"""``mrirecon-vdm recon``: reconstruct with the VDM prior, slice by slice: super-resolve a
low-resolution image or k-space (the default), or reconstruct undersampled (and multi-coil)
k-space on the full grid (``--undersampled``).

**Super-resolution (default).**
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

**Undersampled k-space (``--undersampled``, or ``--mask``).** INPUT is k-space on the full
grid, zeros where not sampled (complex64/complex128):

* ``.npy``: a complex array;
* ``.npz``: the array ``--key`` (default ``kspace``; the only array when there is one);
* ``.h5``/``.hdf5`` (fastMRI-style): the dataset ``--key`` (default ``kspace``; the only
  dataset when there is one), ``(slices, H, W)`` single coil or ``(slices, coils, H, W)``;
* BART ``.cfl``/``.hdr`` (either name): dimensions (x, y, z, coils) read as
  ``(z, coils, H, W)`` with x → H and y → W (:func:`mrirecon_vdm.data.io.read_cfl`).

Layouts: ``(H, W)`` one slice, one coil; ``(S, H, W)`` S single-coil slices, or with
``--coils`` ``(C, H, W)`` one slice of C coils; ``(S, C, H, W)`` multi-coil slices (a BART
file says itself which dimension holds the coils). The sampling mask comes from ``--mask``
(``.npy`` or HDF5, ``(H, W)`` for every slice, ``(S, H, W)``, or fastMRI's 1D ``(W,)``
columns; 0/1 or boolean; k-space outside it is set to zero), from the ``mask`` dataset of a
fastMRI file, or from the data (:func:`mrirecon_vdm.sampling.mask_from_kspace`: sampled
where any coil is non-zero). With coils, ESPIRiT maps are estimated per slice from the fully
sampled centre (:func:`mrirecon_vdm.coils.espirit_maps`; it needs at least 8 x 8 lines).
The operator is :class:`mrirecon_vdm.linop.FourierSampling`; ``--method guided`` (default,
:class:`~mrirecon_vdm.app.GuidedVDMRecon`) or ``pnp`` (:class:`~mrirecon_vdm.pnp.PnPVDMRecon`)
reconstructs the real magnitude image, with the phase (``--phase``) and, with coil maps, the
noise level estimated from the data unless given. OUTPUT is the magnitude ``(S, H, W)`` in
``.npy`` (``(H, W)`` for an input without a slice axis) or ``(H, W, S)`` in NIfTI, with the
affine diag(``--voxel-size``) (1 mm by default).
"""
import math
import pathlib
import sys

NIFTI_SUFFIXES = (".nii.gz", ".nii")
INPUT_SUFFIXES = (".nii.gz", ".nii", ".npy", ".png", ".h5", ".hdf5")
OUTPUT_SUFFIXES = (".nii.gz", ".nii", ".npy", ".cfl")
SAMPLER_CHOICES = ("fast", "paper")
DEFAULT_SCALE = 4
METHOD_CHOICES = ("guided", "pnp")
PHASE_CHOICES = ("auto", "none")
#: In-plane voxel sizes (mm) of the shipped prior's training data (``docs/data.md``), used when
#: the prior records none in its ``provenance``.
DEFAULT_PRIOR_VOXEL_MM = (1.7, 2.0)
#: ``--mask`` marking this share of its entries or more where the k-space holds exact zeros
#: gets a warning (measured samples are never exactly zero).
MASK_ZERO_WARN = 0.01
#: ``--voxel-size`` further than this (relative) from the prior's range gets a warning.
VOXEL_TOLERANCE = 0.25
#: The largest super-resolution target side (pixels) ``recon`` accepts: 16x a 128 x 128
#: image. A larger ``--scale``/``--size`` is refused before any work (``--scale 64`` on a 128
#: image would allocate 8192 x 8192 complex arrays per slice and sample, and the prior's
#: self-attention grows with the square of the pixel count).
MAX_TARGET_SIZE = 2048


def register(subparsers):
    p = subparsers.add_parser(
        "recon", help="super-resolve a low-resolution image or k-space, or reconstruct "
                      "undersampled k-space",
        description="Super-resolve a low-resolution MR image (NIfTI volume or 2D image, .npy, "
                    ".png) or low-resolution k-space (.h5/.hdf5, complex .npy) with the "
                    "k-space-guided VDM prior, slice by slice. Writes the high-resolution "
                    "NIfTI (voxel size updated in the affine) or .npy. With --undersampled "
                    "(or --mask): reconstruct undersampled single- or multi-coil k-space on "
                    "the full grid (.npy, .npz, fastMRI-style .h5/.hdf5, BART .cfl/.hdr; "
                    "zeros where not sampled) into a magnitude image of the same size.",
        epilog="Undersampled k-space: 2D (H, W); 3D (S, H, W) single-coil slices or, with "
               "--coils, (C, H, W) one slice of C coils; 4D (S, C, H, W). Coil maps: ESPIRiT "
               "per slice from the fully sampled k-space centre (at least 8 x 8 lines). "
               "The prior was trained on about 2 mm brain slices (1.7-2.0 mm): with "
               "--voxel-size far from that (more than 25 %) a warning is printed, as the "
               "prior then sees anatomy at another scale.")
    p.add_argument("input", help="low-resolution input: " + ", ".join(INPUT_SUFFIXES)
                   + "; with --undersampled full-grid k-space: .npy, .npz, .h5, .hdf5, "
                     ".cfl/.hdr")
    p.add_argument("--out", required=True, help="output file: " + ", ".join(OUTPUT_SUFFIXES))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scale", type=float, default=None,
                   help=f"in-plane upsampling factor (default {DEFAULT_SCALE})")
    g.add_argument("--size", type=int, nargs=2, metavar=("N1", "N2"), default=None,
                   help="target in-plane size (any size: the prior's network pads to its "
                        "multiple of 8 internally)")
    p.add_argument("--method", default=None, choices=METHOD_CHOICES,
                   help="'pnp' (the default for both tasks: PnPVDMRecon, plug-and-play, the "
                        "prior's one-step denoiser alternated with exact data consistency; "
                        "deterministic, 30 network evaluations, 45 with coil maps (--steps)) or "
                        "'guided' (GuidedVDMRecon, the k-space-guided diffusion sampler; "
                        "--samples, --sampler, --lamda, --renoise, --eta, --seed, "
                        "--slice-correlation and --uncertainty apply to it, and giving one of "
                        "them selects it). On the validation people plug-and-play beats the "
                        "guided mean of 4 samples by 0.3-0.5 dB in super-resolution at 4x and "
                        "2x, and is within 0.2 dB of it with 8 coils, at a fifth to a seventh "
                        "of the network evaluations (docs/results.md)")
    p.add_argument("--sampler", default="fast", choices=SAMPLER_CHOICES,
                   help="'fast' (x0 data consistency + renoising, default) or 'paper' (ancestral "
                        "with measurement mixing)")
    p.add_argument("--steps", type=int, default=None,
                   help="network evaluations per sample (default: pnp 30, 45 with coil maps; "
                        "guided 50 fast, 1000 paper)")
    p.add_argument("--samples", type=int, default=1,
                   help="posterior samples averaged into the output (default 1)")
    p.add_argument("--lamda", type=float, default=1.0, help="data weight λ in [0, 1]")
    p.add_argument("--sigma", type=float, default=None,
                   help="k-space noise std in the input's units (default: estimated from "
                        "the data, mrirecon_vdm.noise.estimate_sigma; 0 for noiseless "
                        "single-coil data)")
    p.add_argument("--renoise", default=None, choices=["fresh", "ddim"],
                   help="the fast sampler's renoising: 'fresh' (default: all of the noise new "
                        "at every step) or 'ddim' (keeps the implied noise; with --eta)")
    p.add_argument("--eta", type=float, default=None,
                   help="DDIM stochasticity η in [0, 1] of the fast sampler with --renoise "
                        "ddim (default 1)")
    p.add_argument("--seed", type=int, default=None, help="seed of the sampler's noise")
    p.add_argument("--complex", dest="complex_output", action="store_true",
                   help="write the complex image m·e^{iφ} (the reconstruction with its estimated "
                        "phase; m itself without one): complex64 NIfTI, .npy or BART .cfl "
                        "(default: the real magnitude image m)")
    p.add_argument("--png", default=None, help="also save the middle slice as a PNG")
    p.add_argument("--uncertainty", default=None,
                   help="also save the per-voxel uncertainty (needs --samples >= 2): the std "
                        "of the error of the output, calibrated so that output ± 1.96 std "
                        "covers the truth on about 95 %% of head voxels (shipped prior, fast "
                        "sampler, 4x, 4 or 8 samples; else the raw spread of the samples, see "
                        "docs/usage.md)")
    p.add_argument("--slice-correlation", type=float, default=None,
                   help="correlation ρ in [0, 1] of the sampler noise of neighbouring "
                        "slices, so that one sample is consistent across slices (guided "
                        "method; default 0.98, 0: independent slices)")
    p.add_argument("--prior", default=None,
                   help="folder (or prior.safetensors) of an exported prior "
                        "(default: the shipped pretrained prior)")
    p.add_argument("--key", default=None,
                   help="HDF5 dataset (or .npz array) of the k-space (default kspace; with "
                        "--undersampled the only one when a file holds one)")
    u = p.add_argument_group("undersampled k-space (full grid, zeros where not sampled)")
    u.add_argument("--undersampled", action="store_true",
                   help="the input is undersampled k-space on the full grid (not a "
                        "low-resolution image or k-space block): reconstruct it at its size")
    u.add_argument("--mask", default=None, metavar="FILE",
                   help="sampling mask (.npy, or .h5/.hdf5 with a dataset 'mask'): (H, W), one "
                        "per slice (S, H, W), or fastMRI's 1D (W,) columns / (H,) rows; 0/1 or "
                        "boolean (implies --undersampled; default: a fastMRI file's own 'mask' "
                        "dataset, else where the k-space is non-zero in any coil)")
    u.add_argument("--maps", default=None, metavar="FILE",
                   help="your own coil maps instead of ESPIRiT's from the data: (C, H, W) for "
                        "every slice or (S, C, H, W), in .npy, .h5/.hdf5 (dataset 'maps' or "
                        "'sens_maps') or BART .cfl/.hdr (x, y, z, coils); normalised as ESPIRiT "
                        "gives them (root-sum-of-squares 1 inside the object); implies "
                        "--undersampled")
    u.add_argument("--coils", action="store_true",
                   help="a 3D input is (C, H, W), one slice of C coils (default: (S, H, W) "
                        "single-coil slices; 4D input is always (S, C, H, W))")
    u.add_argument("--voxel-size", type=float, nargs="+", default=None,
                   metavar=("DX", "DY"),
                   help="voxel size in mm for the NIfTI affine: DX [DY [DZ]] (DY defaults to "
                        "DX, the slice spacing DZ to DX; default 1 mm). Prints a warning when "
                        "the in-plane size differs by more than 25 %% from the prior's "
                        "training resolution (1.7-2.0 mm for the shipped prior)")
    p.add_argument("--phase", default=None, choices=PHASE_CHOICES,
                   help="image phase: 'auto' (estimated from the fully sampled k-space "
                        "centre) or 'none' (a real image); default: the library's ('auto' "
                        "with coil maps, 'none' for one coil)")
    p.add_argument("--axis", type=int, default=2, choices=(0, 1, 2),
                   help="slice axis of a 3D NIfTI volume (default 2)")
    p.add_argument("--device", type=int, default=-1, help="-1 for CPU (default), else GPU id")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per network call (default: 4 on the CPU, all slices x "
                        "samples of a run on a GPU; docs/results.md)")
    p.add_argument("--slices-per-run", type=int, default=8,
                   help="slices reconstructed together (default 8)")
    p.add_argument("--intensity-scale", default="slice",
                   help="'slice' (default: one scale per slice, the prior's intensity "
                        "percentile of |zero-filled|), 'volume' (one for the volume) or a "
                        "number (input units that map to 1 in the prior's units)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false",
                   help="run the network in float32 (default: bfloat16 autocast where the "
                        "CPU/GPU runs it fast, 1.8x faster on an AVX-512 CPU with the same "
                        "quality; float32 on AVX2-only CPUs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--resume", action="store_true",
                   help="go on after a kill: reuse the runs kept in OUT.partial/ (each run of "
                        "--slices-per-run slices is kept there until the output is written)")
    p.set_defaults(func=_run)


def _load_prior(args):
    import torch

    from ..prior import load_pretrained
    device = "cpu" if args.device < 0 else f"cuda:{args.device}"
    return load_pretrained(device=torch.device(device), path=args.prior)


def _check_device(device):
    """``ValueError`` unless ``device`` is -1 (CPU) or a GPU that torch and cupy can use."""
    if device == -1:
        return
    if device < -1:
        raise ValueError(f"recon: --device {device}: expected -1 (the CPU) or a GPU id >= 0")
    import torch

    from ..config import cupy_enabled
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device >= n:
        seen = "no CUDA device" if n == 0 else f"{n} CUDA device(s), ids 0-{n - 1}"
        raise ValueError(f"recon: --device {device}: torch sees {seen}; use --device -1 for "
                         f"the CPU")
    if not cupy_enabled():
        raise ValueError(f"recon: --device {device}: the GPU path needs cupy with CUDA "
                         f"(pip install cupy-cuda12x); use --device -1 for the CPU")


def _same_file(a, b):
    """Whether the paths ``a`` and ``b`` name one file (any spelling, symbolic or hard
    links included)."""
    import os

    def cfl(p):                 # a BART pair is one file: NAME.cfl and NAME.hdr
        s = str(p)
        return s[:-4] + ".cfl" if s.lower().endswith((".cfl", ".hdr")) else s
    a, b = cfl(a), cfl(b)
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return pathlib.Path(a).resolve() == pathlib.Path(b).resolve()


def _check_outputs(out, png=None, uncertainty=None, inputs=()):
    """Every output path, before any work: suffixes, no folder where a file goes, a
    writable folder, no input file overwritten (``ValueError``, ``IsADirectoryError``,
    ``NotADirectoryError``, ``PermissionError``, each naming the option and the path).

    ``inputs`` are ``(name, path)`` pairs of the files read (the input, the mask)."""
    from .._checks import check_output_path
    named = [("--out", out)] + ([("--uncertainty", uncertainty)] if uncertainty else []) \
        + ([("--png", png)] if png else [])
    for opt, p in named:
        for what, src in inputs:
            if isinstance(src, (str, pathlib.Path)) and _same_file(p, src):
                raise ValueError(f"{opt} {p}: this is the {what} {src}; writing there would "
                                 f"overwrite it: choose another output file")
    for opt, p in named:
        if opt != "--png" and _suffix(p, OUTPUT_SUFFIXES) is None:
            raise ValueError(f"{opt} {p}: unsupported output type; allowed: "
                             f"{', '.join(OUTPUT_SUFFIXES)}")
        check_output_path(opt, p)
    if png:
        ext = pathlib.Path(png).suffix.lower().lstrip(".")
        from matplotlib.backend_bases import FigureCanvasBase
        types = FigureCanvasBase.get_supported_filetypes()
        if ext not in types:
            raise ValueError(f"--png {png}: expected an image file name ending in .png (or "
                             f"{', '.join('.' + t for t in sorted(types) if t != 'png')}), "
                             f"got {('.' + ext) if ext else 'no extension'}")
    check_output_path("--out", progress_dir_for(out), folder=True)
    paths = [pathlib.Path(p).resolve() for _, p in named]
    if len(set(paths)) < len(paths):
        raise ValueError(f"recon: {', '.join(o for o, _ in named)} must name different files, "
                         f"got {', '.join(str(p) for _, p in named)}")


def output_lock(out):
    """The lock of a ``recon`` output (``<out>.lock``, :mod:`mrirecon_vdm._lock`): held while
    the output and its ``<out>.partial/`` are written; a second writer gets
    :class:`~mrirecon_vdm._lock.OutputLocked`."""
    from .._lock import exclusive_lock
    return exclusive_lock(f"{out}.lock", f"--out {out}",
                          hint="wait for that recon to finish (or stop it), or choose "
                               "another --out")


def _check_common(args):
    """Checks of both recon paths that need no input file (the options, the outputs, the
    seed, the device), so that a bad one fails before the prior is loaded or any work."""
    from .._checks import check_seed
    for opt, value, ok, want in (
            ("--steps", args.steps, args.steps is None or args.steps >= 1, "an integer >= 1"),
            ("--samples", args.samples, args.samples >= 1, "an integer >= 1"),
            ("--lamda", args.lamda, 0.0 <= args.lamda <= 1.0, "a number in [0, 1]"),
            ("--eta", args.eta, args.eta is None or 0.0 <= args.eta <= 1.0,
             "a number in [0, 1]"),
            ("--sigma", args.sigma, args.sigma is None or (math.isfinite(args.sigma)
                                                           and args.sigma >= 0),
             "a finite number >= 0"),
            ("--batch-size", args.batch_size, args.batch_size is None or args.batch_size >= 1,
             "an integer >= 1"),
            ("--slices-per-run", args.slices_per_run, args.slices_per_run >= 1,
             "an integer >= 1"),
            ("--slice-correlation", args.slice_correlation, args.slice_correlation is None
             or 0.0 <= args.slice_correlation <= 1.0, "a number in [0, 1]")):
        if not ok:
            raise ValueError(f"recon: {opt}: expected {want}, got {value}")
    if args.eta is not None and args.eta != 1.0 and args.sampler == "fast" \
            and args.renoise != "ddim":
        raise ValueError(f"recon: --eta {args.eta} is the stochasticity of DDIM renoising; "
                         f"add --renoise ddim (the default renoising, fresh, has no eta)")
    if args.renoise == "fresh" and args.sampler != "fast":
        raise ValueError(f"recon: --renoise applies to the fast sampler, got --sampler "
                         f"{args.sampler}")
    _check_outputs(args.out, args.png, args.uncertainty,
                   inputs=[("input", args.input)]
                   + ([("--mask file", args.mask)] if args.mask else [])
                   + ([("--maps file", args.maps)] if getattr(args, "maps", None) else []))
    check_seed("recon --seed", args.seed)
    _check_device(args.device)


def _intensity(args):
    intensity = args.intensity_scale
    if intensity not in ("volume", "slice"):
        try:
            intensity = float(intensity)
        except ValueError:
            raise ValueError(f"recon: --intensity-scale must be 'volume', 'slice' or a number, "
                             f"got {intensity!r}") from None
    return intensity


def _method_options(args):
    """``(method, kwargs)`` of the App: ``--method``, or where it is not given ``pnp`` unless
    an option of the guided sampler is (then ``guided``)."""
    guided_only = [opt for opt, changed in (
        ("--sampler", args.sampler != "fast"), ("--lamda", args.lamda != 1.0),
        ("--eta", args.eta is not None), ("--renoise", args.renoise is not None),
        ("--batch-size", args.batch_size is not None),
        ("--samples", args.samples != 1), ("--uncertainty", args.uncertainty is not None),
        ("--slice-correlation", args.slice_correlation is not None))
        if changed]
    method = args.method
    if method is None:
        method = "guided" if guided_only else "pnp"
    if method == "pnp":
        if guided_only:
            raise ValueError(f"{', '.join(guided_only)} apply to --method guided; --method pnp "
                             f"gives one deterministic reconstruction")
        kw = dict(num_steps=args.steps, sigma=args.sigma, bf16=args.bf16, device=args.device)
    else:
        kw = dict(sampler=args.sampler, num_steps=args.steps, num_samples=args.samples,
                  lamda=args.lamda, sigma=args.sigma, eta=args.eta, renoise=args.renoise,
                  device=args.device, batch_size=args.batch_size, bf16=args.bf16)
        if args.slice_correlation is not None:
            kw["slice_correlation"] = args.slice_correlation
    if args.phase is not None:
        kw["phase"] = args.phase
    return method, kw


def _run(args):
    if args.undersampled or args.mask is not None or args.maps is not None:
        return _run_undersampled(args)
    for given, opt in ((args.coils, "--coils"), (args.voxel_size is not None, "--voxel-size")):
        if given:
            raise ValueError(f"{opt} applies to undersampled k-space (add --undersampled); "
                             f"without it the input is super-resolved")
    method, kw = _method_options(args)
    intensity = _intensity(args)
    _check_common(args)
    kw.update(seed=args.seed, show_pbar=not args.quiet, complex_output=args.complex_output)
    # the input, the target size and the outputs are checked before the prior is loaded
    job = _prepare_sr(args.input, args.out, args.scale, args.size,
                      "kspace" if args.key is None else args.key, args.axis, args.png,
                      args.uncertainty, kw)
    with output_lock(args.out):
        prior = _load_prior(args)
        out = _reconstruct_sr(job, args.out, prior, png=args.png, uncertainty=args.uncertainty,
                              slices_per_run=args.slices_per_run, intensity_scale=intensity,
                              resume=args.resume, method=method, **kw)
    print(out)


def _run_undersampled(args):
    for given, opt in ((args.scale is not None, "--scale"), (args.size is not None, "--size")):
        if given:
            raise ValueError(f"{opt} is for super-resolution; undersampled k-space is "
                             f"reconstructed on its own grid (drop {opt} or --undersampled)")
    args.method, kw = _method_options(args)
    kw.setdefault("phase", None)
    intensity = _intensity(args)
    voxel = _voxel_size(args.voxel_size)
    _check_common(args)
    # read and check the input before loading the prior
    data = read_undersampled(args.input, key=args.key, coils=args.coils, mask=args.mask,
                             maps=args.maps)
    with output_lock(args.out):
        prior = _load_prior(args)
        out = recon_undersampled_file(data, args.out, prior, method=args.method,
                                      voxel_size=voxel, png=args.png,
                                      uncertainty=args.uncertainty,
                                      slices_per_run=args.slices_per_run,
                                      intensity_scale=intensity, resume=args.resume,
                                      seed=args.seed, show_pbar=not args.quiet, lock=False,
                                      complex_output=args.complex_output, **kw)
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
        hint = ""
        if path.name.lower().endswith((".npz", ".cfl", ".hdr")):
            hint = " (full-grid undersampled k-space in .npz or .cfl: add --undersampled)"
        raise ValueError(f"{path}: unsupported input type {''.join(path.suffixes) or '(none)'!r}; "
                         f"allowed: {', '.join(INPUT_SUFFIXES)}{hint}")
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    affine = None
    if suffix in NIFTI_SUFFIXES:
        import nibabel as nib
        try:
            img = nib.load(str(path))
            vol = np.asarray(img.dataobj)
        except Exception as e:
            raise ValueError(f"{path}: could not read NIfTI ({type(e).__name__}: {e})") from e
        if np.iscomplexobj(vol):
            _note(f"{path} holds a complex image ({vol.dtype}); super-resolving its magnitude")
            vol = np.abs(vol)
        vol = vol.astype(np.float32)
        _check_voxels(path, vol)
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
        from ..data.io import load_kspace
        arr = load_kspace(path, key)           # the dataset, complex, named in every error
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
    _check_voxels(path, arr, "k-space entries" if kind == "kspace" else "pixels")
    return kind, arr, None, ndim


def _check_voxels(path, arr, what="voxels"):
    """``ValueError`` naming the file when the input holds NaN or Inf."""
    import numpy as np
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} of {arr.size} {what} are NaN or Inf; "
                         f"expected finite values (replace them first, e.g. with "
                         f"numpy.nan_to_num)")


def _target_size(lr_shape, factor, size):
    if size is not None:
        from .._checks import as_shape
        try:
            hr = as_shape("recon --size", size)
        except ValueError:
            raise ValueError(f"recon: --size expects two positive integers N1 N2, got "
                             f"{' '.join(str(n) for n in size)}") from None
        what = "--size"
    else:
        factor = DEFAULT_SCALE if factor is None else float(factor)
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"recon: --scale must be a finite number > 0, got {factor}")
        big = max(lr_shape) * factor
        if big > MAX_TARGET_SIZE:
            raise ValueError(f"recon: --scale {factor:g} on a {lr_shape[0]} x {lr_shape[1]} "
                             f"input gives a target of about {big:.4g} pixels a side, beyond "
                             f"the limit of {MAX_TARGET_SIZE} (MAX_TARGET_SIZE); use a "
                             f"smaller --scale")
        hr = tuple(int(round(m * factor)) for m in lr_shape)
        what = "--scale"
    if len(hr) != 2 or any(n < m for n, m in zip(hr, lr_shape)):
        raise ValueError(f"recon: {what}: the target size {hr} is smaller than the input "
                         f"{tuple(lr_shape)}; super-resolution needs a target at least as large")
    if max(hr) > MAX_TARGET_SIZE:
        raise ValueError(f"recon: {what}: the target size {hr[0]} x {hr[1]} is beyond the limit "
                         f"of {MAX_TARGET_SIZE} pixels a side (MAX_TARGET_SIZE)")
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
    if suffix == ".cfl":                       # BART: (x, y, z) = (H, W, S), complex64
        from ..data.io import write_cfl
        write_cfl(path, data)
        return path
    from .._atomic import atomic_path
    with atomic_path(path, suffix=suffix) as tmp:
        if suffix == ".npy":
            np.save(tmp, data)
        else:
            import nibabel as nib
            dtype = np.complex64 if np.iscomplexobj(data) else np.float32
            img = nib.Nifti1Image(np.asarray(data, dtype=dtype), affine)
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
               lock=True, **recon_kwargs):
    """Read a low-resolution file, super-resolve it slice by slice, write the result.

    Args:
        input (path): LR image (.nii/.nii.gz/.npy/.png) or LR k-space (.h5/.hdf5/complex .npy).
        out (path): output .nii/.nii.gz/.npy (atomic write).
        prior: the prior (protocol of ``docs/architecture.md``).
        factor (float or None): in-plane upsampling factor (default 4); or
        size (tuple of 2 ints or None): the target in-plane size (at most
            :data:`MAX_TARGET_SIZE` a side).
        key (str): HDF5 dataset name.
        axis (int): slice axis of a 3D NIfTI volume.
        png (path or None): PNG of the middle slice.
        uncertainty (path or None): the per-voxel uncertainty ``GuidedVDMRecon.std`` (same
            format as ``out``; the calibrated std of the error of the output where a
            calibration factor exists, else the spread of the samples), needs
            ``num_samples >= 2``.
        slices_per_run (int): slices per :class:`GuidedVDMRecon` run.
        intensity_scale (str or float): ``"volume"``, ``"slice"`` or a number, see
            :func:`mrirecon_vdm.volume.reconstruct_volume` (``scale``).
        resume (bool): reuse the finished runs kept in ``<out>.partial/``
            (:func:`progress_dir_for`) by an earlier call that was killed; the folder is
            removed once the outputs are written.
        lock (bool): hold ``<out>.lock`` (:func:`output_lock`) while writing, so that a
            second writer of the same output is refused; False when the caller holds it.
        **recon_kwargs: for :func:`mrirecon_vdm.volume.reconstruct_volume`: ``method``
            (``"guided"``, the default of this function, or ``"pnp"``), and the App's options
            (guided: sampler, num_steps, num_samples, lamda, sigma, eta, seed, device,
            batch_size, bf16, show_pbar; pnp: num_steps, sigma, device, bf16, show_pbar).

    Returns:
        pathlib.Path: the output file.

    Raises:
        FileNotFoundError: no input file.
        IsADirectoryError, NotADirectoryError, PermissionError: an output path that cannot
            be written (a folder, a file on the way, a read-only folder), before any work.
        ValueError: unsupported suffix, unreadable file, bad shape, target smaller than the
            input or beyond :data:`MAX_TARGET_SIZE`, ``uncertainty`` with one sample, or any
            check of the App.
        mrirecon_vdm._lock.OutputLocked: another process is writing ``out``.
    """
    import contextlib
    job = _prepare_sr(input, out, factor, size, key, axis, png, uncertainty, recon_kwargs)
    with output_lock(out) if lock else contextlib.nullcontext():
        return _reconstruct_sr(job, out, prior, png=png, uncertainty=uncertainty,
                               slices_per_run=slices_per_run, intensity_scale=intensity_scale,
                               resume=resume, **recon_kwargs)


def _prepare_sr(input, out, factor, size, key, axis, png, uncertainty, recon_kwargs):
    """The checks of :func:`recon_file` that need no prior, and the input read:
    ``(kind, arr, affine, layout, hr_shape)``."""
    _check_outputs(out, png, uncertainty, inputs=[("input", input)])
    if uncertainty is not None and recon_kwargs.get("num_samples", 1) < 2:
        raise ValueError("recon: an uncertainty map needs at least 2 posterior samples "
                         "(--samples 2 or more)")
    kind, arr, affine, layout = _read_input(input, key, axis)
    hr_shape = _target_size(arr.shape[-2:], factor, size)
    return kind, arr, affine, layout, hr_shape


def _reconstruct_sr(job, out, prior, png=None, uncertainty=None, slices_per_run=8,
                    intensity_scale="slice", resume=False, **recon_kwargs):
    """The work of :func:`recon_file` on a prepared job (:func:`_prepare_sr`)."""
    import numpy as np
    import sigpy as sp

    from ..linop import lowres_image_to_kspace
    from ..volume import reconstruct_volume

    kind, arr, affine, layout, hr_shape = job
    lr_shape = arr.shape[-2:]
    if affine is not None:                     # the target voxel size against the prior's
        inplane = [a for a in range(3) if a != layout]
        sizes = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
        target = tuple(float(sizes[a]) * m / n for a, m, n in zip(inplane, lr_shape, hr_shape))
        warning = voxel_size_warning(target, prior, "target")
        if warning:
            _note(warning)
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

    return _write_results(out, x, std, layout_for, new_affine, uncertainty, png, progress,
                          voxel_axes_png=is_nifti)


def _write_results(out, x, std, layout_for, affine, uncertainty, png, progress,
                   voxel_axes_png=False):
    """Write the output and the uncertainty (atomically, in ``layout_for``'s layout), drop
    the progress folder, save the middle slice as a PNG; returns the output's path."""
    path = _atomic_save(out, layout_for(x, out), affine)
    if uncertainty is not None:
        _atomic_save(uncertainty, layout_for(std, uncertainty), affine)
    import shutil
    shutil.rmtree(progress, ignore_errors=True)
    if png is not None:
        import matplotlib.pyplot as plt
        mid = abs(x[x.shape[0] // 2])
        pathlib.Path(png).parent.mkdir(parents=True, exist_ok=True)
        # NIfTI input: voxel axes (i, j) shown with i to the right and j up
        plt.imsave(str(png), mid.T if voxel_axes_png else mid, cmap="gray",
                   origin="lower" if voxel_axes_png else "upper")
    return path


# --------------------------------------------------------------------------- undersampled k-space
def _note(msg):
    print(f"recon: {msg}", file=sys.stderr, flush=True)


def _voxel_size(values):
    """``--voxel-size`` DX [DY [DZ]] -> (DX, DY, DZ) in mm, or None."""
    if values is None:
        return None
    vals = [float(v) for v in values]
    if not 1 <= len(vals) <= 3 or not all(math.isfinite(v) and v > 0 for v in vals):
        raise ValueError(f"recon: --voxel-size takes 1 to 3 sizes in mm > 0 (DX [DY [DZ]]), got "
                         f"{' '.join(str(v) for v in values)}")
    dx = vals[0]
    dy = vals[1] if len(vals) > 1 else dx
    dz = vals[2] if len(vals) > 2 else dx
    return (dx, dy, dz)


def prior_voxel_range(prior):
    """The in-plane voxel sizes (mm) the prior was trained at: ``(lo, hi)`` and where from.

    Read from the prior's ``provenance`` (a ``voxel_mm``, ``voxel_size_mm`` or ``voxel_size``
    entry: a number or a list of them); else :data:`DEFAULT_PRIOR_VOXEL_MM`, the resolutions
    of the shipped data set (``docs/data.md``: 2.0 and 1.7 mm).
    """
    prov = getattr(prior, "provenance", None)
    if isinstance(prov, dict):
        for key in ("voxel_mm", "voxel_size_mm", "voxel_size"):
            v = prov.get(key)
            if v is None:
                continue
            try:
                vals = [float(a) for a in (v if isinstance(v, (list, tuple)) else [v])]
            except (TypeError, ValueError):
                continue
            if vals and all(math.isfinite(a) and a > 0 for a in vals):
                return (min(vals), max(vals)), f"provenance {key}"
    return DEFAULT_PRIOR_VOXEL_MM, "the training data set"


def voxel_size_warning(voxel_size, prior, what="in-plane"):
    """A one-line warning when the in-plane voxel size is more than :data:`VOXEL_TOLERANCE`
    off the prior's training resolution (:func:`prior_voxel_range`), else None (``what``
    names the size in the message: ``"in-plane"``, or ``"target"`` for super-resolution)."""
    if voxel_size is None:
        return None
    (lo, hi), source = prior_voxel_range(prior)
    inplane = tuple(voxel_size[:2])
    if all(lo * (1 - VOXEL_TOLERANCE) <= v <= hi * (1 + VOXEL_TOLERANCE) for v in inplane):
        return None
    size = " x ".join(f"{v:g}" for v in inplane)
    trained = f"{lo:g}-{hi:g}" if lo != hi else f"{lo:g}"
    return (f"warning: the {what} voxel size {size} mm differs by more than "
            f"{VOXEL_TOLERANCE:.0%} from the prior's training resolution ({trained} mm, "
            f"{source}); the prior sees anatomy at another scale, so expect a worse "
            f"reconstruction")


class UndersampledKSpace:
    """Undersampled k-space read and checked by :func:`read_undersampled`.

    Attributes:
        y (array): complex64 ``(S, H, W)`` (one coil) or ``(S, C, H, W)``, zero outside the
            mask.
        mask (array): bool ``(S, H, W)``, one per slice.
        num_coils (int or None): C, or None for one coil.
        slice_axis (bool): whether the input had a slice axis (the output keeps it).
        name (str): the input file, for messages.
        mask_name (str): where the mask came from, for messages.
        maps (array or None): the user's coil maps ``(S, C, H, W)`` complex64 (``--maps``),
            or None (ESPIRiT maps are estimated per slice).
        maps_name (str or None): where the maps came from.
    """

    def __init__(self, y, mask, num_coils, slice_axis, name, mask_name, maps=None,
                 maps_name=None):
        self.y, self.mask, self.num_coils = y, mask, num_coils
        self.slice_axis, self.name, self.mask_name = slice_axis, name, mask_name
        self.maps, self.maps_name = maps, maps_name

    @property
    def shape(self):
        """(S, H, W) of the image."""
        return (self.y.shape[0],) + tuple(self.y.shape[-2:])


def read_undersampled(path, key=None, coils=False, mask=None, maps=None):
    """Read full-grid undersampled k-space (and a mask) and check them.

    Args:
        path (path): ``.npy``, ``.npz``, ``.h5``/``.hdf5`` or BART ``.cfl``/``.hdr``
            (:func:`mrirecon_vdm.data.io.load_kspace`).
        key (str or None): array / dataset name (default ``kspace``, or the only one).
        coils (bool): a 3D array is ``(C, H, W)``, one slice of C coils (not ``(S, H, W)``).
        mask (path, array or None): ``(H, W)``, ``(S, H, W)``, or 1D ``(W,)`` (columns, as
            fastMRI stores it) or ``(H,)`` (rows) 0/1 mask (a ``.npy`` file, an HDF5 file with
            a dataset ``mask`` or only one, or an array); None: the ``mask`` dataset of an
            HDF5 input (fastMRI's undersampled files), else read from the data (non-zero in
            any coil).
        maps (path or None): the user's coil maps (``.npy``, HDF5 ``maps``/``sens_maps``,
            BART ``.cfl``), ``(C, H, W)`` or ``(S, C, H, W)``, normalised as ESPIRiT gives
            them; None: ESPIRiT maps from the data.

    Returns:
        UndersampledKSpace

    Raises:
        FileNotFoundError: no input, mask or BART header.
        ValueError: real or non-finite k-space, an unsupported layout, a mask of the wrong
            shape or values, a mask (or slice) that samples nothing, a multi-coil input
            whose fully sampled centre is too small for ESPIRiT (fewer than
            :data:`mrirecon_vdm.coils.ESPIRIT_MIN_CALIB` lines).
    """
    import numpy as np

    from .._checks import check_finite
    from ..coils import ESPIRIT_MIN_CALIB
    from ..data.io import load_kspace
    from ..sampling import calibration_shape

    name = str(path)
    try:
        arr = load_kspace(path, key)
    except ValueError as e:
        if "real dtype" in str(e):
            raise ValueError(f"{e}; --undersampled reads complex k-space (without it an "
                             f"image is super-resolved)") from None
        raise
    check_finite(f"{name}: the k-space", arr)
    is_bart = name.lower().endswith((".cfl", ".hdr"))
    if coils and is_bart:
        raise ValueError(f"recon: --coils: the BART file {name} names its coil dimension "
                         f"(dimension 3) itself; drop --coils")
    if coils and arr.ndim != 3:
        raise ValueError(f"recon: --coils says a 3D input is (C, H, W), but {name} has shape "
                         f"{arr.shape}")
    slice_axis = True
    if arr.ndim == 2:
        arr, slice_axis = arr[None], False
    elif arr.ndim == 3 and coils:
        arr, slice_axis = arr[None], False
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (3, 4):
        raise ValueError(f"{name}: expected k-space (H, W), (S, H, W), (C, H, W) with --coils "
                         f"or (S, C, H, W), got shape {arr.shape}")
    if arr.ndim == 4 and arr.shape[3] < arr.shape[1] and arr.shape[3] < arr.shape[2]:
        shape = arr.shape if slice_axis else arr.shape[1:]
        lead, to = ("slices, ", 1) if slice_axis else ("", 0)
        raise ValueError(f"{name}: shape {shape} reads as ({lead}coils, H, W): {arr.shape[1]} "
                         f"coils of {arr.shape[2]} x {arr.shape[3]}; the last axis looks like "
                         f"the coils ({lead}H, W, coils): store the k-space as ({lead}coils, "
                         f"H, W), e.g. numpy.moveaxis(kspace, -1, {to})")
    num_coils = int(arr.shape[1]) if arr.ndim == 4 else None
    S, H, W = arr.shape[0], arr.shape[-2], arr.shape[-1]

    dropped = zeros_note = None
    if mask is None and name.lower().endswith((".h5", ".hdf5")):
        mask = _fastmri_mask(path)             # a fastMRI file's own ``mask`` dataset, if any
    if mask is not None:
        mask_name = str(mask)
        if isinstance(mask, (str, pathlib.Path)):
            m = _read_mask(mask)
        elif isinstance(mask, tuple):          # (array, name) of the input's own mask
            m, mask_name = mask
        else:
            m, mask_name = np.asarray(mask), "the mask"
        if m.dtype == object or m.dtype.names is not None or np.iscomplexobj(m):
            raise ValueError(f"{mask_name}: --mask must be a real 0/1 or boolean array, got "
                             f"dtype {m.dtype}")
        if m.ndim == 1:                        # fastMRI's 1D masks: (W,) columns, or (H,) rows
            if m.shape[0] == W:
                m = m[None, :]
            elif m.shape[0] == H:
                m = m[:, None]
        ok = m.ndim in (2, 3) and all(a in (1, b) for a, b in zip(m.shape[::-1], (W, H, S)))
        if not ok:
            want = f"({H}, {W})" + (f" or ({S}, {H}, {W})" if S > 1 else "") \
                + f", or 1D ({W},) columns / ({H},) rows"
            raise ValueError(f"{mask_name}: --mask has shape {m.shape}, the k-space {name} needs "
                             f"{want}")
        mf = m.astype(np.float64)
        if not np.all((mf == 0) | (mf == 1)):
            raise ValueError(f"{mask_name}: --mask must hold 0 and 1 only (True/False), got "
                             f"values such as {np.unique(mf[(mf != 0) & (mf != 1)])[:3].tolist()}")
        mask_b = np.broadcast_to(mf != 0, (S, H, W)).copy()
        if not mask_b.any():
            raise ValueError(f"{mask_name}: --mask is all zero (samples nothing)")
        zero = ~(arr != 0).any(axis=1) if arr.ndim == 4 else arr == 0
        held = int((zero & mask_b).sum()) / int(mask_b.sum())
        if held >= MASK_ZERO_WARN:
            zeros_note = (f"--mask {mask_name} marks as sampled {held:.1%} of its entries "
                          f"where {name} holds exact zeros (measured k-space has noise, never "
                          f"exact zeros); they are taken as measured zeros: check the mask")
        outside = np.abs(arr) * (~mask_b if arr.ndim == 3 else ~mask_b[:, None]) > 0
        if outside.any():
            frac = outside.sum() / max(1, int((arr != 0).sum()))
            dropped = (f"--mask {mask_name} leaves out {frac:.1%} of the non-zero k-space "
                       f"samples of {name}; they are set to zero")
            arr = arr * (mask_b if arr.ndim == 3 else mask_b[:, None])
    else:
        from ..sampling import mask_from_kspace
        mask_name = f"the mask read from {name}"
        try:
            mask_b = mask_from_kspace(arr, coil_axis=1 if num_coils else None)
        except ValueError:
            raise ValueError(f"{name}: the k-space is all zero (nothing is sampled)") from None
    empty = [int(s) for s in np.flatnonzero(~mask_b.reshape(S, -1).any(axis=1))]
    if empty:
        raise ValueError(f"{mask_name}: samples nothing in slice(s) {empty[:5]} of {name}")
    maps_arr = None
    if maps is not None:
        maps_arr = _read_maps(maps, name, S, num_coils, H, W)
    elif num_coils is not None:
        for s in range(S):
            c = calibration_shape(mask_b[s])
            if min(c) < ESPIRIT_MIN_CALIB:
                where = f" (slice {s})" if S > 1 else ""
                raise ValueError(f"{mask_name}: the fully sampled k-space centre is only "
                                 f"{c[0]} x {c[1]} lines{where}; ESPIRiT coil maps for the "
                                 f"{num_coils}-coil input need at least {ESPIRIT_MIN_CALIB} x "
                                 f"{ESPIRIT_MIN_CALIB}")
    for note in (dropped, zeros_note):
        if note:
            _note(note)                      # once the input passed every check
    return UndersampledKSpace(arr.astype(np.complex64, copy=False), mask_b, num_coils,
                              slice_axis, name, mask_name, maps_arr,
                              None if maps is None else str(maps))


MAPS_SUFFIXES = (".npy", ".h5", ".hdf5", ".cfl", ".hdr")


def _read_maps(path, kname, S, num_coils, H, W):
    """``--maps``: coil maps ``(C, H, W)`` for every slice or ``(S, C, H, W)`` (``.npy``; HDF5,
    the dataset ``maps`` / ``sens_maps`` or the only one; BART ``.cfl``/``.hdr`` with the
    dimensions of the k-space), checked against the k-space ``kname``: returns
    ``(S, C, H, W)`` complex64."""
    import numpy as np

    from .._checks import check_finite
    from ..linop import check_maps_cover, check_maps_normalised

    name = str(path)
    if num_coils is None:
        raise ValueError(f"--maps {name}: the k-space {kname} has one coil; coil maps need "
                         f"multi-coil k-space ((S, C, H, W), or (C, H, W) with --coils)")
    low = name.lower()
    if not low.endswith(MAPS_SUFFIXES):
        raise ValueError(f"--maps {name}: unsupported file type; allowed: "
                         f"{', '.join(MAPS_SUFFIXES)}")
    if low.endswith((".cfl", ".hdr")):
        from ..data.io import read_cfl_kspace
        m = read_cfl_kspace(path)                  # (z, coils, H, W)
    else:
        p = pathlib.Path(path)
        if not p.exists():
            raise FileNotFoundError(f"no such file: {p} (--maps)")
        try:
            if low.endswith(".npy"):
                m = np.load(p, allow_pickle=False)
            else:
                import h5py
                with h5py.File(p, "r") as f:
                    names = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
                    key = next((k for k in ("maps", "sens_maps") if k in names),
                               names[0] if len(names) == 1 else None)
                    if key is None:
                        raise ValueError(f"no dataset 'maps' or 'sens_maps' and {len(names)} "
                                         f"others: {sorted(names)}")
                    m = np.asarray(f[key][()])
        except Exception as e:
            raise ValueError(f"--maps {name}: could not read the maps ({type(e).__name__}: "
                             f"{e})") from None
    m = np.asarray(m)
    if m.dtype == object or m.dtype.names is not None or m.dtype.kind not in "biufc":
        raise ValueError(f"--maps {name}: expected a numeric array of coil maps, got dtype "
                         f"{m.dtype}")
    if m.ndim == 3:
        m = m[None]
    if m.ndim == 4 and m.shape[0] == 1:        # one set for every slice
        m = np.broadcast_to(m, (S,) + m.shape[1:])
    want = f"({num_coils}, {H}, {W}) or ({S}, {num_coils}, {H}, {W})"
    if m.ndim != 4 or m.shape[0] != S or m.shape[1:] != (num_coils, H, W):
        raise ValueError(f"--maps {name}: shape {np.shape(m)} does not match the k-space "
                         f"{kname} ({num_coils} coils of {H} x {W}, {S} slice(s)): expected "
                         f"{want}")
    m = np.ascontiguousarray(m.astype(np.complex64))
    check_finite(f"--maps {name}", m)
    check_maps_cover(f"--maps {name}", m)
    check_maps_normalised(f"--maps {name}", m)
    return m


MASK_SUFFIXES = (".npy", ".h5", ".hdf5")


def _read_mask(path):
    """A ``--mask`` file: ``.npy``, or HDF5 (the dataset ``mask``, or the only one)."""
    import numpy as np
    mpath = pathlib.Path(path)
    suffix = mpath.suffix.lower()
    if suffix not in MASK_SUFFIXES:
        raise ValueError(f"{mpath}: --mask must be a {', '.join(MASK_SUFFIXES)} file, got "
                         f"{mpath.suffix or '(no suffix)'!r}")
    if not mpath.exists():
        raise FileNotFoundError(f"no such file: {mpath} (--mask)")
    try:
        if suffix == ".npy":
            return np.load(mpath, allow_pickle=False)
        import h5py
        with h5py.File(mpath, "r") as f:
            names = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
            if "mask" in names:
                key = "mask"
            elif len(names) == 1:
                key = names[0]
            else:
                raise ValueError(f"no dataset 'mask' and {len(names)} others: {sorted(names)}")
            return np.asarray(f[key][()])
    except Exception as e:
        raise ValueError(f"{mpath}: could not read the --mask ({type(e).__name__}: "
                         f"{e})") from None


def _fastmri_mask(path):
    """``(mask, name)`` from the ``mask`` dataset of a fastMRI file, or None."""
    import h5py
    import numpy as np
    try:
        with h5py.File(path, "r") as f:
            if "mask" not in f or not isinstance(f["mask"], h5py.Dataset):
                return None
            return np.asarray(f["mask"][()]), f"{path}[mask]"
    except OSError:
        return None


class _Operators:
    """``operator(start, stop)`` for :func:`mrirecon_vdm.volume.reconstruct_slices`:
    :class:`FourierSampling` with the slices' masks and the user's maps (``--maps``) or
    (cached) ESPIRiT maps."""

    def __init__(self, data, device):
        import numpy as np
        import sigpy as sp

        from ..coils import DEFAULT_CALIB_MAX
        from ..sampling import calibration_shape

        self.data, self.device = data, sp.Device(device)
        self.maps = {}
        self.widths = None
        if data.maps is not None:
            _note(f"{data.num_coils} coils: the coil maps of --maps {data.maps_name}")
            self.maps = dict(enumerate(data.maps))
        elif data.num_coils is not None:
            cal = [calibration_shape(m) for m in data.mask]
            self.widths = [min(min(c), DEFAULT_CALIB_MAX) for c in cal]
            lo, hi = min(self.widths), max(self.widths)
            width = f"{lo} x {lo}" if lo == hi else f"{lo} x {lo} to {hi} x {hi}"
            centre = sorted({f"{c[0]} x {c[1]}" for c in cal})
            n = data.shape[0]
            _note(f"{data.num_coils} coils: estimating ESPIRiT coil maps per slice "
                  f"({n} slice{'s' if n > 1 else ''}) from a {width} calibration region (fully "
                  f"sampled k-space centre {', '.join(centre[:3])} lines)")
        self._np = np

    def _slice_maps(self, s):
        if s not in self.maps:
            from ..coils import espirit_maps
            try:
                self.maps[s] = espirit_maps(self.data.y[s], calib=self.widths[s])
            except ValueError as e:
                where = f" slice {s}" if self.data.shape[0] > 1 else ""
                raise ValueError(f"{self.data.name}{where}: {e}") from None
        return self.maps[s]

    def __call__(self, start, stop):
        import sigpy as sp

        from ..linop import FourierSampling
        np = self._np
        d = self.data
        mask = sp.to_device(d.mask[start:stop].astype(np.float32), self.device)
        maps = None
        if d.num_coils is not None:
            maps = np.stack([self._slice_maps(s) for s in range(start, stop)])
            maps = sp.to_device(maps, self.device)
        return FourierSampling((stop - start,) + tuple(d.y.shape[-2:]), mask, maps=maps)

    def fingerprint(self):
        import hashlib
        np = self._np
        fp = {"operator": "FourierSampling",
              "mask_sha256": hashlib.sha256(np.packbits(self.data.mask).tobytes()).hexdigest(),
              "mask_shape": list(self.data.mask.shape), "coils": self.data.num_coils}
        if self.widths is not None:
            fp["maps"] = {"espirit_calib": self.widths}
        elif self.data.maps is not None:
            fp["maps"] = {"sha256": hashlib.sha256(self.data.maps.tobytes()).hexdigest()}
        return fp


def recon_undersampled_file(input, out, prior, key=None, coils=False, mask=None, maps=None,
                            method="guided", voxel_size=None, png=None, uncertainty=None,
                            slices_per_run=8, intensity_scale="slice", resume=False,
                            lock=True, **recon_kwargs):
    """Read undersampled (multi-coil) k-space, reconstruct it slice by slice, write the image.

    Args:
        input (path or UndersampledKSpace): the k-space file (see :func:`read_undersampled`
            and the module docstring for formats and layouts), or what
            :func:`read_undersampled` returned.
        out (path): output ``.npy`` (``(S, H, W)``, or ``(H, W)`` for an input without a slice
            axis) or ``.nii``/``.nii.gz`` (``(H, W, S)``), written atomically.
        prior: the prior (protocol of ``docs/architecture.md``).
        key, coils, mask, maps: for :func:`read_undersampled` (ignored when ``input`` was
            read).
        method (str): ``"guided"`` (:class:`mrirecon_vdm.app.GuidedVDMRecon`) or ``"pnp"``
            (:class:`mrirecon_vdm.pnp.PnPVDMRecon`).
        voxel_size (tuple of 3 floats or None): (DX, DY, DZ) mm for the NIfTI affine
            (default 1 mm); prints :func:`voxel_size_warning` on stderr when it applies.
        png (path or None): PNG of the middle slice.
        uncertainty (path or None): the per-voxel uncertainty ``GuidedVDMRecon.std``
            (guided, needs ``num_samples >= 2``; no calibration factor is stored for
            undersampled operators, so it is the spread of the samples).
        slices_per_run, intensity_scale, resume, lock: as :func:`recon_file` (the finished
            runs are kept in ``<out>.partial/``).
        **recon_kwargs: for the App through :func:`mrirecon_vdm.volume.reconstruct_slices`
            (guided: sampler, num_steps, num_samples, lamda, sigma, eta, phase, seed, device,
            batch_size, bf16, show_pbar; pnp: num_steps, sigma, phase, device, bf16, seed,
            show_pbar).

    Returns:
        pathlib.Path: the output file.
    """
    _check_outputs(out, png, uncertainty,
                   inputs=[("input", input.name if isinstance(input, UndersampledKSpace)
                            else input), ("--mask file", mask), ("--maps file", maps)])
    kw = dict(recon_kwargs)
    if method == "pnp":
        if kw.pop("num_samples", 1) != 1 or uncertainty is not None:
            raise ValueError("recon: --method pnp gives one deterministic reconstruction (no "
                             "posterior samples, no uncertainty); use --method guided")
    elif uncertainty is not None and kw.get("num_samples", 1) < 2:
        raise ValueError("recon: an uncertainty map needs at least 2 posterior samples "
                         "(--samples 2 or more)")
    voxel = _voxel_size(voxel_size) if voxel_size is not None else None
    data = input if isinstance(input, UndersampledKSpace) else \
        read_undersampled(input, key=key, coils=coils, mask=mask, maps=maps)
    warning = voxel_size_warning(voxel, prior)
    if warning:
        _note(warning)
    if voxel is None and _suffix(out, NIFTI_SUFFIXES) is not None:
        _note(f"no voxel size is known for {data.name} (--voxel-size DX [DY [DZ]]): the NIfTI "
              f"{out} is written with 1 mm voxels")
    import contextlib
    with output_lock(out) if lock else contextlib.nullcontext():
        return _reconstruct_undersampled(data, out, prior, method, voxel, png, uncertainty,
                                         slices_per_run, intensity_scale, resume, kw)


def _reconstruct_undersampled(data, out, prior, method, voxel, png, uncertainty,
                              slices_per_run, intensity_scale, resume, kw):
    """The work of :func:`recon_undersampled_file` on checked inputs."""
    import numpy as np
    import sigpy as sp

    from ..volume import reconstruct_slices

    operators = _Operators(data, kw.get("device", -1))
    progress = progress_dir_for(out)
    x, std = reconstruct_slices(data.y, operators, prior, method=method,
                                slices_per_run=slices_per_run, scale=intensity_scale,
                                progress_dir=progress, resume=resume,
                                operator_fingerprint=operators.fingerprint(), **kw)
    x = np.asarray(sp.to_device(x))
    x = x.astype(np.complex64 if np.iscomplexobj(x) else np.float32)
    std = None if std is None else np.asarray(sp.to_device(std), dtype=np.float32)
    affine = np.diag(list(voxel if voxel is not None else (1.0, 1.0, 1.0)) + [1.0])

    def layout_for(v, target):
        if _suffix(target, OUTPUT_SUFFIXES) == ".npy":
            return v if data.slice_axis else v[0]
        return np.moveaxis(v, 0, -1)

    return _write_results(out, x, std, layout_for, affine, uncertainty, png, progress)
