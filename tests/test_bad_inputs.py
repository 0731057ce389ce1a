"""Every subcommand on a table of bad inputs (the reliability issue, item 8).

Each row runs ``mrirecon-vdm`` in this process and asserts: exit status 2, exactly one
``error:`` line on stderr that names the offending file or option, no ``Traceback``, and, for
the rows marked early, that no work was done before the error (no reconstruction, no
training step, no benchmark method, no data build). The table has :data:`N_KINDS` kinds of
bad input; the one that cannot be early (a training run that diverges) fails at the first
non-finite loss instead.
"""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import namedtuple

import h5py
import numpy as np
import pytest

from mrirecon_vdm import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLDER = ("import sys; from mrirecon_vdm._lock import exclusive_lock\n"
          "with exclusive_lock(sys.argv[1], 'test'):\n"
          "    print('held', flush=True); sys.stdin.read()\n")

Row = namedtuple("Row", "id argv names early setup", defaults=(True, None))


# --------------------------------------------------------------------------- the files
@pytest.fixture(scope="module")
def F(tmp_path_factory):
    """Paths of good and bad files for the table (str values)."""
    from mrirecon_vdm.prior import TrainConfig, VDMConfig, export_pretrained, train
    d = tmp_path_factory.mktemp("bad_inputs")
    rng = np.random.default_rng(0)
    p = {"dir": d}
    with h5py.File(d / "toy.h5", "w") as f:
        f["train/images"] = rng.random((6, 16, 16)).astype(np.float32)
        f["val/images"] = rng.random((2, 16, 16)).astype(np.float32)
    model = VDMConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                      attention_levels=(), norm_groups=4, schedule_features=16)
    config = TrainConfig(data=str(d / "toy.h5"), out_dir=str(d / "run"), model=model,
                         steps=2, batch_size=2, patch_size=16, warmup_steps=0, bf16=False,
                         val_every=0, sample_every=0, save_every=2, progress=False,
                         num_threads=1)
    res = train(config)
    export_pretrained(res.checkpoint, d / "prior", {"data": "random toy images"})
    config.save(str(d / "tiny.json"))
    p["run"] = d / "run"                                   # holds a checkpoint
    # a truncated prior whose prior.json has no checksum, and a mismatched config
    shutil.copytree(d / "prior", d / "trunc_prior")
    meta = json.loads((d / "trunc_prior" / "prior.json").read_text())
    meta.pop("sha256")
    (d / "trunc_prior" / "prior.json").write_text(json.dumps(meta))
    blob = (d / "prior" / "prior.safetensors").read_bytes()
    (d / "trunc_prior" / "prior.safetensors").write_bytes(blob[:len(blob) // 2])
    shutil.copytree(d / "prior", d / "mism_prior")
    meta = json.loads((d / "mism_prior" / "prior.json").read_text())
    meta["model_config"]["base_channels"] = 4
    (d / "mism_prior" / "prior.json").write_text(json.dumps(meta))
    # training configs with bad fields
    good = json.loads((d / "tiny.json").read_text())
    for name, change in (("ten", {"steps": "ten"}), ("unknown", {"stepz": 3}),
                         ("eight", {"model": {**good["model"], "base_channels": "eight"}}),
                         ("bf16", {"bf16": "yes"})):
        (d / f"{name}.json").write_text(json.dumps({**good, **change}))
    (d / "broken.json").write_text("{ not json")
    # data files
    (d / "trunc.h5").write_bytes((d / "toy.h5").read_bytes()[:3000])
    with h5py.File(d / "small.h5", "w") as f:
        f["train/images"] = rng.random((4, 8, 8)).astype(np.float32)
    (d / "notes.txt").write_text("not data")
    (d / "a_file").write_text("a file where a folder should be")
    (d / "a_folder.npy").mkdir()
    (d / "readonly").mkdir()
    np.save(d / "lr.npy", rng.random((8, 8)).astype(np.float32))
    np.save(d / "lr128.npy", rng.random((128, 128)).astype(np.float32))
    (d / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    with h5py.File(d / "k.h5", "w") as f:
        f["raw"] = rng.random((8, 8)).astype(np.complex64)
    full = np.fft.fftshift(np.fft.fft2(rng.random((16, 16)))).astype(np.complex64)
    np.save(d / "kfull.npy", full)
    np.save(d / "mask_bad.npy", np.ones((8, 8), np.float32))
    np.save(d / "slices.npy", rng.random((3, 16, 16)).astype(np.float32))
    np.save(d / "slices15.npy", rng.random((2, 15, 15)).astype(np.float32))
    # inputs an output must not overwrite, and bad NIfTI / fastMRI files
    import nibabel as nib
    lr_nii = rng.random((8, 8, 2)).astype(np.float32)
    nib.save(nib.Nifti1Image(lr_nii, np.eye(4)), d / "lr.nii.gz")
    lr_nii[2, 3, 1] = np.nan
    nib.save(nib.Nifti1Image(lr_nii, np.eye(4)), d / "nan.nii.gz")
    os.link(d / "lr.npy", d / "lr_link.npy")
    (d / "sub").mkdir()
    with h5py.File(d / "k_zero_slices.h5", "w") as f:
        f["kspace"] = np.zeros((0, 4, 16, 16), np.complex64)
    with h5py.File(d / "k_coils_last.h5", "w") as f:
        f["kspace"] = np.moveaxis(np.stack([np.stack([full] * 4)] * 2), 1, -1)
    # a benchmark journal with a NaN metric (the first run's journal, edited)
    assert cli.main(["bench", "--data", str(d / "slices.npy"), "--scales", "2", "--methods",
                     "zero-fill", "--out", str(d / "nanbench")]) == 0
    jpath = d / "nanbench" / "bench.journal.jsonl"
    lines = jpath.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["psnr"] = float("nan")
    lines[2] = json.dumps(entry)
    jpath.write_text("\n".join(lines) + "\n")
    # a recon progress folder of another job
    (d / "other.npy.partial").mkdir()
    (d / "other.npy.partial" / "progress.json").write_text(json.dumps({"y_sha256": "0"}))
    return {k: str(v) for k, v in {**p, **{f.name: f for f in d.iterdir()}}.items()}


@contextlib.contextmanager
def held(path):
    """Another process holds the lock file ``path`` for the block."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": REPO}, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def readonly(path):
    """Make the folder read-only, for root too (root ignores the mode bits)."""
    def setup(monkeypatch, F):
        os.chmod(F[path], 0o555)
        real = os.access
        target = os.path.abspath(F[path])

        def access(p, mode, *a, **k):
            if os.path.abspath(p) == target and mode & os.W_OK:
                return False
            return real(p, mode, *a, **k)
        monkeypatch.setattr(os, "access", access)
    return setup


def vdm_prior(name):
    """The VDM bench methods use the prior ``F[name]``."""
    def setup(monkeypatch, F):
        from mrirecon_vdm.bench import vdm_methods as vm
        monkeypatch.setenv(vm.PRIOR_ENV, F[name])
        monkeypatch.setitem(vm._cache, "prior", None)
        monkeypatch.setitem(vm._cache, "source", None)
    return setup


def lock_of(path_fn):
    return ("lock", path_fn)


def _path(F, name):
    return F[name] if name in F else os.path.join(F["dir"], name)


def recon(*extra, inp="lr.npy", out="out_{id}.npy", prior="prior"):
    return lambda F: ["recon", _path(F, inp), "--out", _path(F, out), "--prior",
                      _path(F, prior), "--quiet", *[F.get(a, a) for a in extra]]


def train_(*extra, config="tiny.json", out="t_{id}"):
    return lambda F: ["train", "--config", _path(F, config), "--out", _path(F, out),
                      *[F.get(a, a) for a in extra]]


def bench(*extra, data="slices.npy", out="b_{id}", methods=("zero-fill",)):
    return lambda F: ["bench", "--data", _path(F, data), "--out", _path(F, out),
                      *[F.get(a, a) for a in extra], "--methods", *methods]


def demo(*extra, prior="prior", out="demo_{id}"):
    return lambda F: ["demo", "--out", _path(F, out), "--prior", _path(F, prior), "--steps",
                      "2", "--samples", "1", *[F.get(a, a) for a in extra]]


ROWS = [
    # ---- data
    Row("data-info-missing", lambda F: ["data", "info", F["dir"] + "/missing.h5"],
        ["missing.h5"]),
    Row("data-info-truncated-h5", lambda F: ["data", "info", F["trunc.h5"]], ["trunc.h5"]),
    Row("data-info-folder", lambda F: ["data", "info", F["readonly"]], ["readonly"]),
    Row("data-info-not-a-dataset", lambda F: ["data", "info", F["toy.h5"]], ["toy.h5"]),
    Row("data-build-out-is-folder", lambda F: ["data", "build", "--out", F["a_folder.npy"]],
        ["--out", "a_folder.npy"]),
    Row("data-build-cache-is-file", lambda F: ["data", "build", "--cache", F["a_file"]],
        ["--cache", "a_file"]),
    # ---- train
    Row("train-config-missing", train_(config="missing.json"), ["missing.json"]),
    Row("train-config-not-json", train_(config="broken.json"), ["broken.json"]),
    Row("train-config-steps-ten", train_(config="ten.json"), ["TrainConfig.steps", "ten"]),
    Row("train-config-unknown-key", train_(config="unknown.json"), ["stepz"]),
    Row("train-config-model-type", train_(config="eight.json"),
        ["VDMConfig.base_channels", "eight"]),
    Row("train-config-bool-type", train_(config="bf16.json"), ["TrainConfig.bf16"]),
    Row("train-lr-inf", train_("--lr", "inf"), ["TrainConfig.lr"]),
    Row("train-lr-negative", train_("--lr", "-1"), ["TrainConfig.lr"]),
    Row("train-seed-negative", train_("--seed", "-1"), ["TrainConfig.seed"]),
    Row("train-seed-huge", train_("--seed", str(2 ** 70)), ["TrainConfig.seed"]),
    Row("train-batch-size-zero", train_("--batch-size", "0"), ["TrainConfig.batch_size"]),
    Row("train-patch-size-odd", train_("--patch-size", "15"), ["TrainConfig.patch_size"]),
    Row("train-data-missing", train_("--data", "nowhere.h5"), ["nowhere.h5"]),
    Row("train-data-truncated-h5", train_("--data", "trunc.h5"), ["trunc.h5"]),
    Row("train-data-wrong-type", train_("--data", "notes.txt"), ["notes.txt"]),
    Row("train-data-too-small", train_("--data", "small.h5"), ["small.h5", "patch_size"]),
    Row("train-init-truncated-prior", train_("--init", "trunc_prior"),
        ["trunc_prior", "prior.safetensors"]),
    Row("train-init-mismatched-prior", train_("--init", "mism_prior"),
        ["mism_prior", "base_channels"]),
    Row("train-init-missing", train_("--init", "no_prior"), ["no_prior"]),
    Row("train-out-is-file", train_(out="a_file"), ["a_file"]),
    Row("train-out-read-only", train_(out="readonly/t"), ["readonly", "not writable"],
        setup=readonly("readonly")),
    Row("train-out-has-checkpoint", train_(out="run"), ["run", "--resume"]),
    Row("train-steps-zero", train_("--steps", "0"), ["--steps", "0", ">= 1"]),
    Row("train-second-writer", train_("--resume", out="run"), ["run", "train.lock"],
        setup=lock_of(lambda F: os.path.join(F["run"], "train.lock"))),
    Row("train-diverges", train_("--lr", "1e6", "--steps", "6", "--save-every", "1"),
        ["diverged", "lr", "train-diverges"], early=False),
    # ---- recon
    Row("recon-input-missing", recon(inp="missing.npy"), ["missing.npy"]),
    Row("recon-input-suffix", recon(inp="notes.txt"), ["notes.txt"]),
    Row("recon-input-corrupt", recon(inp="corrupt.npy"), ["corrupt.npy"]),
    Row("recon-input-h5-key", recon(inp="k.h5"), ["k.h5", "--key"]),
    Row("recon-out-is-folder", recon(out="a_folder.npy"), ["--out", "a_folder.npy"]),
    Row("recon-out-suffix", recon(out="out.mat"), ["--out", "out.mat"]),
    Row("recon-out-under-a-file", recon(out="a_file/out.npy"), ["--out", "a_file"]),
    Row("recon-out-read-only", recon(out="readonly/out.npy"), ["--out", "readonly"],
        setup=readonly("readonly")),
    Row("recon-png-is-folder", recon("--png", "readonly"), ["--png", "readonly"]),
    Row("recon-png-no-extension", recon("--png", "a_png"), ["--png", "a_png"]),
    Row("recon-uncertainty-is-folder", recon("--samples", "2", "--uncertainty",
                                             "a_folder.npy"), ["--uncertainty", "a_folder"]),
    Row("recon-uncertainty-one-sample", recon("--uncertainty", "u.npy"), ["--samples"]),
    Row("recon-scale-inf", recon("--scale", "inf"), ["--scale"]),
    Row("recon-scale-huge", recon("--scale", "1e6"), ["--scale", "2048"]),
    Row("recon-scale-64-on-128", recon("--scale", "64", inp="lr128.npy"),
        ["--scale", "2048"]),
    Row("recon-scale-zero", recon("--scale", "0"), ["--scale"]),
    Row("recon-size-huge", recon("--size", "5000", "5000"), ["--size", "2048"]),
    Row("recon-size-smaller", recon("--size", "4", "4"), ["--size", "smaller"]),
    Row("recon-device-no-gpu", recon("--device", "99"), ["--device 99"]),
    Row("recon-device-negative", recon("--device", "-5"), ["--device -5"]),
    Row("recon-seed-negative", recon("--seed", "-1"), ["--seed"]),
    Row("recon-steps-zero", recon("--steps", "0"), ["--steps"]),
    Row("recon-samples-zero", recon("--samples", "0"), ["--samples"]),
    Row("recon-lamda", recon("--lamda", "2"), ["--lamda"]),
    Row("recon-eta", recon("--eta", "-1"), ["--eta"]),
    Row("recon-eta-fresh", recon("--eta", "0.5"), ["--eta 0.5", "--renoise ddim"]),
    Row("recon-renoise-paper", recon("--renoise", "fresh", "--sampler", "paper"),
        ["--renoise", "--sampler paper"]),
    Row("recon-slice-correlation", recon("--slice-correlation", "1.5"), ["--slice-correlation"]),
    Row("recon-sigma-nan", recon("--sigma", "nan"), ["--sigma"]),
    Row("recon-slices-per-run", recon("--slices-per-run", "0"), ["--slices-per-run"]),
    Row("recon-intensity-scale", recon("--intensity-scale", "bright"), ["--intensity-scale"]),
    Row("recon-prior-truncated", recon(prior="trunc_prior"),
        ["trunc_prior", "prior.safetensors"]),
    Row("recon-prior-mismatched", recon(prior="mism_prior"), ["mism_prior", "base_channels"]),
    Row("recon-prior-missing", recon(prior="noprior"), ["noprior"]),
    Row("recon-coils-without-undersampled", recon("--coils"), ["--coils"]),
    Row("recon-undersampled-real-input", recon("--undersampled", inp="lr.npy"),
        ["lr.npy", "complex"]),
    Row("recon-undersampled-with-scale", recon("--undersampled", "--scale", "2",
                                               inp="kfull.npy"), ["--scale"]),
    Row("recon-mask-shape", recon("--mask", "mask_bad.npy", inp="kfull.npy"),
        ["mask_bad.npy", "--mask"]),
    Row("recon-resume-other-job", recon("--resume", out="other.npy"),
        ["other.npy.partial"]),
    Row("recon-out-is-input", recon(out="lr.npy"), ["--out", "lr.npy", "input", "overwrite"]),
    Row("recon-out-is-input-spelled", lambda F: recon(out=f"./../{os.path.basename(F['dir'])}"
                                                    f"/./lr.npy")(F), ["--out", "overwrite"]),
    Row("recon-out-is-input-hard-link", recon(out="lr_link.npy"), ["lr_link.npy", "overwrite"]),
    Row("recon-out-is-input-nifti", recon(inp="lr.nii.gz", out="lr.nii.gz"),
        ["lr.nii.gz", "overwrite"]),
    Row("recon-out-is-input-kspace", recon("--undersampled", inp="kfull.npy", out="kfull.npy"),
        ["kfull.npy", "overwrite"]),
    Row("recon-out-is-mask", recon("--mask", "mask_bad.npy", inp="kfull.npy",
                                   out="mask_bad.npy"), ["mask_bad.npy", "--mask"]),
    Row("recon-nifti-nan", recon(inp="nan.nii.gz"), ["nan.nii.gz", "1 of 128 voxels", "NaN"]),
    Row("recon-h5-empty", recon("--undersampled", inp="k_zero_slices.h5"),
        ["k_zero_slices.h5", "empty"]),
    Row("recon-h5-coils-last", recon("--undersampled", inp="k_coils_last.h5"),
        ["k_coils_last.h5", "(slices, H, W, coils)", "moveaxis"]),
    Row("recon-coils-on-4d", recon("--undersampled", "--coils", inp="k_coils_last.h5"),
        ["--coils", "k_coils_last.h5"]),
    Row("recon-sigma-negative", recon("--sigma", "-1"), ["--sigma", "-1"]),
    Row("recon-second-writer", recon(out="locked.npy"), ["--out", "locked.npy", "lock"],
        setup=lock_of(lambda F: os.path.join(F["dir"], "locked.npy.lock"))),
    # ---- bench
    Row("bench-plugin-missing", bench("--plugin", "no_such_module"), ["no_such_module"]),
    Row("bench-method-unknown", bench(methods=("zero-fill", "nope")), ["nope"]),
    Row("bench-scales-2-3", bench("--scales", "2", "3"), ["--scales 3"]),
    Row("bench-scales-zero", bench("--scales", "0"), ["--scales 0"]),
    Row("bench-accel-with-sr", bench("--accel", "4"), ["--accel"]),
    Row("bench-data-missing", bench(data="nothing.npy"), ["nothing.npy"]),
    Row("bench-data-truncated-h5", bench(data="trunc.h5"), ["trunc.h5"]),
    Row("bench-prior-truncated", bench(methods=("zero-fill", "vdm-fast-10")),
        ["trunc_prior", "prior.safetensors"], setup=vdm_prior("trunc_prior")),
    Row("bench-json-is-folder", bench("--json", "readonly"), ["--json", "readonly"]),
    Row("bench-out-is-file", bench(out="a_file"), ["--out", "a_file"]),
    Row("bench-out-read-only", bench(out="readonly/b"), ["--out", "readonly"],
        setup=readonly("readonly")),
    Row("bench-seed-negative", bench("--sigma", "0.1", "--seed", "-1"), ["--seed"]),
    Row("bench-sigma-negative", bench("--sigma", "-1"), ["--sigma"]),
    Row("bench-limit-zero", bench("--limit", "0"), ["--limit"]),
    Row("bench-stride-zero", bench("--stride", "0"), ["--stride"]),
    Row("bench-resume-nan-metric", bench("--resume", "--scales", "2", out="nanbench"),
        ["bench.journal.jsonl", "line 3", "psnr"]),
    Row("bench-resume-other-data", bench("--resume", "--scales", "3", data="slices15.npy",
                                         out="nanbench"), ["bench.journal.jsonl", "differs"]),
    Row("bench-coils-small-centre", bench("--task", "cartesian", "--accel", "2", "--coils", "8"),
        ["--center-fraction 0.08", "1 lines of 16", "ESPIRiT", "at least 8"]),
    Row("bench-coils-huge", bench("--task", "cartesian", "--coils", "1000"),
        ["--coils", "1000", "64"]),
    *[Row(f"bench-center-fraction-{v}", bench("--task", "cartesian", "--center-fraction", v),
          ["--center-fraction", v]) for v in ("0", "1", "-1", "nan")],
    Row("bench-poisson-accel-huge", bench("--task", "poisson", "--accel", "1000"),
        ["--accel 1000", "at most", "--center-fraction"]),
    Row("bench-second-writer", bench(out="b_locked"), ["--out", "b_locked", "lock"],
        setup=lock_of(lambda F: os.path.join(F["dir"], "b_locked", "bench.lock"))),
    # ---- demo
    Row("demo-slice", demo("--slice", "99"), ["--slice"]),
    Row("demo-scale", demo("--scale", "3"), ["--scale"]),
    Row("demo-seed", demo("--seed", "-3"), ["--seed"]),
    Row("demo-samples", demo("--samples", "0"), ["--samples"]),
    Row("demo-out-is-file", demo(out="a_file"), ["--out", "a_file"]),
    Row("demo-prior-truncated", demo(prior="trunc_prior"), ["trunc_prior", "prior.safetensors"]),
]
N_KINDS = len(ROWS)
N_EARLY = sum(r.early for r in ROWS)


@pytest.fixture
def work(monkeypatch):
    """Records every start of real work: reconstructions, benchmark methods, training
    steps, data builds."""
    import mrirecon_vdm.data as data
    from mrirecon_vdm import app, pnp
    from mrirecon_vdm.bench import registry
    from mrirecon_vdm.prior import training

    done = []

    def spy(owner, name, record, call_through=True):
        real = getattr(owner, name)

        def wrapper(*a, **k):
            done.append(record)
            if not call_through:
                raise RuntimeError(f"{record} must not run in this test")
            return real(*a, **k)
        monkeypatch.setattr(owner, name, wrapper)

    spy(app.GuidedVDMRecon, "run", "GuidedVDMRecon.run")
    spy(pnp.PnPVDMRecon, "run", "PnPVDMRecon.run")
    spy(registry, "reconstruct", "bench method")
    spy(training, "augment_patches", "training step")
    spy(data, "build_dataset", "data build", call_through=False)
    return done


def test_table_size():
    assert N_KINDS >= 113 and N_EARLY == N_KINDS - 1
    assert len({r.id for r in ROWS}) == N_KINDS


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row, F, work, monkeypatch, capsys):
    monkeypatch.chdir(F["dir"])
    argv = [a.replace("{id}", row.id) for a in row.argv(F)]      # one output per row
    lock = contextlib.nullcontext()
    if isinstance(row.setup, tuple):
        lock = held(row.setup[1](F))
    elif row.setup is not None:
        row.setup(monkeypatch, F)
    capsys.readouterr()
    try:
        with lock:
            start = time.perf_counter()
            try:
                rc = cli.main(argv)
            except Exception as e:           # would be a traceback on the command line
                pytest.fail(f"{' '.join(argv)}: uncaught {type(e).__name__}: {e}")
            elapsed = time.perf_counter() - start
    finally:
        if row.setup is not None and not isinstance(row.setup, tuple):
            os.chmod(F["readonly"], 0o755)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"mrirecon-vdm {argv[0]}: error: "), err
    assert not errors[0].startswith(f"mrirecon-vdm {argv[0]}: error: {argv[0]}:"), err
    for name in row.names:
        assert name in errors[0], (name, errors[0])
    if row.early:
        assert work == [], f"work started before the error: {work}"
        assert elapsed < 30, elapsed


# ----------------------------------------------------------- cases that are not errors
def test_ctrl_c_during_recon_is_one_line(F, monkeypatch, capsys, tmp_path):
    """Ctrl-C in the middle of a reconstruction: one line naming --resume, exit 130."""
    import mrirecon_vdm.volume as volume

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(volume, "reconstruct_volume", interrupted)
    rc = cli.main(["recon", F["lr.npy"], "--out", str(tmp_path / "o.npy"), "--prior",
                   F["prior"], "--quiet"])
    err = capsys.readouterr().err
    assert rc == 130
    assert err.strip().splitlines() == ["mrirecon-vdm recon: interrupted; rerun with --resume"]


def test_complex_nifti_is_super_resolved_as_its_magnitude(F, capsys, tmp_path):
    import nibabel as nib

    rng = np.random.default_rng(5)
    mag = rng.uniform(0.2, 1.0, (8, 8, 1)).astype(np.float32)
    phase = rng.uniform(-np.pi, np.pi, mag.shape)
    nib.save(nib.Nifti1Image((mag * np.exp(1j * phase)).astype(np.complex64), np.eye(4)),
             tmp_path / "c.nii.gz")
    nib.save(nib.Nifti1Image(mag, np.eye(4)), tmp_path / "m.nii.gz")
    outs = []
    for name in ("c", "m"):
        capsys.readouterr()
        assert cli.main(["recon", str(tmp_path / f"{name}.nii.gz"), "--out",
                         str(tmp_path / f"{name}_out.npy"), "--prior", F["prior"], "--steps",
                         "2", "--seed", "0", "--quiet"]) == 0
        notes = [line for line in capsys.readouterr().err.splitlines() if "complex" in line]
        assert len(notes) == (1 if name == "c" else 0), notes
        if notes:
            assert "c.nii.gz" in notes[0] and "magnitude" in notes[0]
        outs.append(np.load(tmp_path / f"{name}_out.npy"))
    # |m e^{iφ}| in complex64 is m to float rounding
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-4 * np.abs(outs[1]).max())


def test_a_mask_marking_exact_zeros_as_sampled_warns(capsys, tmp_path):
    from mrirecon_vdm._cli.recon import read_undersampled

    rng = np.random.default_rng(1)
    k = (rng.standard_normal((16, 16)) + 1j * rng.standard_normal((16, 16))).astype(np.complex64)
    k[:, ::2] = 0                                           # half of the lines not measured
    np.save(tmp_path / "k.npy", k)
    np.save(tmp_path / "ones.npy", np.ones((16, 16), bool))
    np.save(tmp_path / "right.npy", k != 0)
    read_undersampled(str(tmp_path / "k.npy"), mask=str(tmp_path / "ones.npy"))
    err = capsys.readouterr().err
    assert "ones.npy" in err and "50.0%" in err and "exact zeros" in err
    read_undersampled(str(tmp_path / "k.npy"), mask=str(tmp_path / "right.npy"))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("method", ["pnp", "guided"])
def test_any_matrix_size(F, tmp_path, method):
    """An odd matrix (33 x 41, Cartesian 4x) is reconstructed at its size: the prior's network
    sees it padded to its multiple and cropped back; super-resolution to 17 x 17 likewise."""
    from mrirecon_vdm.sampling import cartesian_mask
    rng = np.random.default_rng(2)
    img = rng.uniform(0.2, 1.0, (33, 41))
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(img), norm="ortho"))
    mask = cartesian_mask((33, 41), 4, center=8, seed=0)
    np.save(tmp_path / "k.npy", (k * mask).astype(np.complex64))
    assert cli.main(["recon", str(tmp_path / "k.npy"), "--undersampled", "--out",
                     str(tmp_path / "x.npy"), "--prior", F["prior"], "--steps", "2",
                     "--method", method, "--quiet"]) == 0
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (33, 41) and np.all(np.isfinite(x))
    assert cli.main(["recon", F["lr.npy"], "--size", "17", "17", "--out",
                     str(tmp_path / "sr.npy"), "--prior", F["prior"], "--steps", "2",
                     "--method", method, "--quiet"]) == 0
    assert np.load(tmp_path / "sr.npy").shape == (17, 17)
