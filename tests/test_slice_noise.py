"""Sampler noise correlated along the slice axis (mrirecon_vdm.slice_noise), its use by the
App and by reconstruct_volume (across runs, resumable), the calibrated .std
(mrirecon_vdm.calibration), and their bad inputs."""
import json

import numpy as np
import pytest
import torch

from mrirecon_vdm import CropFourier, GuidedVDMRecon
from mrirecon_vdm.linop import FourierSampling
from mrirecon_vdm.calibration import TABLE_PATH, calibration_factor, method_key
from mrirecon_vdm.slice_noise import PrecedingRuns, ar1_slices
from mrirecon_vdm.volume import DEFAULT_SLICE_CORRELATION, reconstruct_volume
from killed import Killed
from test_app import H, make_prior


def lag_corr(e, d):
    return float((e[:, d:] * e[:, :-d]).mean())


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_ar1_marginal_is_standard_normal_and_neighbours_correlate_rho(rho):
    eta = torch.randn(4000, 6, 64, generator=torch.Generator().manual_seed(0))
    e = ar1_slices(eta, rho)
    std = e.std(dim=(0, 2))
    assert torch.allclose(std, torch.ones(6), atol=0.01), std
    assert abs(float(e.mean())) < 0.01
    assert lag_corr(e, 1) == pytest.approx(rho, abs=0.01)
    assert lag_corr(e, 2) == pytest.approx(rho ** 2, abs=0.01)


def test_ar1_with_a_preceding_slice_and_numpy():
    rng = np.random.default_rng(0)
    eta, prev = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 5))
    e = ar1_slices(eta, 0.7, previous=prev)
    np.testing.assert_allclose(e[:, 0], 0.7 * prev + np.sqrt(1 - 0.49) * eta[:, 0])
    np.testing.assert_allclose(e[:, 2], 0.7 * e[:, 1] + np.sqrt(1 - 0.49) * eta[:, 2])
    assert ar1_slices(eta, 0.0) is eta                     # independent: untouched


def app(S=4, **kw):
    prior = make_prior()
    x = prior.sample(S, seed=1).astype(np.float32)
    A = CropFourier((S, H, H), (S, 8, 8))
    kw.setdefault("show_pbar", False)
    kw.setdefault("num_steps", 4)
    return GuidedVDMRecon(A(x).astype(np.complex64), A, prior, **kw)


def test_app_draws_correlated_noise_and_independent_by_default():
    e = np.asarray(app(S=5, slice_correlation=0.8, seed=0)._randn((400, 5, H, H)))
    assert e.std() == pytest.approx(1.0, abs=0.01)
    assert lag_corr(e.reshape(400, 5, -1), 1) == pytest.approx(0.8, abs=0.02)
    e0 = np.asarray(app(S=5, seed=0)._randn((400, 5, H, H)))   # the App alone: ρ = 0
    assert abs(lag_corr(e0.reshape(400, 5, -1), 1)) < 0.02


def test_the_chain_continues_exactly_across_runs():
    """Run 1's first slice follows run 0's last one: the concatenated draws of two Apps
    equal the AR(1) of the concatenated innovations, draw after draw."""
    rho, shapes = 0.9, [(2, 3, H, H), (2, 2, H, H)]
    a0 = app(S=3, slice_correlation=rho, seed=11)
    a1 = app(S=2, slice_correlation=rho, seed=22,
             preceding_noise=PrecedingRuns([11], [3], rho, torch.device("cpu")))
    g0, g1 = torch.Generator().manual_seed(11), torch.Generator().manual_seed(22)
    torch.randn((1, 3, H, H), generator=g0)      # the initial noise, drawn when each App
    torch.randn((1, 2, H, H), generator=g1)      # was built (K = 1)
    for _ in range(3):
        got = np.concatenate([np.asarray(a0._randn(shapes[0])),
                              np.asarray(a1._randn(shapes[1]))], axis=1)
        eta = torch.cat([torch.randn(shapes[0], generator=g0),
                         torch.randn(shapes[1], generator=g1)], dim=1)
        np.testing.assert_allclose(got, ar1_slices(eta, rho).numpy(), rtol=1e-5, atol=1e-6)


def volume_problem(S=5):
    prior = make_prior()
    x = prior.sample(S, seed=3).astype(np.float32)
    y = CropFourier((S, H, H), (S, 8, 8))(x).astype(np.complex64)
    return prior, y


def test_volume_default_is_correlated_and_resumes_exactly(tmp_path, kill_at_run):
    import inspect
    assert inspect.signature(reconstruct_volume).parameters["slice_correlation"].default \
        == DEFAULT_SLICE_CORRELATION > 0
    prior, y = volume_problem()
    kw = dict(slices_per_run=2, seed=4, show_pbar=False, num_steps=4)
    full, _ = reconstruct_volume(y, (H, H), prior, **kw)
    indep, _ = reconstruct_volume(y, (H, H), prior, slice_correlation=0.0, **kw)
    np.testing.assert_array_equal(full[0], indep[0])       # slice 0 has no predecessor
    assert np.abs(full[1:] - indep[1:]).max() > 0           # the others follow the chain
    calls = kill_at_run(3)
    with pytest.raises(Killed):
        reconstruct_volume(y, (H, H), prior, progress_dir=tmp_path / "p", **kw)
    calls["die_at"] = None
    resumed, _ = reconstruct_volume(y, (H, H), prior, progress_dir=tmp_path / "p", resume=True,
                                    **kw)
    np.testing.assert_array_equal(resumed, full)
    with pytest.raises(ValueError, match="slice_correlation"):   # another ρ: another job
        reconstruct_volume(y, (H, H), prior, progress_dir=tmp_path / "p", resume=True,
                           slice_correlation=0.5, **kw)


