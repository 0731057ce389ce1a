"""k-space operators for super-resolution, as SigPy linear operators.

The forward model of the method: the high-resolution image ``x`` (N1 x N2) is measured
through its centred orthonormal 2D Fourier transform ``F`` and the centre-crop ``Lambda``
that keeps the central m1 x m2 block,

.. math::
    \\hat y_0 = \\mathcal{P}^{-1}(\\Lambda) F x,

the "low-resolution k-space". ``CropFourier`` is that operator; its adjoint zero-pads the
block back to N1 x N2 and applies the inverse FFT (the zero-filled image).

Conventions (see docs/conventions.md):
    * centred orthonormal FFT, ``fftshift(fft2(ifftshift(x), norm="ortho"))``, identical to
      ``sigpy.fft(x, center=True)`` and BART's ``fft -u 3``;
    * the centre of an axis of size n is index ``n // 2`` (odd sizes included);
    * an m x m low-resolution *image* and the central block of the N x N k-space differ by
      the factor ``sqrt(N1 N2 / (m1 m2))``: use ``lowres_image_to_kspace`` and
      ``kspace_to_lowres_image``, which keep a constant image's value.

Arrays may be numpy (CPU) or cupy (GPU); leading (batch / coil) axes pass through.
"""
import numpy as np
import sigpy as sp

from ._checks import as_shape, check_shape

__all__ = ["CropFourier", "ZeroFillIFFT", "lowres_image_to_kspace", "kspace_to_lowres_image",
           "zero_filled"]


def _as_complex(x):
    """Real input -> complex of the same precision (``sigpy.fft`` would cast to complex64)."""
    if np.iscomplexobj(x):
        return x
    return x.astype(np.result_type(x.dtype, np.complex64), copy=False)


def _check_crop_shapes(name, hr_shape, lr_shape):
    hr_shape = as_shape(f"{name} high-resolution shape", hr_shape, min_ndim=2)
    lr_shape = as_shape(f"{name} low-resolution shape", lr_shape, min_ndim=2)
    if len(hr_shape) != len(lr_shape):
        raise ValueError(f"{name}: high- and low-resolution shapes must have the same rank, "
                         f"got {hr_shape} and {lr_shape}")
    if hr_shape[:-2] != lr_shape[:-2]:
        raise ValueError(f"{name}: leading (batch/coil) axes must agree, got {hr_shape[:-2]} "
                         f"and {lr_shape[:-2]}")
    if any(m > n for m, n in zip(lr_shape[-2:], hr_shape[-2:])):
        raise ValueError(f"{name}: the low resolution {lr_shape[-2:]} must not exceed the high "
                         f"resolution {hr_shape[-2:]}")
    return hr_shape, lr_shape


class _StrictLinop(sp.linop.Linop):
    """A Linop whose ``apply`` checks the exact input shape (rank included) and raises
    ``ValueError`` naming the operator, instead of SigPy's wrapped ``RuntimeError``."""

    def apply(self, input):
        check_shape(f"{self.repr_str} input", input, self.ishape)
        with sp.get_device(input):
            return self._apply(input)


class CropFourier(_StrictLinop):
    """Centred orthonormal 2D FFT over the last two axes, then the central block.

    .. math::
        A x = \\mathcal{P}^{-1}(\\Lambda) F x

    Args:
        ishape (tuple of ints): image shape ``(..., N1, N2)``.
        oshape (tuple of ints): measurement shape ``(..., m1, m2)``, with the same leading
            axes and ``m1 <= N1``, ``m2 <= N2``.

    Raises:
        ValueError: on a rank mismatch, different leading axes, or a low resolution larger
            than the high one.

    Example:
        >>> A = CropFourier((128, 128), (32, 32))
        >>> y = A(x)            # low-resolution k-space, complex (32, 32)
        >>> x_zf = A.H(y)       # zero-filled image, complex (128, 128)
    """

    def __init__(self, ishape, oshape):
        ishape, oshape = _check_crop_shapes("CropFourier", ishape, oshape)
        self.hr_shape = ishape[-2:]
        self.lr_shape = oshape[-2:]
        super().__init__(oshape, ishape, repr_str="CropFourier")

    def _apply(self, input):
        k = sp.fft(_as_complex(input), axes=(-2, -1), center=True)
        return sp.resize(k, self.oshape)

    def _adjoint_linop(self):
        return ZeroFillIFFT(self.ishape, self.oshape)


class ZeroFillIFFT(_StrictLinop):
    """Adjoint of :class:`CropFourier`: zero-pad the k-space block, then centred inverse FFT.

    Args:
        oshape (tuple of ints): image shape ``(..., N1, N2)``.
        ishape (tuple of ints): measurement shape ``(..., m1, m2)``.
    """

    def __init__(self, oshape, ishape):
        oshape, ishape = _check_crop_shapes("ZeroFillIFFT", oshape, ishape)
        self.hr_shape = oshape[-2:]
        self.lr_shape = ishape[-2:]
        super().__init__(oshape, ishape, repr_str="ZeroFillIFFT")

    def _apply(self, input):
        k = sp.resize(_as_complex(input), self.oshape)
        return sp.ifft(k, axes=(-2, -1), center=True)

    def _adjoint_linop(self):
        return CropFourier(self.oshape, self.ishape)


def _factor(hr_shape, lr_shape):
    return float(np.sqrt(np.prod(hr_shape[-2:]) / np.prod(lr_shape[-2:])))


def lowres_image_to_kspace(x_lr, hr_shape):
    """A low-resolution image (..., m1, m2) -> the central block of the HR k-space.

    .. math::
        \\hat y_0 = \\sqrt{N_1 N_2 / (m_1 m_2)}\\, F_m x_{lr}

    so that a constant image ``c`` gives ``A^H y = c`` at the high resolution.

    Args:
        x_lr (array): low-resolution image, real or complex, ``(..., m1, m2)``.
        hr_shape (tuple of ints): the high-resolution image size ``(N1, N2)``.
    """
    hr_shape = as_shape("lowres_image_to_kspace hr_shape", hr_shape, min_ndim=2)[-2:]
    _check_crop_shapes("lowres_image_to_kspace", x_lr.shape[:-2] + hr_shape, x_lr.shape)
    with sp.get_device(x_lr):
        return _factor(hr_shape, x_lr.shape) * sp.fft(_as_complex(x_lr), axes=(-2, -1), center=True)


def kspace_to_lowres_image(y, hr_shape):
    """Inverse of :func:`lowres_image_to_kspace`: (..., m1, m2) k-space block -> LR image."""
    hr_shape = as_shape("kspace_to_lowres_image hr_shape", hr_shape, min_ndim=2)[-2:]
    _check_crop_shapes("kspace_to_lowres_image", y.shape[:-2] + hr_shape, y.shape)
    with sp.get_device(y):
        return sp.ifft(_as_complex(y), axes=(-2, -1), center=True) / _factor(hr_shape, y.shape)


def zero_filled(y, hr_shape):
    """Zero-filled high-resolution image ``A^H y`` (complex) for k-space block ``y``."""
    hr_shape = as_shape("zero_filled hr_shape", hr_shape, min_ndim=2)[-2:]
    A = CropFourier(y.shape[:-2] + hr_shape, y.shape)
    return A.H(y)
