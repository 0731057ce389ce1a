"""``mrirecon-vdm recon`` end to end on tiny files, with the analytic Gaussian prior."""
import os

import nibabel as nib
import numpy as np
import pytest

from mrirecon_vdm import cli
from mrirecon_vdm._cli.recon import hr_affine, recon_file
from mrirecon_vdm.gaussian_prior import GaussianPrior, stationary_variance
from mrirecon_vdm.linop import CropFourier, kspace_to_lowres_image, lowres_image_to_kspace
from killed import Killed

H = 16          # HR size of the tests' prior
M = 8           # LR size


@pytest.fixture
def prior():
    return GaussianPrior(np.full((H, H), 0.4), variance=stationary_variance((H, H), 0.03, 2.0))


@pytest.fixture
def lr_volume():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:M, :M]
    vol = np.stack([50 + 40 * np.cos(2 * np.pi * (xx + s) / M) + 5 * rng.standard_normal((M, M))
                    for s in range(3)], axis=-1)                 # (8, 8, 3), slices last
    return vol.astype(np.float32)


@pytest.fixture
def nifti(tmp_path, lr_volume):
    affine = np.array([[-2.0, 0, 0, 90], [0, 2.0, 0, -120], [0, 0, 3.0, -60], [0, 0, 0, 1]])
    path = tmp_path / "lr.nii.gz"
    nib.save(nib.Nifti1Image(lr_volume, affine), str(path))
    return path, affine