def test_calibration_factor_is_applied_to_std():
    raw = app(num_samples=3, seed=2, calibration=None)
    raw.run()
    assert raw.calibration is None and np.array_equal(raw.std, raw.std_raw)
    cal = app(num_samples=3, seed=2, calibration=2.5)
    cal.run()
    assert cal.calibration == 2.5
    np.testing.assert_array_equal(cal.std_raw, raw.std_raw)
    np.testing.assert_allclose(cal.std, 2.5 * raw.std_raw, rtol=1e-6)
    auto = app(num_samples=3, seed=2)                       # "auto": no entry for this prior
    auto.run()
    assert auto.calibration is None and np.array_equal(auto.std, auto.std_raw)
    one = app(num_samples=1, seed=2, calibration=2.0)
    one.run()
    assert one.std is None and one.std_raw is None


def test_calibration_table_lookup():
    from mrirecon_vdm.prior.pretrained import weights_sha256
    prior = torch.nn.Linear(2, 2)
    table = {"prior_sha256": weights_sha256(prior),
             "entries": [{"method": "fast/crop4x", "num_samples": 4, "factor": 2.5}]}
    A = CropFourier((3, 16, 16), (3, 4, 4))
    assert method_key(A, "fast") == "fast/crop4x"
    assert calibration_factor("auto", prior, A, "fast", 4, table=table) == 2.5
    assert calibration_factor("auto", prior, A, "fast", 8, table=table) is None      # K
    assert calibration_factor("auto", prior, A, "paper", 4, table=table) is None     # sampler
    assert calibration_factor("auto", prior, CropFourier((16, 16), (8, 8)), "fast", 4,
                              table=table) is None                                   # 2x
    assert calibration_factor("auto", torch.nn.Linear(2, 3), A, "fast", 4,
                              table=table) is None                                   # weights
    assert method_key(FourierSampling((16, 16), np.ones((16, 16))), "fast") is None
    assert calibration_factor(3.0, prior, A, "fast", 4, table=table) == 3.0
    assert calibration_factor(None, prior, A, "fast", 4, table=table) is None


def test_shipped_calibration_table_is_well_formed():
    table = json.loads(TABLE_PATH.read_text())
    assert table["target_coverage"] == 0.95 and len(table["prior_sha256"]) == 64
    for e in table["entries"]:
        assert e["method"] in ("fast/crop4x", "fast-fresh/crop4x") and e["num_samples"] >= 2
        assert e["factor"] > 0 and e["measured_on"]
    # both renoisings, K = 4 and 8; fresh renoising's samples spread less (a larger factor)
    f = {(e["method"], e["num_samples"]): e["factor"] for e in table["entries"]}
    assert set(f) == {(m, k) for m in ("fast/crop4x", "fast-fresh/crop4x") for k in (4, 8)}
    assert all(f["fast-fresh/crop4x", k] > f["fast/crop4x", k] for k in (4, 8))


def test_calibration_key_follows_the_renoising(monkeypatch):
    """The App looks its factor up under the sampler it ran: "fast-fresh" (the default),
    "fast" (DDIM renoising) or "paper"."""
    import mrirecon_vdm.calibration as C
    seen = []
    monkeypatch.setattr(C, "calibration_factor", lambda req, prior, A, sampler, k:
                        seen.append(sampler) or 2.0)
    for kw in (dict(), dict(renoise="ddim"), dict(sampler="paper")):
        a = app(num_samples=2, seed=0, **kw)
        a.run()
        assert a.calibration == 2.0 and np.allclose(a.std, 2.0 * a.std_raw)
    assert seen == ["fast-fresh", "fast", "paper"]


@pytest.mark.parametrize("kw, names", [
    (dict(slice_correlation=1.5), "slice_correlation"),
    (dict(slice_correlation=-0.1), "slice_correlation"),
    (dict(calibration=-1.0), "calibration"),
    (dict(calibration="yes"), "calibration"),
    (dict(calibration=float("nan")), "calibration"),
    (dict(preceding_noise=3), "preceding_noise"),
    (dict(batch_size="some"), "batch_size"),
])
def test_bad_app_options(kw, names):
    with pytest.raises(ValueError, match=names) as e:
        app(**kw)
    assert "\n" not in str(e.value) and "got" in str(e.value)


@pytest.mark.parametrize("rho", [1.5, "0.5", None, True])
def test_bad_volume_slice_correlation(rho):
    prior, y = volume_problem(2)
    with pytest.raises(ValueError, match=r"slice_correlation must be a number in \[0, 1\], got"):
        reconstruct_volume(y, (H, H), prior, slice_correlation=rho, show_pbar=False)


def test_default_batch_size_on_the_cpu():
    from mrirecon_vdm.app import DEFAULT_BATCH_SIZE
    assert app().batch_size == DEFAULT_BATCH_SIZE == 4
    assert app(batch_size="all").batch_size is None
    a, b = app(num_samples=3, seed=5, batch_size=1), app(num_samples=3, seed=5, batch_size="all")
    np.testing.assert_allclose(a.run(), b.run(), rtol=1e-5, atol=1e-6)
