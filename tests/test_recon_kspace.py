"""``mrirecon-vdm recon --undersampled``: full-grid undersampled (multi-coil) k-space in every
format, masks, ESPIRiT maps, both methods, resuming, errors; BART ``.cfl`` I/O;
``reconstruct_slices``. Tiny data (32 x 32) with the analytic Gaussian prior."""
import os
import re

import h5py
import nibabel as nib
import numpy as np
import pytest

from mrirecon_vdm import cli
from mrirecon_vdm.coils import ESPIRIT_MIN_CALIB
from mrirecon_vdm._cli.recon import (progress_dir_for, prior_voxel_range,
                                     read_undersampled, recon_undersampled_file,
                                     voxel_size_warning)
from mrirecon_vdm.coils import birdcage_maps
from mrirecon_vdm.data.io import load_kspace, read_cfl, write_cfl
from mrirecon_vdm.linop import FourierSampling
from mrirecon_vdm.sampling import cartesian_mask
from mrirecon_vdm.volume import reconstruct_slices
from test_app import make_prior
from killed import Killed

N = 32
S = 2
C = 4


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def prior():
    return make_prior((N, N))


@pytest.fixture(scope="module")
def images(prior):
    return (prior.sample(S, seed=0) * 5.0).astype(np.float32)        # (S, N, N), any units


@pytest.fixture(scope="module")
def masks():
    return np.stack([cartesian_mask((N, N), 2, center=12, seed=s) for s in range(S)])


@pytest.fixture(scope="module")
def single(images, masks):
    """(S, N, N) single-coil k-space, zeros where not sampled."""
    return FourierSampling((S, N, N), masks)(images).astype(np.complex64)


@pytest.fixture(scope="module")
def multi(images, masks):
    """(S, C, N, N) 4-coil k-space (birdcage maps)."""
    maps = np.stack([birdcage_maps((N, N), C)] * S)
    return FourierSampling((S, N, N), masks, maps=maps)(images).astype(np.complex64)


def to_bart(k):
    """(S, [C,] H, W) -> BART (x, y, z, coils)."""
    k4 = k if k.ndim == 4 else k[:, None]
    return np.transpose(k4, (2, 3, 0, 1))


KW = dict(num_steps=3, seed=0, show_pbar=False)


# ------------------------------------------------------------------------------ BART files
def test_cfl_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((5, 4, 3, 2)) + 1j * rng.standard_normal((5, 4, 3, 2))
         ).astype(np.complex64)
    cfl = write_cfl(tmp_path / "a", a)
    assert cfl == tmp_path / "a.cfl" and (tmp_path / "a.hdr").exists()
    assert (tmp_path / "a.hdr").read_text().splitlines() == ["# Dimensions", "5 4 3 2 "]
    # column-major: the first dimension varies fastest in the file
    raw = np.fromfile(tmp_path / "a.cfl", dtype="<c8")
    np.testing.assert_array_equal(raw[:5], a[:, 0, 0, 0])
    for name in ("a", "a.cfl", "a.hdr"):
        np.testing.assert_array_equal(read_cfl(tmp_path / name), a)
    # trailing singleton dimensions are dropped (BART's readcfl does the same)
    write_cfl(tmp_path / "b.cfl", a[:, :, :1, :1])
    assert read_cfl(tmp_path / "b.cfl").shape == (5, 4)


def test_cfl_agrees_with_bart_python_helpers(tmp_path):
    cfl = pytest.importorskip("bart.cfl")
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((6, 5, 1, 3)) + 1j * rng.standard_normal((6, 5, 1, 3))
         ).astype(np.complex64)
    cfl.writecfl(str(tmp_path / "theirs"), a)
    np.testing.assert_array_equal(read_cfl(tmp_path / "theirs.cfl"), a)
    write_cfl(tmp_path / "ours", a)
    np.testing.assert_array_equal(cfl.readcfl(str(tmp_path / "ours")), a)


