"""The constrained classical baselines (``real=True``; ``<method>-real`` / ``<method>-phase``
in the benchmark): real iterates, at least as good as the complex image on a real image,
the VDM Apps' phase estimate, the registry, the tasks they run on, the best classical row."""
import numpy as np
import pytest

from mrirecon_vdm import baselines as B
from mrirecon_vdm import metrics
from mrirecon_vdm.config import bart_available
from mrirecon_vdm.linop import FourierSampling
from mrirecon_vdm.phase import smooth_phase
from mrirecon_vdm.sampling import cartesian_mask
from toy_images import disc_slices

needs_bart = pytest.mark.skipif(not bart_available(), reason="BART (binary + mrbart) not installed")
H = 32


@pytest.fixture(scope="module")
def real_task():
    """A real 32 x 32 image, single coil, Cartesian 3x with 8 centre lines, no phase."""
    x = disc_slices(1, H)[0]
    A = FourierSampling((H, H), cartesian_mask((H, H), 3, center=8, seed=1))
    return x, A, A(x.astype(np.complex64)).astype(np.complex64)


@pytest.fixture(scope="module")
def phased_task():
    """The same image with a smooth phase of amplitude 1 rad."""
    x = disc_slices(1, H)[0]
    phi = smooth_phase((H, H), seed=3, amplitude=1.0)
    A = FourierSampling((H, H), cartesian_mask((H, H), 3, center=8, seed=1))
    return x, A, A(x * np.exp(1j * phi)).astype(np.complex64), phi


def sigpy_apps(y, A, **kw):
    return [B.L1WaveletRecon(y, A, lamda=0.003, max_iter=60, **kw),
            B.TVRecon(y, A, lamda=0.003, max_iter=60, **kw)]


def test_real_image_constraint_beats_the_complex_image(real_task):
    x, A, y = real_task
    for free, real in zip(sigpy_apps(y, A), sigpy_apps(y, A, real=True)):
        assert free.constraint is None and real.constraint == "real" and real.phase is None
        assert real.method == free.method + "-real"
        a, b = free.run(), real.run()
        assert not np.iscomplexobj(real._x) and real._x.dtype == np.float32
        assert b.dtype == np.float32 and b.shape == (H, H)
        assert metrics.psnr(x, b, 1) >= metrics.psnr(x, a, 1) + 0.5, free.method


def test_real_image_constraint_after_a_complex_run(real_task):
    """SigPy's numba soft-threshold, once compiled for complex arrays, returns complex
    arrays for real input: the real iterate must not take them (nor change with the order)."""
    x, A, y = real_task
    first = B.L1WaveletRecon(y, A, lamda=0.003, max_iter=10, real=True).run()
    B.L1WaveletRecon(y, A, lamda=0.003, max_iter=10).run()
    np.testing.assert_array_equal(
        B.L1WaveletRecon(y, A, lamda=0.003, max_iter=10, real=True).run(), first)


def test_phase_constraint_recovers_a_phased_image(phased_task):
    x, A, y, phi = phased_task
    for free, known, auto in zip(sigpy_apps(y, A), sigpy_apps(y, A, real=True, phase=phi),
                                 sigpy_apps(y, A, real=True, phase="auto")):
        assert auto.constraint == known.constraint == "phase"
        assert auto.method == free.method + "-phase"
        p_free, p_known, p_auto = (metrics.psnr(x, app.run(), 1) for app in (free, known, auto))
        assert p_known >= p_free + 0.5 and p_auto >= p_free, free.method
        np.testing.assert_array_equal(known.phase, phi.astype(np.float32))


def test_the_phase_is_the_vdm_apps_estimate(phased_task):
    """phase='auto' is the VDM Apps' phase: the same function with the same arguments, so
    the same array, for one coil and for ESPIRiT maps (whose default is 'auto')."""
    from mrirecon_vdm.app import GuidedVDMRecon
    from mrirecon_vdm.gaussian_prior import GaussianPrior, stationary_variance
    from mrirecon_vdm.pnp import PnPVDMRecon

    prior = GaussianPrior(np.full((H, H), 0.4), variance=stationary_variance((H, H), 0.03, 2.0))
    x, A, y, _ = phased_task
    vdm = GuidedVDMRecon(y, A, prior, phase="auto", show_pbar=False)
    # plug-and-play's .phase is its refined phase when it refines: its estimate without
    pnp = PnPVDMRecon(y, A, prior, phase="auto", refine_phase=False, show_pbar=False)
    np.testing.assert_array_equal(vdm.phase, pnp.phase)
    for app in sigpy_apps(y, A, real=True, phase="auto"):
        np.testing.assert_array_equal(app.phase, vdm.phase)
    if bart_available():
        np.testing.assert_array_equal(
            B.BartPicsRecon(y, A, "tv", lamda=0.01, max_iter=5, real=True, phase="auto").phase,
            vdm.phase)
    # coil maps: the default phase of both is "auto"
    from mrirecon_vdm.coils import birdcage_maps, espirit_maps

    mask = cartesian_mask((H, H), 2, center=12, seed=0)
    yc = FourierSampling((H, H), mask, maps=birdcage_maps((H, H), 4))(
        (x * np.exp(1j * phased_task[3])).astype(np.complex64)).astype(np.complex64)
    Ac = FourierSampling((H, H), mask, maps=espirit_maps(yc))
    vdm = GuidedVDMRecon(yc, Ac, prior, show_pbar=False)
    for app in sigpy_apps(yc, Ac, real=True):
        assert app.constraint == "phase"
        np.testing.assert_array_equal(app.phase, vdm.phase)


