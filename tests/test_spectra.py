"""benchmarks/spectra.py: the ring-power measure behind the sharpening augmentation."""
import numpy as np
import pytest
from bench_scripts import load_benchmark


@pytest.fixture(scope="module")
def spectra():
    return load_benchmark("spectra")


def test_ring_power_white_vs_smooth(spectra):
    rng = np.random.default_rng(0)
    white = rng.standard_normal((64, 64, 64))
    p = np.array(spectra.ring_power(white))
    assert p.shape == (len(spectra.RINGS),)
    assert np.ptp(p) < 0.1                                   # white noise: flat
    from scipy.ndimage import gaussian_filter
    smooth = gaussian_filter(white, (0, 1.5, 1.5))
    q = np.array(spectra.ring_power(smooth))
    assert np.all(np.diff(q) < 0) and q[-1] < p[-1] - 2      # blurred: falls off towards Nyquist


def test_sharpening_raises_nyquist_power(spectra):
    import torch
    from mrirecon_vdm.prior.augment import sharpen
    from scipy.ndimage import gaussian_filter
    x = gaussian_filter(np.random.default_rng(1).random((32, 64, 64)), (0, 1.0, 1.0)) + 1.0
    xs = sharpen(torch.from_numpy(x)[:, None].float(), torch.full((32,), 2.0))[:, 0].numpy()
    p, q = spectra.ring_power(x), spectra.ring_power(xs)
    assert q[-1] - p[-1] > np.log10(4)                       # gain (1 + a)^2 = 9 at Nyquist
    assert abs(q[0] - p[0]) < 0.2                            # low frequencies about unchanged