def test_cfl_kspace_layout_and_errors(tmp_path, single, multi):
    write_cfl(tmp_path / "m", to_bart(multi))
    np.testing.assert_array_equal(load_kspace(tmp_path / "m.cfl"), multi)   # (z, coils, x, y)
    write_cfl(tmp_path / "s", to_bart(single))
    np.testing.assert_array_equal(load_kspace(tmp_path / "s.hdr"), single)  # one coil: (z, x, y)
    write_cfl(tmp_path / "e", np.ones((4, 4, 1, 1, 2), np.complex64))
    with pytest.raises(ValueError, match=r"dims \[4\]"):
        load_kspace(tmp_path / "e.cfl")
    os.remove(tmp_path / "s.hdr")
    with pytest.raises(FileNotFoundError, match=r"s\.cfl: no BART header s\.hdr"):
        load_kspace(tmp_path / "s.cfl")
    (tmp_path / "m.hdr").write_text("# Dimensions\n32 32 2 5\n")
    with pytest.raises(ValueError, match="need"):
        read_cfl(tmp_path / "m.cfl")


# ------------------------------------------------------------------------------ formats
def test_every_format_gives_the_same_single_coil_result(tmp_path, prior, single, images):
    np.save(tmp_path / "k.npy", single)
    np.savez(tmp_path / "k.npz", kspace=single, other=np.zeros(3))
    np.savez(tmp_path / "only.npz", data=single)
    with h5py.File(tmp_path / "k.h5", "w") as f:      # fastMRI: (slices, H, W)
        f["kspace"] = single
        f["reconstruction_rss"] = np.abs(images)
    write_cfl(tmp_path / "k", to_bart(single))
    outs = {}
    for name in ("k.npy", "k.npz", "only.npz", "k.h5", "k.cfl"):
        out = tmp_path / f"{name}.out.npy"
        assert recon_undersampled_file(tmp_path / name, out, prior, **KW) == out
        outs[name] = np.load(out)
    ref = outs["k.npy"]
    assert ref.shape == (S, N, N) and ref.dtype == np.float32 and np.all(np.isfinite(ref))
    for name, o in outs.items():
        np.testing.assert_array_equal(o, ref, err_msg=name)
    assert rel(ref, images) < 0.3                   # measured 0.12
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".") or p.endswith(".partial")]
    # 2D in, 2D out
    np.save(tmp_path / "one.npy", single[0])
    o = np.load(recon_undersampled_file(tmp_path / "one.npy", tmp_path / "one_out.npy", prior,
                                        **KW))
    assert o.shape == (N, N)


def test_mask_from_data_equals_the_mask_used(tmp_path, single, multi, masks):
    for k in (single, multi):
        np.save(tmp_path / "k.npy", k)
        data = read_undersampled(tmp_path / "k.npy")
        np.testing.assert_array_equal(data.mask, masks.astype(bool))
        assert data.num_coils == (C if k.ndim == 4 else None) and data.slice_axis
    # a given mask: (H, W) for every slice, or one per slice; k-space outside it is dropped
    full = multi.copy()
    full[masks[:, None].repeat(C, 1) == 0] = 1.0          # "samples" outside the mask
    np.save(tmp_path / "full.npy", full)
    np.save(tmp_path / "m.npy", masks)
    data = read_undersampled(tmp_path / "full.npy", mask=tmp_path / "m.npy")
    np.testing.assert_array_equal(data.y, multi)
    np.save(tmp_path / "m0.npy", masks[0].astype(np.uint8))
    data = read_undersampled(tmp_path / "full.npy", mask=tmp_path / "m0.npy")
    np.testing.assert_array_equal(data.mask, np.stack([masks[0]] * S).astype(bool))
    # --coils: a 3D (C, H, W) input is one slice of C coils
    np.save(tmp_path / "c.npy", multi[0])
    data = read_undersampled(tmp_path / "c.npy", coils=True)
    assert data.y.shape == (1, C, N, N) and data.num_coils == C and not data.slice_axis
    assert read_undersampled(tmp_path / "c.npy").num_coils is None     # else (S, H, W)


