"""The BART wrapper: BART's FFT is ours, failures raise with BART's message."""
import numpy as np
import pytest
import sigpy as sp

from mrirecon_vdm import config
from mrirecon_vdm.bart import BartError, bart
from mrirecon_vdm.config import bart_available
from mrirecon_vdm.linop import CropFourier

needs_bart = pytest.mark.skipif(not bart_available(), reason="BART (binary + mrbart) not installed")


def crandn(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


@needs_bart
@pytest.mark.bart
@pytest.mark.parametrize("shape", [(16, 16), (7, 6), (9, 12)])
def test_fft_u3_is_sigpy_centred_fft(shape):
    x = crandn(shape)
    k = bart(1, "fft -u 3", x)
    assert k.shape == shape and k.dtype == np.complex64
    np.testing.assert_allclose(k, sp.fft(x, center=True), atol=1e-5)
    # ... and CropFourier's FFT step (no crop)
    np.testing.assert_allclose(k, CropFourier(shape, shape)(x), atol=1e-5)


@needs_bart
@pytest.mark.bart
def test_outputs_and_keyword_arrays():
    x = crandn((6, 5))
    assert bart(0, "version") is None
    a, b = bart(1, "fft -u 3", x), bart(1, "fft -u -i 3", x)
    np.testing.assert_allclose(bart(1, ["fft", "-u", "-i", "3"], a), x, atol=1e-5)
    np.testing.assert_allclose(b, sp.ifft(x, center=True), atol=1e-5)
    # a keyword array is passed through its option: pics -p <pattern>
    x = crandn((8, 8))
    sens = np.ones((8, 8), np.complex64)
    out = bart(1, "pics -w 1 -i 30 -l2 -r 0.000001", sp.fft(x, center=True), sens,
               p=np.ones((8, 8)))
    np.testing.assert_allclose(out, x, atol=1e-4)


@needs_bart
@pytest.mark.bart
def test_pics_fft_convention():
    """pics centres its FFT by modulation: a sign flip per axis of size 2 mod 4, and no
    match at all for odd sizes (BartPicsRecon corrects the first, rejects the second)."""
    for shape, sign in [((8, 8), 1), ((8, 6), -1), ((6, 6), 1), ((10, 12), -1)]:
        x = crandn(shape, seed=1)
        out = bart(1, "pics -w 1 -i 30 -l2 -r 0.000001", sp.fft(x, center=True),
                   np.ones(shape, np.complex64))
        np.testing.assert_allclose(out, sign * x, atol=1e-4)


@needs_bart
@pytest.mark.bart
def test_bad_command_raises_with_barts_message():
    x = crandn((4, 4))
    with pytest.raises(BartError, match="invalid option") as e:
        bart(1, "fft -u 3 -z", x)
    assert e.value.returncode != 0 and e.value.command == ["fft", "-u", "3", "-z"]
    assert isinstance(e.value, RuntimeError)
    with pytest.raises(BartError, match="Unknown bart command"):
        bart(1, "nosuchtool", x)


def test_argument_checks():
    if not bart_available():
        pytest.skip("BART not installed")
    with pytest.raises(ValueError, match="nargout"):
        bart(-1, "fft 3", crandn((2, 2)))
    with pytest.raises(ValueError, match="empty"):
        bart(1, "  ", crandn((2, 2)))


def test_missing_bart_raises_with_install_hint(monkeypatch):
    monkeypatch.setattr(config.shutil, "which", lambda name: None)
    config.bart_available.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="apt-get install bart"):
            bart(1, "fft -u 3", crandn((2, 2)))
    finally:
        monkeypatch.undo()
        config.bart_available.cache_clear()
