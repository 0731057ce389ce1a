"""The method registry (mrirecon_vdm.bench.registry): the classical methods in order, name
checks, unknown names, a registered method that reports its own NFE."""
import numpy as np
import pytest

from mrirecon_vdm import baselines as B
from mrirecon_vdm.bench import registry as R
from test_baselines import measure, phantom  # noqa: F401  (phantom: a fixture)


def test_registry():
    assert list(R.METHODS)[:6] == ["zero-fill", "bicubic", "sigpy-wavelet", "sigpy-tv",
                                   "bart-wavelet", "bart-tv"]
    with pytest.raises(ValueError, match="already registered"):
        R.register_method("zero-fill", lambda y, A, s: None)
    with pytest.raises(ValueError, match="lowercase"):
        R.register_method("VDM", lambda y, A, s: None)
    with pytest.raises(ValueError, match="registered: zero-fill"):
        R.reconstruct("nope", None, None, 4)


def test_registered_method_with_nfe(phantom):  # noqa: F811
    y, A = measure(phantom, (16, 16))
    R.register_method("test-double-zf", lambda y, A, s, k=2: (k * B.ZeroFillRecon(y, A).run(), 7),
                      nfe=1)
    try:
        x, nfe = R.reconstruct("test-double-zf", y, A, 4, k=3)
        assert nfe == 7
        np.testing.assert_allclose(x, 3 * B.ZeroFillRecon(y, A).run(), atol=1e-5)
    finally:
        del R.METHODS["test-double-zf"]