# ------------------------------------------------------------------------------ multi-coil
def test_four_coils_fastmri_h5_to_nifti(tmp_path, prior, multi, images, capsys):
    with h5py.File(tmp_path / "k.h5", "w") as f:      # fastMRI multi-coil: (slices, coils, H, W)
        f["kspace"] = multi
    out, unc, png = tmp_path / "x.nii.gz", tmp_path / "std.nii.gz", tmp_path / "x.png"
    recon_undersampled_file(tmp_path / "k.h5", out, prior, voxel_size=(1.8, 1.8, 3.0),
                            uncertainty=unc, png=png, num_samples=2, **KW)
    err = capsys.readouterr().err
    assert "4 coils" in err and "ESPIRiT" in err and re.search(r"\d+ x \d+ calibration", err)
    assert "warning" not in err                          # 1.8 mm: the prior's resolution
    img = nib.load(str(out))
    x = np.asarray(img.dataobj)
    assert x.shape == (N, N, S) and png.exists()
    np.testing.assert_allclose(img.affine, np.diag([1.8, 1.8, 3.0, 1.0]))
    std = np.asarray(nib.load(str(unc)).dataobj)
    assert std.shape == x.shape and np.all(std >= 0) and std.max() > 0
    # ESPIRiT maps carry a phase: magnitude against magnitude (phase 'auto', σ estimated)
    assert rel(np.abs(np.moveaxis(x, -1, 0)), np.abs(images)) < 0.5
    # BART file of the same data: same result
    write_cfl(tmp_path / "k", to_bart(multi))
    recon_undersampled_file(tmp_path / "k.cfl", tmp_path / "b.nii.gz", prior,
                            voxel_size=(1.8, 1.8, 3.0), num_samples=2, **KW)
    np.testing.assert_array_equal(np.asarray(nib.load(str(tmp_path / "b.nii.gz")).dataobj), x)


def test_pnp_single_and_multi_coil(tmp_path, prior, single, multi, images):
    np.save(tmp_path / "s.npy", single)
    np.save(tmp_path / "m.npy", multi)
    xs = np.load(recon_undersampled_file(tmp_path / "s.npy", tmp_path / "s_out.npy", prior,
                                         method="pnp", num_steps=10, bf16=False,
                                         show_pbar=False))
    assert xs.shape == (S, N, N) and rel(xs, images) < 0.2          # measured 0.11
    xm = np.load(recon_undersampled_file(tmp_path / "m.npy", tmp_path / "m_out.npy", prior,
                                         method="pnp", num_steps=10, slices_per_run=1,
                                         show_pbar=False))
    assert xm.shape == (S, N, N) and rel(np.abs(xm), np.abs(images)) < 0.3   # 0.17
    with pytest.raises(ValueError, match="deterministic"):
        recon_undersampled_file(tmp_path / "s.npy", tmp_path / "o.npy", prior, method="pnp",
                                num_samples=2, show_pbar=False)


def test_reconstruct_slices(prior, single, masks, images):
    def op(start, stop):
        return FourierSampling((stop - start, N, N), masks[start:stop])

    # pnp with per-slice scales: each slice on its own, so the runs do not matter
    kw = dict(method="pnp", num_steps=5, bf16=False, show_pbar=False)
    a, std = reconstruct_slices(single, op, prior, slices_per_run=2, **kw)
    b, _ = reconstruct_slices(single, op, prior, slices_per_run=1, **kw)
    assert std is None
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # guided: per-slice scales by default; "volume" is one scale
    g, _ = reconstruct_slices(single, op, prior, num_steps=3, seed=0, show_pbar=False)
    v, _ = reconstruct_slices(single, op, prior, scale="volume", num_steps=3, seed=0,
                              show_pbar=False)
    assert g.shape == v.shape == (S, N, N) and np.abs(g - v).max() > 0
    p, _ = reconstruct_slices(single, op, prior, scale="volume", **kw)   # one call per run
    assert p.shape == (S, N, N) and np.all(np.isfinite(p))
    with pytest.raises(ValueError, match="does not take num_samples"):
        reconstruct_slices(single, op, prior, method="pnp", num_samples=2)
    with pytest.raises(ValueError, match="expected"):
        reconstruct_slices(single, lambda a, b: FourierSampling((N, N), masks[0]), prior)
    with pytest.raises(ValueError, match="operator_fingerprint"):
        reconstruct_slices(single, op, prior, progress_dir="somewhere")
    with pytest.raises(ValueError, match="method"):
        reconstruct_slices(single, op, prior, method="admm")


