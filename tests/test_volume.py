"""reconstruct_volume (mrirecon_vdm.volume): a stack of slices a few at a time, seeds, the
intensity scale per slice or per volume, errors (resuming: test_recon_cli.py)."""
import numpy as np
import pytest

from mrirecon_vdm.linop import CropFourier, lowres_image_to_kspace
from mrirecon_vdm.volume import reconstruct_volume
from test_app import H, problem  # noqa: F401  (problem: a fixture)


def test_reconstruct_volume(problem):  # noqa: F811
    prior, _, _, _ = problem
    x = prior.sample(5, seed=3).astype(np.float32)
    y = lowres_image_to_kspace(x[:, 4:12, 4:12], (H, H)).astype(np.complex64)
    vol, std = reconstruct_volume(y, (H, H), prior, slices_per_run=2, seed=1, show_pbar=False,
                                  num_steps=5, num_samples=2)
    assert vol.shape == (5, H, H) and std.shape == (5, H, H)
    again, _ = reconstruct_volume(y, (H, H), prior, slices_per_run=2, seed=1, show_pbar=False,
                                  num_steps=5, num_samples=2)
    np.testing.assert_array_equal(vol, again)
    vol1, std1 = reconstruct_volume(y[:1], (H, H), prior, show_pbar=False, num_steps=3)
    assert vol1.shape == (1, H, H) and std1 is None
    # one scale per slice (default) = those scales given explicitly; one per volume differs
    kw = dict(slices_per_run=2, seed=1, show_pbar=False, num_steps=5)
    s_slices = np.abs(CropFourier((5, H, H), y.shape).H(y)).max(axis=(1, 2), keepdims=True)
    np.testing.assert_array_equal(reconstruct_volume(y, (H, H), prior, **kw)[0],
                                  reconstruct_volume(y, (H, H), prior, scale=s_slices, **kw)[0])
    per_volume = reconstruct_volume(y, (H, H), prior, scale="volume", **kw)[0]
    s_vol = np.abs(CropFourier((5, H, H), y.shape).H(y)).max()
    np.testing.assert_array_equal(
        per_volume, reconstruct_volume(y, (H, H), prior, scale=s_vol, **kw)[0])
    assert np.abs(per_volume - reconstruct_volume(y, (H, H), prior, **kw)[0]).max() > 0
    with pytest.raises(ValueError, match=r"\(S, m1, m2\)"):
        reconstruct_volume(y[0], (H, H), prior)
    with pytest.raises(ValueError, match="'volume', 'slice'"):
        reconstruct_volume(y, (H, H), prior, scale="max")
