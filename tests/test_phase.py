"""estimate_phase (single coil, crop, SENSE, slices; errors) and smooth_phase."""
import numpy as np
import pytest
import sigpy as sp
import sigpy.mri  # noqa: F401  (sp.mri.linop)

from mrirecon_vdm.coils import birdcage_maps
from mrirecon_vdm.linop import CropFourier, FourierSampling, Phase
from mrirecon_vdm.phase import MIN_CALIBRATION, estimate_phase, smooth_phase
from mrirecon_vdm.sampling import cartesian_mask

H = 32


def blob(shape=(H, H)):
    """A smooth positive object (Gaussian blob) and its support."""
    yy, xx = np.mgrid[:shape[-2], :shape[-1]]
    obj = np.exp(-((yy - shape[-2] / 2) ** 2 + (xx - shape[-1] / 2) ** 2)
                 / (2 * (shape[-2] / 6) ** 2))
    return obj.astype(np.float32), obj > 0.2


def angle_error(a, b, support):
    """Mean absolute wrapped angle difference over the support."""
    return float(np.abs(np.angle(np.exp(1j * (a - b))))[support].mean())


def operators(shape=(H, H)):
    mask = cartesian_mask(shape, 3, center=8, seed=0)
    return {
        "mask": FourierSampling(shape, mask),
        "crop": CropFourier(shape, (12, 12)),
        "sense": FourierSampling(shape, mask, maps=birdcage_maps(shape, 4)),
        "sigpy sense": sp.mri.linop.Sense(birdcage_maps(shape, 4), weights=mask),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", ["mask", "crop", "sense", "sigpy sense"])
def test_estimate_phase_recovers_a_smooth_phase(name, seed):
    A = operators()[name]
    obj, support = blob()
    phi = smooth_phase((H, H), seed=seed)
    y = A(obj * np.exp(1j * phi)).astype(np.complex64)
    est = estimate_phase(y, A)
    assert est.shape == (H, H) and est.dtype == np.float32
    err = angle_error(est, phi, support)
    assert err < 0.15, err
    # a random guess is ~π/2 off on average; the true phase of a different seed too
    assert angle_error(smooth_phase((H, H), seed=seed + 10), phi, support) > 3 * err
    # a global scale of the data does not change the phase
    assert angle_error(estimate_phase(3.0 * y, A), est, support) < 1e-5


def test_estimate_phase_per_slice():
    S = 2
    obj, support = blob()
    phi = smooth_phase((S, H, H), seed=3)
    masks = np.stack([cartesian_mask((H, H), 3, center=8, seed=s) for s in range(S)])
    A = FourierSampling((S, H, H), masks, maps=birdcage_maps((H, H), 4))
    y = A(obj * np.exp(1j * phi)).astype(np.complex64)
    est = estimate_phase(y, A)
    assert est.shape == (S, H, H)
    for s in range(S):
        assert angle_error(est[s], phi[s], support) < 0.15
    # an explicit calibration size
    est6 = estimate_phase(y, A, calib=(6, 6))
    assert angle_error(est6[0], phi[0], support) < 0.2


def test_estimate_phase_errors():
    obj, _ = blob((16, 16))
    no_centre = np.zeros((16, 16), bool)
    no_centre[:, ::2] = True                      # every other column: 8 not in the pattern
    no_centre[:, 8] = False
    A = FourierSampling((16, 16), no_centre)
    with pytest.raises(ValueError, match="fully sampled centre"):
        estimate_phase(A(obj).astype(np.complex64), A)
    narrow = np.zeros((16, 16), bool)
    narrow[:, [0, 3, 7, 8, 9, 12]] = True         # a centre of 3 columns only
    A = FourierSampling((16, 16), narrow)
    with pytest.raises(ValueError, match=rf"\(16, 3\) lines .* at least {MIN_CALIBRATION}"):
        estimate_phase(A(obj).astype(np.complex64), A)
    estimate_phase(A(obj).astype(np.complex64), A, calib=(4, 4))    # forced: allowed
    other = CropFourier((16, 16), (8, 8)) * sp.linop.Identity((16, 16))
    with pytest.raises(ValueError, match="Fourier sampling operator"):
        estimate_phase(other(obj).astype(np.complex64), other)
    B = CropFourier((16, 16), (8, 8))
    with pytest.raises(ValueError, match="already applies a phase"):
        P = B * Phase((16, 16), np.zeros((16, 16)))
        estimate_phase(P(obj).astype(np.complex64), P)
    with pytest.raises(ValueError, match=r"expected y of shape \(8, 8\)"):
        estimate_phase(np.zeros((16, 16), np.complex64), B)


def test_smooth_phase():
    a = smooth_phase((2, 16, 12), seed=0)
    assert a.shape == (2, 16, 12) and a.dtype == np.float32
    np.testing.assert_array_equal(a, smooth_phase((2, 16, 12), seed=0))
    assert not np.array_equal(a, smooth_phase((2, 16, 12), seed=1))
    assert not np.allclose(a[0], a[1])                  # a draw per leading index
    # a (c0 + c1 u + ... + c5 v²) with |c_i| <= 1/2 and |u|, |v| <= 1: |φ| <= 3 a
    for amp in (0.5, np.pi):
        phi = smooth_phase((64, 64), seed=2, amplitude=amp)
        assert np.abs(phi).max() <= 3 * amp + 1e-5
        np.testing.assert_allclose(phi, amp / np.pi * smooth_phase((64, 64), seed=2,
                                                                  amplitude=np.pi), rtol=1e-5,
                                   atol=1e-6)
    # a second-order polynomial: third differences vanish, and it is smooth
    phi = smooth_phase((40, 40), seed=4).astype(np.float64)
    assert np.abs(np.diff(phi, 3, axis=0)).max() < 1e-4
    assert np.abs(np.diff(phi, 1, axis=1)).max() < 0.5
    with pytest.raises(ValueError, match="at least 2"):
        smooth_phase((16,), seed=0)


def test_refine_phase_fixed_point_and_improvement():
    """With the true magnitude the true phase is a fixed point of refine_phase, and a few
    updates bring the calibration-region estimate closer to the truth."""
    from mrirecon_vdm.linop import fourier_structure
    from mrirecon_vdm.phase import apply_phase, refine_phase, refine_window
    yy, xx = np.mgrid[:H, :H] / H
    obj = np.where((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.15,
                   0.6 + 0.3 * np.cos(9 * xx) * np.sin(7 * yy), 0.05).astype(np.float32)
    support = obj > 0.1
    A = FourierSampling((H, H), cartesian_mask((H, H), 3, center=8, seed=0))
    phi = smooth_phase((H, H), seed=5)
    y = A(obj * np.exp(1j * phi)).astype(np.complex64)
    At, _ = apply_phase(phi, y, A)
    st = fourier_structure(At)
    win = refine_window(y, st)
    assert win.shape == (H, H) and win.dtype == np.float32
    same = refine_phase(y, st, obj, win)
    assert angle_error(np.angle(same), phi, support) < 1e-3
    est = estimate_phase(y, A)
    Ae, _ = apply_phase(est, y, A)
    st = fourier_structure(Ae)
    for _ in range(5):
        st.phase = refine_phase(y, st, obj, win)
    assert angle_error(np.angle(st.phase), phi, support) < 0.5 * angle_error(est, phi, support)
    with pytest.raises(ValueError, match="no phase"):
        refine_phase(y, fourier_structure(A), obj, win)


@pytest.mark.parametrize("kind", ["lines", "poisson", "crop", "odd", "coils"])
def test_refine_phase_matches_its_formula(kind):
    """The shift-free computation (A₀ᴴA₀ through ``normal``, the low-pass as F⁻¹ W' F) is
    the documented update with centred FFTs, c = u + A₀ᴴ(y − A₀u), d = LP(c e^{−iφ}), for
    line and 2D masks, a crop, odd sizes and coil maps; with A₀ᴴy passed or not."""
    from mrirecon_vdm.coils import birdcage_maps
    from mrirecon_vdm.linop import CropFourier, FourierStructure, Phase, centred_fft, \
        fourier_structure
    from mrirecon_vdm.phase import refine_phase, refine_window
    from mrirecon_vdm.sampling import poisson_mask
    n = 17 if kind == "odd" else H
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, (n, n)).astype(np.float32)
    phi = smooth_phase((n, n), seed=1)
    if kind == "crop":
        A = CropFourier((n, n), (8, 8))
    elif kind == "poisson":
        A = FourierSampling((n, n), poisson_mask((n, n), 3, seed=0))
    else:
        maps = birdcage_maps((n, n), 4) if kind == "coils" else None
        A = FourierSampling((n, n), cartesian_mask((n, n), 3, center=6, seed=0), maps=maps)
    y = A(x * np.exp(1j * phi)).astype(np.complex64)
    y = y + 0.01 * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))
    y = y.astype(np.complex64)
    e = np.exp(1j * (phi + 0.1 * rng.standard_normal(phi.shape))).astype(np.complex64)
    st = fourier_structure(A * Phase((n, n), np.zeros((n, n), np.float32)))
    st.phase = e
    win = refine_window(y, st)
    st0 = FourierStructure(st.ishape, st.oshape, mask=st.mask, crop=st.crop, maps=st.maps)
    u = x.astype(np.complex64) * e
    c = u + st0.adjoint(y - st0.forward(u))
    d = centred_fft(centred_fft(c * e.conj()) * win, inverse=True)
    ref = e * d / np.abs(d)
    for aty0 in (None, st0.adjoint(y)):
        out = refine_phase(y, st, x, win, aty0=aty0)
        np.testing.assert_allclose(out, ref, atol=2e-5)