def test_resume_after_kill(tmp_path, prior, multi, masks, kill_at_run):
    np.save(tmp_path / "k.npy", multi)
    opts = dict(num_steps=2, seed=3, slices_per_run=1, show_pbar=False)
    full = tmp_path / "full.npy"
    recon_undersampled_file(tmp_path / "k.npy", full, prior, **opts)
    calls = kill_at_run(2)
    out = tmp_path / "out.npy"
    with pytest.raises(Killed):
        recon_undersampled_file(tmp_path / "k.npy", out, prior, **opts)
    partial = progress_dir_for(out)
    assert [p.name for p in partial.glob("run_*.npz")] == ["run_00000.npz"]
    # another mask is another job
    m = masks.copy()
    m[:, :, 0] = True
    np.save(tmp_path / "m.npy", m)
    with pytest.raises(ValueError, match="operator"):
        recon_undersampled_file(tmp_path / "k.npy", out, prior, mask=tmp_path / "m.npy",
                                resume=True, **opts)
    calls.update(n=0, die_at=None)
    recon_undersampled_file(tmp_path / "k.npy", out, prior, resume=True, **opts)
    assert calls["n"] == 1 and not partial.exists()
    np.testing.assert_array_equal(np.load(out), np.load(full))


# ------------------------------------------------------------------------------ voxel size
def test_voxel_size_warning(prior):
    assert prior_voxel_range(prior)[0] == (1.7, 2.0)          # nothing recorded: docs/data.md
    assert voxel_size_warning(None, prior) is None
    assert voxel_size_warning((2.0, 1.7, 5.0), prior) is None  # the slice spacing is not checked
    assert voxel_size_warning((2.5, 2.5, 1.0), prior) is None  # within 25 %
    w = voxel_size_warning((0.5, 0.5, 1.0), prior)
    assert "0.5 x 0.5 mm" in w and "1.7-2 mm" in w and "\n" not in w
    assert voxel_size_warning((2.0, 2.6, 1.0), prior) is not None

    class Recorded:
        provenance = {"voxel_mm": 1.0}
    assert prior_voxel_range(Recorded())[0] == (1.0, 1.0)
    assert voxel_size_warning((1.0, 1.0, 1.0), Recorded()) is None
    assert voxel_size_warning((2.0, 2.0, 1.0), Recorded()) is not None


# ------------------------------------------------------------------------------ command line
@pytest.fixture
def main(prior, monkeypatch):
    monkeypatch.setattr(cli, "SUBCOMMANDS", ("recon",))
    monkeypatch.setattr("mrirecon_vdm.prior.load_pretrained",
                        lambda device="cpu", path=None: prior)

    def run(*argv):
        return cli.main(["recon", *map(str, argv), "--quiet"])
    run.prior = prior
    return run


