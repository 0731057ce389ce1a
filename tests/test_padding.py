"""Any image size for the prior: reflection padding to its downsample factor, cropped back."""
import numpy as np
import pytest
import torch

from mrirecon_vdm.padding import padding_for, predict_eps


class Recorder:
    """A prior that needs multiples of 4 and returns its input (so the crop is visible)."""

    downsample_factor = 4

    def __init__(self):
        self.shapes = []

    def predict_eps(self, z, t):
        assert z.shape[-2] % 4 == 0 and z.shape[-1] % 4 == 0
        self.shapes.append(tuple(z.shape))
        return 2 * z


@pytest.mark.parametrize("shape,pads", [((8, 8), (0, 0, 0, 0)), ((9, 8), (1, 2, 0, 0)),
                                         ((33, 41), (1, 2, 1, 2)), ((6, 7), (1, 1, 0, 1))])
def test_padding_for(shape, pads):
    assert padding_for(shape, 4) == pads


@pytest.mark.parametrize("shape", [(8, 12), (9, 13), (33, 41), (3, 2)])
def test_predict_eps_any_size(shape):
    prior = Recorder()
    z = torch.randn((2, 1) + shape)
    eps = predict_eps(prior, z, torch.zeros(2))
    assert eps.shape == z.shape and torch.equal(eps, 2 * z)        # the crop is exact
    padded = prior.shapes[0][-2:]
    assert all(p % 4 == 0 and 0 <= p - s < 4 for p, s in zip(padded, shape))


def test_the_tiny_vdm_on_an_odd_size_matches_a_hand_padded_call():
    from mrirecon_vdm.prior import VDM, VDMConfig
    torch.manual_seed(0)
    vdm = VDM(VDMConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                        attention_levels=(), norm_groups=4, schedule_features=16)).eval()
    assert vdm.downsample_factor == 2
    z = torch.randn(1, 1, 9, 7)
    t = torch.full((1,), 0.5)
    with torch.inference_mode():
        got = predict_eps(vdm, z, t)
        want = vdm.predict_eps(torch.nn.functional.pad(z, (0, 1, 0, 1), mode="reflect"), t)
    np.testing.assert_allclose(got.numpy(), want[..., :9, :7].numpy(), rtol=1e-5, atol=1e-6)