def test_bad_constraint_options(real_task):
    x, A, y = real_task
    for cls in (B.L1WaveletRecon, B.TVRecon):
        with pytest.raises(ValueError, match="real=True"):
            cls(y, A, lamda=0.01, max_iter=2, phase="auto")
        with pytest.raises(ValueError, match="real must be True or False"):
            cls(y, A, lamda=0.01, max_iter=2, real="yes")
        with pytest.raises(ValueError, match="phase must be None, 'auto', 'none'"):
            cls(y, A, lamda=0.01, max_iter=2, real=True, phase="bogus")
    with pytest.raises(ValueError, match="sigpy-wavelet, sigpy-tv"):
        B.constraint_of("sigpy-tv-complex")
    assert [B.constraint_of(m) for m in ("bart-tv", "bart-tv-real", "sigpy-tv-phase")] == \
        [None, "real", "phase"]


@needs_bart
@pytest.mark.bart
def test_bart_real_value_constraint(real_task, phased_task):
    x, A, y = real_task
    for reg in ("wavelet", "tv"):
        free = B.BartPicsRecon(y, A, reg, lamda=0.003, max_iter=60)
        real = B.BartPicsRecon(y, A, reg, lamda=0.003, max_iter=60, real=True)
        assert real.method == f"bart-{reg}-real"
        assert metrics.psnr(x, real.run(), 1) >= metrics.psnr(x, free.run(), 1) + 0.5, reg
    x, A, y, phi = phased_task
    for reg in ("wavelet", "tv"):
        free = B.BartPicsRecon(y, A, reg, lamda=0.003, max_iter=60)
        known = B.BartPicsRecon(y, A, reg, lamda=0.003, max_iter=60, real=True, phase=phi)
        assert known.method == f"bart-{reg}-phase"
        assert metrics.psnr(x, known.run(), 1) >= metrics.psnr(x, free.run(), 1) + 0.5, reg
    # BART's -c and SigPy's real embedding solve the same problem (TV: the same model)
    sig = B.TVRecon(y, A, lamda=0.003, max_iter=200, real=True, phase=phi).run()
    bart = B.BartPicsRecon(y, A, "tv", lamda=0.003, max_iter=200, real=True, phase=phi).run()
    assert metrics.nrmse(sig, bart) < 0.1


# ----------------------------------------------------------------------- the benchmark
def test_registered_and_listed(capsys):
    from mrirecon_vdm._cli.bench import main
    from mrirecon_vdm.bench import registry as R

    names = [f"{m}-{c}" for c in B.CONSTRAINTS for m in B.UNCONSTRAINED]
    assert all(n in R.METHODS for n in names)
    for n in names:
        m = R.METHODS[n]
        assert m.constraint == B.constraint_of(n) and m.nfe == 0
        assert m.requires_bart == n.startswith("bart")
    assert R.METHODS["sigpy-tv"].constraint is None
    assert main(["--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line]
    assert set(names) <= set(listed)
    with pytest.raises(ValueError, match="constraint must be None or one of real, phase"):
        R.register_method("test-bad", lambda y, A, s: None, constraint="complex")


def test_task_constraint():
    from mrirecon_vdm.bench.tasks import Task

    assert Task("sr").constraint == "real"
    assert Task("cartesian").constraint == "real"
    assert Task("poisson", phase="smooth").constraint == "phase"
    assert Task("cartesian", coils=8).constraint == "phase"


@pytest.mark.parametrize("phase", ["none", "smooth"])
def test_bench_runs_the_constraint_of_the_task(phase):
    from mrirecon_vdm.bench import runner
    from mrirecon_vdm.bench.tasks import Task

    xs = disc_slices(2, H)
    task = Task("cartesian", center_fraction=0.25, phase=phase)
    notes = []
    rows = runner.benchmark(xs, [3], ["zero-fill", "sigpy-tv", "sigpy-tv-real",
                                      "sigpy-tv-phase"], seed=0, log=notes.append, task=task)
    ran = "sigpy-tv-real" if phase == "none" else "sigpy-tv-phase"
    skipped = "sigpy-tv-phase" if phase == "none" else "sigpy-tv-real"
    assert [r["method"] for r in rows] == ["zero-fill", "sigpy-tv", ran]
    assert any(n.startswith(f"note: skipping {skipped}:") for n in notes)


def test_gains_reference_is_the_best_of_all_classical_rows():
    from bench_scripts import load_benchmark

    gains = load_benchmark("gains")
    table = {}
    for i, (free, real, vdm) in enumerate([(30.0, 33.0, 34.0), (31.0, 33.5, 33.0)]):
        table.setdefault(("bart-tv", 4), {})[i] = {"psnr": free, "ssim": 0.8, "nfe": "0"}
        table.setdefault(("bart-tv-real", 4), {})[i] = {"psnr": real, "ssim": 0.7, "nfe": "0"}
        table.setdefault(("vdm-pnp", 4), {})[i] = {"psnr": vdm, "ssim": 0.9, "nfe": "30"}
    (r,) = gains.gains(table, "psnr")
    assert r["reference"] == "bart-tv-real" and r["gain"] == pytest.approx(0.25)
    (r,) = gains.gains(table, "ssim")
    assert r["reference"] == "bart-tv"