def test_command_line(tmp_path, main, single, multi, masks, capsys):
    np.save(tmp_path / "m.npy", multi)
    np.save(tmp_path / "mask.npy", masks[0])
    out = tmp_path / "x.nii"
    assert main(tmp_path / "m.npy", "--out", out, "--undersampled", "--steps", "2",
                "--voxel-size", "0.5", "--samples", "2", "--uncertainty", tmp_path / "u.npy",
                "--seed", "1", "--phase", "auto") == 0
    cap = capsys.readouterr()
    assert str(out) in cap.out
    warnings = [line for line in cap.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "0.5 x 0.5 mm" in warnings[0] and "1.7-2 mm" in warnings[0]
    assert "ESPIRiT" in cap.err
    img = nib.load(str(out))
    assert img.shape == (N, N, S) and np.load(tmp_path / "u.npy").shape == (S, N, N)
    np.testing.assert_allclose(img.header.get_zooms(), (0.5, 0.5, 0.5))
    # --mask implies --undersampled; pnp; a 3D single-coil stack
    np.save(tmp_path / "s.npy", single)
    assert main(tmp_path / "s.npy", "--out", tmp_path / "p.npy", "--mask", tmp_path / "mask.npy",
                "--method", "pnp", "--steps", "3") == 0
    assert np.load(tmp_path / "p.npy").shape == (S, N, N)
    # --coils: one slice of 4 coils gives one image
    np.save(tmp_path / "c.npy", multi[0])
    assert main(tmp_path / "c.npy", "--out", tmp_path / "c_out.npy", "--undersampled",
                "--coils", "--steps", "2", "--method", "pnp") == 0
    assert np.load(tmp_path / "c_out.npy").shape == (N, N)
    # help mentions the check
    with pytest.raises(SystemExit):
        cli.main(["recon", "--help"])
    assert "25 %" in capsys.readouterr().out


def test_command_line_errors(tmp_path, main, single, multi, masks, capsys):
    np.save(tmp_path / "s.npy", single)
    np.save(tmp_path / "m.npy", multi)
    np.save(tmp_path / "real.npy", np.abs(single))
    nan = single.copy()
    nan[0, N // 2, N // 2] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "wrong.npy", np.ones((N, N // 2), bool))
    np.save(tmp_path / "zero.npy", np.zeros((N, N), bool))
    np.save(tmp_path / "frac.npy", np.full((N, N), 0.5))
    small = np.zeros((N, N), bool)                       # a centre of 6 < 8 lines
    small[:, N // 2 - 3:N // 2 + 3] = True
    small[:, 1::4] = True
    assert ESPIRIT_MIN_CALIB > 6
    np.save(tmp_path / "small.npy", small)
    write_cfl(tmp_path / "k", to_bart(single))
    os.remove(tmp_path / "k.hdr")
    out = tmp_path / "o.npy"
    cases = [
        (["real.npy", "--undersampled"], ["real.npy", "complex"]),
        (["nan.npy", "--undersampled"], ["nan.npy", "1 NaN/Inf"]),
        (["s.npy", "--mask", "wrong.npy"], ["wrong.npy", "--mask has shape (32, 16)"]),
        (["s.npy", "--mask", "zero.npy"], ["zero.npy", "all zero"]),
        (["s.npy", "--mask", "frac.npy"], ["frac.npy", "0 and 1"]),
        (["m.npy", "--mask", "small.npy"], ["small.npy", "ESPIRiT", "32 x 6 lines"]),
        (["k.cfl", "--undersampled"], ["k.cfl", "k.hdr"]),
        (["s.npy", "--coils"], ["--coils", "--undersampled"]),
        (["s.npy", "--undersampled", "--method", "pnp", "--samples", "2"], ["--samples", "pnp"]),
        (["s.npy", "--undersampled", "--scale", "2"], ["--scale"]),
        (["s.npy", "--undersampled", "--voxel-size", "1", "2", "3", "4"], ["--voxel-size"]),
        (["missing.npy", "--undersampled"], ["no such file", "missing.npy"]),
    ]
    for argv, words in cases:
        argv = [tmp_path / a if a.endswith((".npy", ".cfl")) else a for a in argv]
        rc = main(*argv, "--out", out)
        err = capsys.readouterr().err
        assert rc == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mrirecon-vdm recon: error:"), err
        for w in words:
            assert w in lines[0], (w, lines[0])
    assert not out.exists()


def test_super_resolution_options(tmp_path, main, images, capsys, monkeypatch):
    """Without --undersampled: the default HDF5 key is still ``kspace``, --phase passes through,
    both methods run (plug-and-play unless an option of the guided sampler is given), and the
    undersampled-only options are refused."""
    from mrirecon_vdm.linop import lowres_image_to_kspace
    y = lowres_image_to_kspace(images[:, 8:24, 8:24], (N, N)).astype(np.complex64)
    with h5py.File(tmp_path / "lr.h5", "w") as f:
        f["kspace"] = y
    assert main(tmp_path / "lr.h5", "--out", tmp_path / "a.npy", "--scale", "2",
                "--steps", "2", "--seed", "0") == 0
    assert main(tmp_path / "lr.h5", "--out", tmp_path / "b.npy", "--scale", "2",
                "--steps", "2", "--seed", "0", "--phase", "none") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert np.load(tmp_path / "a.npy").shape == (S, N, N)
    from mrirecon_vdm import app, pnp
    from mrirecon_vdm.volume import reconstruct_volume
    ran = []
    for cls in (app.GuidedVDMRecon, pnp.PnPVDMRecon):
        monkeypatch.setattr(cls, "run", lambda self, real=cls.run: ran.append(type(self).__name__)
                            or real(self))
    assert main(tmp_path / "lr.h5", "--out", tmp_path / "c.npy", "--scale", "2", "--steps",
                "2") == 0
    assert ran == ["PnPVDMRecon"]
    want, _ = reconstruct_volume(y, (N, N), main.prior, method="pnp", num_steps=2,
                                 show_pbar=False)
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), want)
    for extra in (["--method", "guided"], ["--samples", "2"], ["--renoise", "ddim"]):
        ran.clear()
        assert main(tmp_path / "lr.h5", "--out", tmp_path / "d.npy", "--scale", "2", "--steps",
                    "2", "--seed", "0", *extra) == 0
        assert ran == ["GuidedVDMRecon"], extra
    assert main(tmp_path / "lr.h5", "--out", tmp_path / "e.npy", "--scale", "2", "--method",
                "pnp", "--samples", "2") == 2
    assert "--samples apply to --method guided" in capsys.readouterr().err
    assert main(tmp_path / "lr.h5", "--out", tmp_path / "e.npy", "--scale", "2",
                "--voxel-size", "1") == 2
    assert "--undersampled" in capsys.readouterr().err
    np.savez(tmp_path / "k.npz", kspace=y)
    assert main(tmp_path / "k.npz", "--out", tmp_path / "c.npy") == 2
    assert "add --undersampled" in capsys.readouterr().err


def test_default_method_is_pnp_unless_a_guided_option_is_given(tmp_path, main, single, masks,
                                                               monkeypatch):
    from mrirecon_vdm import pnp

    calls = []
    real_run = pnp.PnPVDMRecon.run

    def spy(self):
        calls.append(self)
        return real_run(self)

    monkeypatch.setattr(pnp.PnPVDMRecon, "run", spy)
    np.save(tmp_path / "s.npy", single)
    assert main(tmp_path / "s.npy", "--out", tmp_path / "a.npy", "--undersampled",
                "--steps", "2") == 0
    assert calls                                   # plug-and-play by default
    calls.clear()
    assert main(tmp_path / "s.npy", "--out", tmp_path / "b.npy", "--undersampled",
                "--steps", "2", "--samples", "2") == 0
    assert not calls                               # --samples selects the guided sampler


def test_fastmri_masks(tmp_path, single, masks, capsys):
    """fastMRI keeps a 1D (W,) mask of the sampled columns, in the file as the dataset
    ``mask``: it is read from there, and 1D masks broadcast over the rows ((H,): columns of
    rows)."""
    cols = cartesian_mask((N, N), 2, center=8, seed=1)[0]                 # (W,)
    k = single * cols[None, None, :]
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["kspace"] = k
        f["mask"] = cols
    d = read_undersampled(tmp_path / "f.h5")
    assert d.mask_name.endswith("f.h5[mask]")
    np.testing.assert_array_equal(d.mask, np.broadcast_to(cols, d.mask.shape))
    np.save(tmp_path / "cols.npy", cols.astype(np.float32))
    d2 = read_undersampled(tmp_path / "f.h5", mask=tmp_path / "cols.npy")
    np.testing.assert_array_equal(d2.mask, d.mask)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f["mask"] = cols
    np.testing.assert_array_equal(read_undersampled(tmp_path / "f.h5",
                                                    mask=tmp_path / "m.h5").mask, d.mask)
    rows = cartesian_mask((N, N + 8), 2, center=8, axis=0, seed=2)[:, 0]   # (H,), H != W
    kr = np.ones((N, N + 8), np.complex64) * rows[:, None]
    np.save(tmp_path / "r.npy", kr)
    np.save(tmp_path / "rows.npy", rows)
    got = read_undersampled(tmp_path / "r.npy", mask=tmp_path / "rows.npy").mask[0]
    np.testing.assert_array_equal(got, np.broadcast_to(rows[:, None], (N, N + 8)))
    np.save(tmp_path / "bad.npy", np.ones(N + 3, bool))
    with pytest.raises(ValueError, match=r"bad.npy: --mask has shape \(35,\).*1D \(32,\)"):
        read_undersampled(tmp_path / "f.h5", mask=tmp_path / "bad.npy")


def test_own_coil_maps(tmp_path, main, multi, masks, capsys):
    """``--maps``: the user's maps (.npy, .h5, BART .cfl) replace ESPIRiT's; the result is that
    of the library on FourierSampling with those maps; maps that do not fit are refused."""
    from mrirecon_vdm.volume import reconstruct_slices
    maps = birdcage_maps((N, N), C)
    np.save(tmp_path / "m.npy", multi)
    np.save(tmp_path / "maps.npy", maps)
    with h5py.File(tmp_path / "maps.h5", "w") as f:
        f["sens_maps"] = np.stack([maps] * S)
    write_cfl(tmp_path / "maps", to_bart(maps[None]))
    outs = []
    for f in ("maps.npy", "maps.h5", "maps.cfl"):
        assert main(tmp_path / "m.npy", "--out", tmp_path / f"o_{f}.npy", "--maps", tmp_path / f,
                    "--steps", "2") == 0, capsys.readouterr().err
        assert f"the coil maps of --maps {tmp_path / f}" in capsys.readouterr().err
        outs.append(np.load(tmp_path / f"o_{f}.npy"))
    want, _ = reconstruct_slices(
        multi, lambda a, b: FourierSampling((b - a, N, N), masks[a:b],
                                            maps=np.stack([maps] * (b - a))),
        main.prior, method="pnp", num_steps=2, show_pbar=False)
    for o in outs:
        np.testing.assert_allclose(o, want, rtol=0, atol=1e-5 * np.abs(want).max())
    bad = {"three.npy": maps[:3], "size.npy": maps[:, :, :N - 2], "zero.npy": 0 * maps,
           "scaled.npy": 10 * maps}
    for name, m in bad.items():
        np.save(tmp_path / name, m)
    for name, words in (("three.npy", ["3", "4 coils"]), ("size.npy", ["30", "32 x 32"]),
                        ("zero.npy", ["all zero"]), ("scaled.npy", ["peaks at 10"]),
                        ("none.npy", ["no such file"])):
        assert main(tmp_path / "m.npy", "--out", tmp_path / "x.npy", "--maps",
                    tmp_path / name) == 2
        err = capsys.readouterr().err
        assert name in err and all(w in err for w in words), (name, err)
    np.save(tmp_path / "s.npy", multi[:, 0])
    assert main(tmp_path / "s.npy", "--out", tmp_path / "x.npy", "--undersampled", "--maps",
                tmp_path / "maps.npy") == 2
    assert "one coil" in capsys.readouterr().err
    assert main(tmp_path / "m.npy", "--out", tmp_path / "maps.npy", "--maps",
                tmp_path / "maps.npy") == 2
    assert "overwrite" in capsys.readouterr().err


def test_complex_output(tmp_path, main, single, images):
    """``--complex``: m·e^{iφ} (NIfTI complex64, .npy, BART .cfl) whose magnitude is the
    default output; ``.complex_image`` of PnPVDMRecon is the same."""
    from mrirecon_vdm.data.io import read_cfl
    from mrirecon_vdm.phase import smooth_phase
    phi = smooth_phase((N, N), seed=3)
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(images * np.exp(1j * phi), axes=(-2, -1)),
                                    norm="ortho"), axes=(-2, -1))
    mask = cartesian_mask((N, N), 2, center=12, seed=0)
    np.save(tmp_path / "k.npy", (k * mask).astype(np.complex64))
    common = ["--undersampled", "--phase", "auto", "--steps", "3"]
    assert main(tmp_path / "k.npy", "--out", tmp_path / "m.npy", *common) == 0
    m = np.load(tmp_path / "m.npy")
    for out in ("c.npy", "c.nii.gz", "c.cfl"):
        assert main(tmp_path / "k.npy", "--out", tmp_path / out, "--complex", *common) == 0
    c = np.load(tmp_path / "c.npy")
    assert c.dtype == np.complex64 and c.shape == m.shape
    np.testing.assert_allclose(np.abs(c), np.abs(m), rtol=1e-5, atol=1e-6 * m.max())
    head = m > 0.3 * m.max()                 # the phase is the estimated one, near the truth
    err = np.angle(c * np.exp(-1j * phi))[head]
    assert np.median(np.abs(err)) < 0.3
    nii = nib.load(tmp_path / "c.nii.gz")
    assert nii.get_data_dtype() == np.complex64
    np.testing.assert_allclose(np.moveaxis(np.asarray(nii.dataobj), -1, 0), c, rtol=1e-6)
    np.testing.assert_allclose(np.moveaxis(read_cfl(tmp_path / "c.cfl"), -1, 0), c, rtol=1e-6)
    # super-resolution without a phase: the complex image is the real one
    from mrirecon_vdm.linop import lowres_image_to_kspace
    np.save(tmp_path / "lr.npy", images[:, 8:24, 8:24])
    for flag, name in (([], "r.npy"), (["--complex"], "rc.npy")):
        assert main(tmp_path / "lr.npy", "--out", tmp_path / name, "--scale", "2", "--steps",
                    "2", *flag) == 0
    rc = np.load(tmp_path / "rc.npy")
    assert rc.dtype == np.complex64 and not rc.imag.any()
    np.testing.assert_array_equal(rc.real, np.load(tmp_path / "r.npy"))