def test_nifti_end_to_end(tmp_path, nifti, lr_volume, prior):
    path, affine = nifti
    out = tmp_path / "hr.nii.gz"
    png = tmp_path / "mid.png"
    unc = tmp_path / "std.nii.gz"
    res = recon_file(path, out, prior, factor=2, png=png, uncertainty=unc, num_steps=5,
                     num_samples=2, seed=0, show_pbar=False)
    assert res == out and png.exists() and unc.exists()
    img = nib.load(str(out))
    hr = np.asarray(img.dataobj)
    assert hr.shape == (H, H, 3) and hr.dtype == np.float32
    np.testing.assert_allclose(img.header.get_zooms(), (1.0, 1.0, 3.0))
    # anatomy stays in place: HR voxel 0 sits on LR voxel 0 (even sizes), and the HR voxel
    # at the DFT centre N//2 on the LR centre m//2
    np.testing.assert_allclose(img.affine @ [0, 0, 0, 1], affine @ [0, 0, 0, 1])
    np.testing.assert_allclose(img.affine @ [H // 2, H // 2, 1, 1], affine @ [M // 2, M // 2, 1, 1])
    # intensities in the input's units: the HR result reproduces the LR input
    A = CropFourier((3, H, H), (3, M, M))
    lr_back = kspace_to_lowres_image(A(np.moveaxis(hr, -1, 0)), (H, H)).real
    np.testing.assert_allclose(lr_back, np.moveaxis(lr_volume, -1, 0), atol=1e-3 * lr_volume.max())
    std = np.asarray(nib.load(str(unc)).dataobj)
    assert std.shape == hr.shape and np.all(std >= 0)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]   # no temp files left


def test_other_inputs(tmp_path, lr_volume, prior):
    x_lr = np.moveaxis(lr_volume, -1, 0)                        # (3, 8, 8)
    y = lowres_image_to_kspace(x_lr, (H, H)).astype(np.complex64)
    np.save(tmp_path / "img.npy", x_lr[0])
    np.save(tmp_path / "k.npy", y)
    np.save(tmp_path / "k1.npy", y[0])
    import h5py
    with h5py.File(tmp_path / "k.h5", "w") as f:
        f["raw"] = y
    import matplotlib.pyplot as plt
    plt.imsave(str(tmp_path / "img.png"), x_lr[0], cmap="gray")
    kw = dict(num_steps=3, seed=1, show_pbar=False)
    a = recon_file(tmp_path / "img.npy", tmp_path / "a.npy", prior, size=(H, H), **kw)
    b = recon_file(tmp_path / "k.npy", tmp_path / "b.npy", prior, factor=2, **kw)
    c = recon_file(tmp_path / "k.h5", tmp_path / "c.nii", prior, factor=2, key="raw", **kw)
    d = recon_file(tmp_path / "img.png", tmp_path / "d.npy", prior, factor=2, **kw)
    assert np.load(a).shape == (H, H) and np.load(d).shape == (H, H)      # 2D in, 2D out
    kb = np.load(b)
    assert kb.shape == (3, H, H)
    k1 = recon_file(tmp_path / "k1.npy", tmp_path / "k1_out.npy", prior, factor=2, **kw)
    np.testing.assert_allclose(np.load(k1), np.load(a), rtol=1e-4, atol=1e-3)  # image = k-space
    kc = np.asarray(nib.load(str(c)).dataobj)
    np.testing.assert_allclose(np.moveaxis(kc, -1, 0), kb, rtol=1e-5, atol=1e-4)
    with pytest.raises(KeyError, match="available"):
        recon_file(tmp_path / "k.h5", tmp_path / "e.npy", prior, factor=2, **kw)


def test_errors(tmp_path, nifti, prior):
    path, _ = nifti
    kw = dict(num_steps=2, show_pbar=False)
    with pytest.raises(FileNotFoundError):
        recon_file(tmp_path / "missing.nii.gz", tmp_path / "o.nii.gz", prior, **kw)
    (tmp_path / "x.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"allowed: .nii.gz, .nii, .npy, .png, .h5, .hdf5"):
        recon_file(tmp_path / "x.jpg", tmp_path / "o.nii.gz", prior, **kw)
    with pytest.raises(ValueError, match="allowed: .nii.gz, .nii, .npy"):
        recon_file(path, tmp_path / "o.mat", prior, **kw)
    with pytest.raises(ValueError, match="smaller than the input"):
        recon_file(path, tmp_path / "o.nii.gz", prior, size=(4, 4), **kw)
    with pytest.raises(ValueError, match="at least 2 posterior samples"):
        recon_file(path, tmp_path / "o.nii.gz", prior, factor=2, uncertainty=tmp_path / "u.npy",
                   **kw)
    (tmp_path / "bad.nii").write_bytes(b"not a nifti")
    with pytest.raises(ValueError, match="could not read NIfTI"):
        recon_file(tmp_path / "bad.nii", tmp_path / "o.nii.gz", prior, **kw)


def test_atomic_write_keeps_the_old_output(tmp_path, nifti, prior, monkeypatch):
    path, _ = nifti
    out = tmp_path / "hr.nii.gz"
    out.write_bytes(b"previous result")

    def broken_save(img, filename):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")
    monkeypatch.setattr(nib, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        recon_file(path, out, prior, factor=2, num_steps=2, show_pbar=False)
    assert out.read_bytes() == b"previous result"
    # no torn output; the finished runs are kept for a --resume
    assert sorted(os.listdir(tmp_path)) == ["hr.nii.gz", "hr.nii.gz.partial", "lr.nii.gz"]


def test_hr_affine_for_other_slice_axes():
    aff = np.diag([1.0, 2.0, 3.0, 1.0])
    new = hr_affine(aff, (8, 6), (32, 12), axis=1)       # in-plane axes 0 and 2
    np.testing.assert_allclose(np.diag(new)[:3], [0.25, 2.0, 1.5])
    np.testing.assert_allclose(new @ [16, 0, 6, 1], aff @ [4, 0, 3, 1])


def test_command_line(tmp_path, nifti, prior, monkeypatch, capsys):
    """``mrirecon-vdm recon`` through cli.main, with load_pretrained replaced."""
    path, _ = nifti
    monkeypatch.setattr(cli, "SUBCOMMANDS", ("recon",))     # independent of the others
    calls = {}

    def fake_load_pretrained(device="cpu", path=None):
        calls["path"] = path
        return prior
    monkeypatch.setattr("mrirecon_vdm.prior.load_pretrained", fake_load_pretrained)
    out = tmp_path / "hr.nii"
    rc = cli.main(["recon", str(path), "--out", str(out), "--scale", "2", "--steps", "3",
                   "--samples", "2", "--seed", "0", "--lamda", "1", "--quiet",
                   "--uncertainty", str(tmp_path / "u.nii"), "--prior", "somewhere"])
    assert rc == 0 and out.exists() and calls["path"] == "somewhere"
    assert str(out) in capsys.readouterr().out
    first = np.asarray(nib.load(str(out)).dataobj).copy()
    cli.main(["recon", str(path), "--out", str(out), "--scale", "2", "--steps", "3",
              "--samples", "2", "--seed", "0", "--quiet"])
    np.testing.assert_array_equal(np.asarray(nib.load(str(out)).dataobj), first)
    rc = cli.main(["recon", str(tmp_path / "none.nii"), "--out", str(out), "--quiet"])
    assert rc == 2 and "no such file" in capsys.readouterr().err
    rc = cli.main(["recon", str(path), "--out", str(out), "--size", "4", "4", "--quiet"])
    assert rc == 2 and "smaller than the input" in capsys.readouterr().err
    rc = cli.main(["recon", str(path), "--out", str(out), "--intensity-scale", "bright",
                   "--quiet"])
    assert rc == 2 and "'volume', 'slice' or a number" in capsys.readouterr().err
    for value in ("slice", "80"):
        assert cli.main(["recon", str(path), "--out", str(tmp_path / f"{value}.nii"), "--scale",
                         "2", "--steps", "2", "--intensity-scale", value, "--quiet"]) == 0
    # --renoise ddim (with --eta) gives another output than the default, fresh renoising
    ddim = tmp_path / "ddim.nii"
    assert cli.main(["recon", str(path), "--out", str(ddim), "--scale", "2", "--steps", "3",
                     "--samples", "2", "--seed", "0", "--quiet", "--renoise", "ddim",
                     "--eta", "0.5"]) == 0
    assert not np.allclose(np.asarray(nib.load(str(ddim)).dataobj), first)
    with pytest.raises(SystemExit):
        cli.main(["recon", str(path), "--out", str(out), "--sampler", "ddpm"])


def test_resume_after_kill(tmp_path, nifti, prior, kill_at_run):
    from mrirecon_vdm._cli.recon import progress_dir_for
    path, _ = nifti
    opts = dict(factor=2, num_steps=3, seed=7, slices_per_run=1, show_pbar=False)
    full = tmp_path / "full.npy"
    recon_file(path, full, prior, **opts)
    assert not progress_dir_for(full).exists()           # removed once written

    calls = kill_at_run(3)
    out = tmp_path / "out.npy"
    with pytest.raises(Killed):
        recon_file(path, out, prior, **opts)
    partial = progress_dir_for(out)
    assert not out.exists() and sorted(p.name for p in partial.glob("run_*.npz")) == [
        "run_00000.npz", "run_00001.npz"]
    # another job in the same place is refused, naming what differs
    with pytest.raises(ValueError, match="seed"):
        recon_file(path, out, prior, resume=True, **{**opts, "seed": 8})
    calls.update(n=0, die_at=None)
    recon_file(path, out, prior, resume=True, **opts)
    assert calls["n"] == 1                                 # only the missing run
    np.testing.assert_array_equal(np.load(out), np.load(full))
    assert not partial.exists()
    # without resume a left-over folder is discarded and everything runs
    recon_file(path, out, prior, **{**opts, "slices_per_run": 2})
    assert calls["n"] == 1 + 2


# ----------------------------------------------------- reliability (issue items 6-8, 10)
@pytest.fixture
def runs(monkeypatch):
    """Counts GuidedVDMRecon runs (the reconstruction work)."""
    from mrirecon_vdm import app as app_mod
    real, calls = app_mod.GuidedVDMRecon.run, {"n": 0}

    def run(self):
        calls["n"] += 1
        return real(self)
    monkeypatch.setattr(app_mod.GuidedVDMRecon, "run", run)
    return calls


def test_every_output_is_checked_before_any_work(tmp_path, nifti, prior, runs, monkeypatch):
    path, _ = nifti
    (tmp_path / "folder.nii").mkdir()
    (tmp_path / "a_file").write_text("")
    (tmp_path / "ro").mkdir()
    kw = dict(factor=2, num_steps=2, num_samples=2, show_pbar=False)
    cases = [(dict(out=tmp_path / "folder.nii"), IsADirectoryError, "--out .*is a folder"),
             (dict(png=tmp_path / "ro"), IsADirectoryError, "--png .*is a folder"),
             (dict(png=tmp_path / "mid"), ValueError, "--png .*no extension"),
             (dict(uncertainty=tmp_path / "folder.nii"), IsADirectoryError, "--uncertainty"),
             (dict(out=tmp_path / "a_file" / "o.nii"), NotADirectoryError, "a_file is a file"),
             (dict(uncertainty=tmp_path / "hr.nii"), ValueError, "must name different files")]
    for case, exc, match in cases:
        args = {"out": tmp_path / "hr.nii", **case}
        with pytest.raises(exc, match=match):
            recon_file(path, args.pop("out"), prior, **args, **kw)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if str(p).endswith("ro")
                        and mode & os.W_OK else real(p, mode, *a, **k))   # root writes anyway
    with pytest.raises(PermissionError, match="--out .*ro is not writable"):
        recon_file(path, tmp_path / "ro" / "hr.nii", prior, **kw)
    assert runs["n"] == 0
    assert sorted(os.listdir(tmp_path)) == ["a_file", "folder.nii", "lr.nii.gz", "ro"]


def test_target_size_limit_and_non_finite_scale(tmp_path, prior, runs):
    """``--scale 64`` on a 128 image asked for 8192 x 8192 and died in the allocator; inf and
    1e6 printed tracebacks: all refused at once, naming the limit."""
    import time

    from mrirecon_vdm._cli.recon import MAX_TARGET_SIZE
    np.save(tmp_path / "lr128.npy", np.ones((128, 128), np.float32))
    start = time.perf_counter()
    for factor, match in ((64, f"limit of {MAX_TARGET_SIZE}"), (1e6, "limit"),
                          (float("inf"), "finite"), (float("nan"), "finite"), (0, "> 0")):
        with pytest.raises(ValueError, match=f"--scale.*{match}"):
            recon_file(tmp_path / "lr128.npy", tmp_path / "o.npy", prior, factor=factor)
    with pytest.raises(ValueError, match=f"--size: .*limit of {MAX_TARGET_SIZE}"):
        recon_file(tmp_path / "lr128.npy", tmp_path / "o.npy", prior, size=(4096, 128))
    with pytest.raises(ValueError, match="--size expects two positive integers"):
        recon_file(tmp_path / "lr128.npy", tmp_path / "o.npy", prior, size=(128.5, 128))
    assert time.perf_counter() - start < 10 and runs["n"] == 0


def test_a_second_writer_of_the_same_output_is_refused(tmp_path, nifti, prior, monkeypatch):
    """Two recon runs into one output: the second is refused while the first runs (it
    deleted the first one's .partial/ and the last writer won); the first is unharmed."""
    from mrirecon_vdm import app as app_mod
    from mrirecon_vdm._cli.recon import output_lock, progress_dir_for
    from mrirecon_vdm._lock import OutputLocked
    path, _ = nifti
    opts = dict(factor=2, num_steps=3, seed=7, slices_per_run=1, show_pbar=False)
    full = tmp_path / "full.npy"
    recon_file(path, full, prior, **opts)
    out = tmp_path / "out.npy"
    real, seen = app_mod.GuidedVDMRecon.run, []

    def run(self):
        if not seen:                                   # while the first run is working
            for resume in (False, True):
                with pytest.raises(OutputLocked) as e:
                    recon_file(path, out, prior, resume=resume, **opts)
                seen.append(str(e.value))
            assert progress_dir_for(out).exists()
        return real(self)
    monkeypatch.setattr(app_mod.GuidedVDMRecon, "run", run)
    recon_file(path, out, prior, **opts)
    assert len(seen) == 2 and f"--out {out} is being written by another run" in seen[0]
    np.testing.assert_array_equal(np.load(out), np.load(full))
    assert not os.path.exists(f"{out}.lock")
    # the command line: one line, exit 2, while another process holds the output
    with output_lock(out):
        rc = cli.main(["recon", str(path), "--out", str(out), "--scale", "2", "--quiet"])
    assert rc == 2


def test_a_damaged_run_file_is_reconstructed_again(tmp_path, nifti, prior, kill_at_run):
    """A truncated <out>.partial/run_*.npz on --resume (BadZipFile) is done again, with a
    warning naming it, and the result equals an uninterrupted run."""
    from mrirecon_vdm._cli.recon import progress_dir_for
    path, _ = nifti
    opts = dict(factor=2, num_steps=3, seed=7, slices_per_run=1, show_pbar=False)
    full = tmp_path / "full.npy"
    recon_file(path, full, prior, **opts)
    calls = kill_at_run(3)
    out = tmp_path / "out.npy"
    with pytest.raises(Killed):
        recon_file(path, out, prior, **opts)
    damaged = progress_dir_for(out) / "run_00000.npz"
    blob = damaged.read_bytes()
    damaged.write_bytes(blob[:len(blob) // 2])
    (progress_dir_for(out) / "run_00001.npz").write_bytes(b"not a zip file")
    calls.update(n=0, die_at=None)
    with pytest.warns(RuntimeWarning) as record:
        recon_file(path, out, prior, resume=True, **opts)
    messages = [str(w.message) for w in record]
    for name in ("run_00000.npz", "run_00001.npz"):
        assert any(f"{name}: damaged run file" in m for m in messages), messages
    assert calls["n"] == 3                             # two damaged runs and the missing one
    np.testing.assert_array_equal(np.load(out), np.load(full))