def test_voxel_size_notes(tmp_path, main, single, images, capsys):
    """A super-resolution target far finer than the prior's training voxels gets a warning;
    an undersampled NIfTI output without --voxel-size says that 1 mm is written."""
    lr = images[:, 8:24, 8:24].transpose(1, 2, 0)                     # (16, 16, S)
    for mm, warned in ((3.9, False), (1.0, True)):                    # target 1.95 / 0.5 mm
        nib.save(nib.Nifti1Image(lr, np.diag([mm, mm, 3.0, 1.0])), tmp_path / f"lr{mm}.nii.gz")
        capsys.readouterr()
        assert main(tmp_path / f"lr{mm}.nii.gz", "--out", tmp_path / f"o{mm}.nii.gz",
                    "--scale", "2", "--steps", "2") == 0
        err = capsys.readouterr().err
        assert ("warning: the target voxel size" in err) == warned, err
        if warned:
            assert "0.5 x 0.5 mm" in err
    np.save(tmp_path / "s.npy", single)
    for extra, noted in (([], True), (["--voxel-size", "2"], False)):
        assert main(tmp_path / "s.npy", "--undersampled", "--out", tmp_path / "u.nii.gz",
                    "--steps", "2", *extra) == 0
        assert ("1 mm voxels" in capsys.readouterr().err) == noted
