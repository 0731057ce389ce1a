"""k-space operators, as SigPy linear operators: the centre crop, Fourier sampling, phase.

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

Beyond the crop (undersampled and multi-coil k-space):

* :class:`FourierSampling`: ``A x = M ⊙ F (S ⊙ x)``, a sampling mask M on the full grid
  (:mod:`mrirecon_vdm.sampling`), optional coil maps S (SENSE; the maths of
  :func:`sigpy.mri.linop.Sense`, with leading slice axes and per-slice masks and maps);
* :func:`Phase`: ``x -> e^{iφ} ⊙ x``, so that ``A * Phase(...)`` measures a real magnitude
  image carrying a known phase φ;
* :class:`RealToComplex`: a real image as a complex one, ``x -> x + 0i``, adjoint the real
  part: ``A * Phase(...) * RealToComplex(...)`` is the forward operator of a solver whose
  unknown is a real array (the classical baselines with a real-value constraint);
* :func:`fourier_structure`: reads mask, maps, phase and crop out of any of these, or out of
  a plain SigPy composition such as ``Multiply(mask) * FFT`` or ``sigpy.mri.linop.Sense``,
  so that the data consistency of :mod:`mrirecon_vdm.alg` picks its fastest exact method.
"""
import numpy as np
import sigpy as sp

from ._checks import as_shape, check_array, check_finite, check_shape

__all__ = ["CropFourier", "ZeroFillIFFT", "FourierSampling", "Phase", "RealToComplex",
           "FourierStructure",
           "fourier_structure", "max_eig", "lowres_image_to_kspace", "kspace_to_lowres_image",
           "zero_filled", "centred_fft", "MAPS_MIN_RSS", "MAPS_MAX_RSS", "MAPS_MIN_SUPPORT",
           "check_maps_normalised"]

#: The reconstructions refuse coil maps whose root-sum-of-squares peaks outside
#: [MAPS_MIN_RSS, MAPS_MAX_RSS] (:func:`check_maps_normalised`): they take SENSE maps
#: normalised as ESPIRiT gives them (1 inside the object).
MAPS_MIN_RSS, MAPS_MAX_RSS = 0.5, 2.0
#: :class:`FourierSampling` refuses maps that are non-zero on less than this share of an
#: image's pixels (ESPIRiT maps of the shipped test people cover 18-50 %, the head 13-40 %).
MAPS_MIN_SUPPORT = 0.05


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
    """A Linop whose ``apply`` checks the input (a numeric numpy/cupy array of the exact
    shape, rank included) and raises ``ValueError`` naming the operator, instead of SigPy's
    wrapped ``RuntimeError``; ``A(list)`` and ``A * list`` raise too (SigPy returns
    ``NotImplemented``)."""

    def apply(self, input):
        check_array(f"{self.repr_str} input", input)
        check_shape(f"{self.repr_str} input", input, self.ishape)
        with sp.get_device(input):
            return self._apply(input)

    def __mul__(self, input):
        if not (isinstance(input, sp.linop.Linop) or np.isscalar(input)):
            check_array(f"{self.repr_str} input", input)
        return super().__mul__(input)

    def __call__(self, input):
        return self.__mul__(input)


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
    check_array("lowres_image_to_kspace x_lr", x_lr)
    hr_shape = as_shape("lowres_image_to_kspace hr_shape", hr_shape, min_ndim=2)[-2:]
    _check_crop_shapes("lowres_image_to_kspace", x_lr.shape[:-2] + hr_shape, x_lr.shape)
    with sp.get_device(x_lr):
        return _factor(hr_shape, x_lr.shape) * sp.fft(_as_complex(x_lr), axes=(-2, -1), center=True)


def kspace_to_lowres_image(y, hr_shape):
    """Inverse of :func:`lowres_image_to_kspace`: (..., m1, m2) k-space block -> LR image."""
    check_array("kspace_to_lowres_image y", y)
    hr_shape = as_shape("kspace_to_lowres_image hr_shape", hr_shape, min_ndim=2)[-2:]
    _check_crop_shapes("kspace_to_lowres_image", y.shape[:-2] + hr_shape, y.shape)
    with sp.get_device(y):
        return sp.ifft(_as_complex(y), axes=(-2, -1), center=True) / _factor(hr_shape, y.shape)


def zero_filled(y, hr_shape):
    """Zero-filled high-resolution image ``A^H y`` (complex) for k-space block ``y``."""
    check_array("zero_filled y", y)
    hr_shape = as_shape("zero_filled hr_shape", hr_shape, min_ndim=2)[-2:]
    A = CropFourier(y.shape[:-2] + hr_shape, y.shape)
    return A.H(y)


# --------------------------------------------------------------------------- Fourier sampling
def _check_mask(name, mask, kshape):
    """A 0/1 float32 mask broadcastable to the k-space ``kshape`` (checked), on its device."""
    if not hasattr(mask, "shape") or not hasattr(mask, "dtype"):
        raise ValueError(f"{name}: mask must be a numpy or cupy array, got {type(mask).__name__}")
    xp = sp.get_device(mask).xp
    if mask.dtype == object or np.iscomplexobj(mask):
        raise ValueError(f"{name}: mask must be a real 0/1 (or boolean) array, got dtype "
                         f"{mask.dtype}")
    img = tuple(kshape[-2:])
    if tuple(mask.shape[-2:]) != img:
        raise ValueError(f"{name}: expected a mask of shape {img} (or with the leading axes of "
                         f"the data), got shape {tuple(mask.shape)}")
    try:
        # broadcast *to* the shape: a mask with more (or larger) leading axes than the data
        # would silently change the output shape
        ok = np.broadcast_shapes(tuple(mask.shape), tuple(kshape)) == tuple(kshape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: a mask of shape {tuple(mask.shape)} does not broadcast to the "
                         f"k-space shape {tuple(kshape)}")
    m = mask.astype(np.float32)
    if not bool(xp.all((m == 0) | (m == 1))):
        raise ValueError(f"{name}: mask must hold 0 and 1 only (a sampling pattern); for "
                         f"density weights build the operator from SigPy linops")
    per_image = m.reshape((-1,) + img).sum(axis=(-2, -1))
    if not bool(xp.all(per_image > 0)):
        raise ValueError(f"{name}: the mask samples nothing (in at least one image)")
    return m


def _check_maps(name, maps, ishape):
    if not hasattr(maps, "shape") or not hasattr(maps, "dtype"):
        raise ValueError(f"{name}: maps must be a numpy or cupy array, got {type(maps).__name__}")
    if maps.ndim < 3 or tuple(maps.shape[-2:]) != tuple(ishape[-2:]):
        raise ValueError(f"{name}: expected coil maps of shape (C, {ishape[-2]}, {ishape[-1]}) "
                         f"(or with the leading axes of the image), got shape "
                         f"{tuple(maps.shape)}")
    lead = tuple(maps.shape[:-3])
    if lead and lead != tuple(ishape[:-2])[-len(lead):]:
        raise ValueError(f"{name}: the leading axes of the maps {tuple(maps.shape)} do not match "
                         f"the image's {tuple(ishape)}")
    if maps.dtype == object:
        raise ValueError(f"{name}: maps must be a numeric array, got dtype object")
    if not np.iscomplexobj(maps):
        maps = maps.astype(np.complex64)
    check_finite(f"{name} maps", maps)
    check_maps_cover(name, maps)
    return maps


def check_maps_cover(name, maps):
    """Maps that see the image: non-zero on at least :data:`MAPS_MIN_SUPPORT` of every
    image's pixels (as a mask must sample something)."""
    xp = sp.get_device(maps).xp
    ss = (xp.abs(maps.astype(xp.complex128)) ** 2).sum(axis=-3)        # (..., H, W)
    if not bool(ss.max() > 0):
        raise ValueError(f"{name}: the coil maps are all zero (no coil sees the image)")
    flat = ss.reshape((-1, ss.shape[-2] * ss.shape[-1]))
    support = (flat > 0).mean(axis=-1)
    worst = int(xp.argmin(support))
    if float(support[worst]) < MAPS_MIN_SUPPORT:
        where = f" of image {worst}" if flat.shape[0] > 1 else ""
        raise ValueError(f"{name}: the coil maps{where} are zero on "
                         f"{1 - float(support[worst]):.1%} of the pixels (their sum of squares "
                         f"is non-zero on fewer than {MAPS_MIN_SUPPORT:.0%}); expected maps "
                         f"that cover the object")


def check_maps_normalised(name, maps):
    """``ValueError`` unless the root-sum-of-squares of SENSE ``maps`` peaks within
    [:data:`MAPS_MIN_RSS`, :data:`MAPS_MAX_RSS`]: the reconstructions take maps normalised
    as ESPIRiT gives them (1 inside the object), since a factor c on the maps is a factor
    1/c on the image the prior and the tuned weights see."""
    if maps is None:
        return
    xp = sp.get_device(maps).xp
    peak = float(xp.sqrt((xp.abs(maps.astype(xp.complex128)) ** 2).sum(axis=-3).max()))
    if not MAPS_MIN_RSS <= peak <= MAPS_MAX_RSS:
        raise ValueError(f"{name}: the coil maps' root-sum-of-squares peaks at {peak:.3g}; "
                         f"expected maps normalised as ESPIRiT gives them (a root-sum-of-squares "
                         f"of 1 inside the object; accepted peak {MAPS_MIN_RSS:g} to "
                         f"{MAPS_MAX_RSS:g}): divide the maps by their root-sum-of-squares")


class FourierSampling(_StrictLinop):
    """Fourier sampling on the full grid, single coil or SENSE.

    .. math::
        A x = M \\odot F (S \\odot x)

    with F the centred orthonormal 2D FFT over the last two axes, M a 0/1 sampling mask
    (:mod:`mrirecon_vdm.sampling`) and S the coil maps (absent for a single coil). Unsampled
    entries of ``A x`` are zero, so measured k-space is stored on the full grid as the
    fastMRI files do.

    Args:
        ishape (tuple of ints): image shape ``(..., H, W)``; leading axes are slices (or
            any batch), each reconstructed on its own.
        mask (array): 0/1 or boolean pattern, ``(H, W)`` shared by every slice or with the
            leading axes of ``ishape`` (one per slice).
        maps (array or None): coil maps ``(C, H, W)`` or ``(..., C, H, W)`` (one set per slice);
            None for a single coil. Complex (real maps are cast).

    Output shape: ``ishape`` for a single coil, ``ishape[:-2] + (C, H, W)`` with maps.

    Raises:
        ValueError: a mask or maps that do not match ``ishape``, a mask with values other
            than 0 and 1, a mask that samples nothing, non-finite maps.

    Example:
        >>> mask = sampling.cartesian_mask((128, 128), 4, center=16, seed=0)
        >>> A = FourierSampling((128, 128), mask)                   # single coil
        >>> A8 = FourierSampling((128, 128), mask, maps=mps)         # mps (8, 128, 128)
        >>> y = A8(x)                                                 # (8, 128, 128)
    """

    def __init__(self, ishape, mask, maps=None):
        ishape = as_shape("FourierSampling ishape", ishape, min_ndim=2)
        if maps is not None:
            maps = _check_maps("FourierSampling", maps, ishape)
            oshape = ishape[:-2] + tuple(maps.shape[-3:])
        else:
            oshape = ishape
        mask = _check_mask("FourierSampling", mask, ishape)
        if maps is not None and mask.ndim > 2:
            mask = mask[..., None, :, :]              # broadcast over the coil axis
        self.mask = mask
        self.maps = maps
        super().__init__(oshape, ishape, repr_str="FourierSampling")

    @property
    def num_coils(self):
        """C, or None for a single coil."""
        return None if self.maps is None else int(self.maps.shape[-3])

    def _apply(self, input):
        return _sampling_forward(input, self.mask, self.maps)

    def _adjoint_linop(self):
        return _FourierSamplingH(self)


class _FourierSamplingH(_StrictLinop):
    """The adjoint of :class:`FourierSampling`: ``S^H F^{-1} (M ⊙ y)``."""

    def __init__(self, fwd):
        self.fwd = fwd
        super().__init__(fwd.ishape, fwd.oshape, repr_str="FourierSampling.H")

    def _apply(self, input):
        return _sampling_adjoint(input, self.fwd.mask, self.fwd.maps)

    def _adjoint_linop(self):
        return self.fwd


def _move(a, device):
    return a if a is None or sp.get_device(a) == device else sp.to_device(a, device)


def _sampling_forward(x, mask, maps, phase=None, crop=None):
    """``M ⊙ F (S ⊙ (P ⊙ x))`` (or the central ``crop`` block) over any leading axes."""
    device = sp.get_device(x)
    with device:
        c = _as_complex(x)
        if phase is not None:
            c = c * _move(phase, device)
        if maps is not None:
            c = c[..., None, :, :] * _move(maps, device)
        k = centred_fft(c)
        if crop is not None:
            return sp.resize(k, k.shape[:-2] + tuple(crop))
        return k * _move(mask, device)


def _sampling_adjoint(y, mask, maps, phase=None, hr_shape=None):
    """The adjoint of :func:`_sampling_forward` (``hr_shape`` for a crop)."""
    device = sp.get_device(y)
    with device:
        k = _as_complex(y)
        if hr_shape is not None:
            k = sp.resize(k, k.shape[:-2] + tuple(hr_shape))
        else:
            k = k * _move(mask, device)
        c = centred_fft(k, inverse=True)
        if maps is not None:
            c = (c * _move(maps, device).conj()).sum(axis=-3)
        if phase is not None:
            c = c * _move(phase, device).conj()
        return c


def centred_fft(x, inverse=False):
    """Centred orthonormal 2D FFT over the last two axes, ``sp.fft(x, axes=(-2, -1),
    center=True)`` (``sp.ifft`` with ``inverse``): torch's on the CPU (about twice SigPy's
    numpy speed for a 4 × 128 × 128 batch, one thread: 0.53 against 1.0 ms), SigPy's on a
    GPU. Complex input."""
    if sp.get_device(x).xp is np:
        import torch

        t = torch.fft.ifftshift(_torch_view(x), dim=(-2, -1))
        t = (torch.fft.ifftn if inverse else torch.fft.fftn)(t, dim=(-2, -1), norm="ortho")
        return torch.fft.fftshift(t, dim=(-2, -1)).numpy()
    return (sp.ifft if inverse else sp.fft)(x, axes=(-2, -1), center=True)


def _torch_view(a):
    """``torch.from_numpy`` of ``a``, copying only arrays torch cannot share (read-only,
    negative or zero strides)."""
    import torch

    if not (a.flags.writeable and a.flags.c_contiguous):
        a = np.array(a, copy=True, order="C")
    return torch.from_numpy(a)


def plain_fft(x, axes, inverse=False):
    """Orthonormal FFT (no centring) over ``axes``: torch's on the CPU (about twice numpy's
    speed for these sizes, on torch's threads; zero-copy both ways), the array module's on
    a GPU."""
    xp = sp.get_device(x).xp
    if xp is np:
        import torch

        t = _torch_view(x)
        f = torch.fft.ifftn if inverse else torch.fft.fftn
        return f(t, dim=tuple(axes), norm="ortho").numpy()
    f = xp.fft.ifftn if inverse else xp.fft.fftn
    return f(x, axes=tuple(axes), norm="ortho")


def Phase(ishape, phase):
    """The diagonal phase operator ``x -> e^{iφ} ⊙ x`` (a SigPy ``Multiply``).

    ``A * Phase(A.ishape, φ)`` measures a real (magnitude) image that carries the phase φ,
    a linear operator on real images, so every sampler and data-consistency path of the
    package applies unchanged.

    Args:
        ishape (tuple of ints): image shape ``(..., H, W)``.
        phase (array): φ in radians (real, broadcastable to ``ishape``), or unit-modulus
            complex values ``e^{iφ}``.

    Returns:
        sigpy.linop.Multiply: with ``repr_str`` ``"Phase"``.
    """
    ishape = as_shape("Phase ishape", ishape, min_ndim=2)
    if not hasattr(phase, "shape"):
        raise ValueError(f"Phase: phase must be a numpy or cupy array, got {type(phase).__name__}")
    try:
        # broadcast *to* ishape: extra leading axes would make the operator's oshape differ
        # from its ishape
        ok = np.broadcast_shapes(tuple(phase.shape), ishape) == ishape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"Phase: a phase of shape {tuple(phase.shape)} does not broadcast to "
                         f"the image shape {ishape}")
    device = sp.get_device(phase)
    with device:
        xp = device.xp
        check_finite("Phase phase", phase)
        if np.iscomplexobj(phase):
            if not bool(xp.allclose(xp.abs(phase), 1, atol=1e-3)):
                raise ValueError("Phase: a complex phase must have modulus 1 (e^{iφ}); pass φ "
                                 "in radians as a real array otherwise")
            e = phase.astype(np.complex64)
        else:
            e = xp.exp(1j * phase.astype(np.float32)).astype(np.complex64)
    P = sp.linop.Multiply(ishape, e)
    P.repr_str = "Phase"
    return P


class RealToComplex(_StrictLinop):
    r"""The embedding of real arrays into complex ones, ``R x = x + 0i``.

    .. math::
        R: \mathbb{R}^n \to \mathbb{C}^n, \quad R x = x, \qquad R^H z = \operatorname{Re} z

    The adjoint is taken with the real inner product :math:`\langle u, v\rangle =
    \operatorname{Re}(u^H v)` of :math:`\mathbb{C}^n` seen as :math:`\mathbb{R}^{2n}`, the one in
    which a real unknown's gradient :math:`R^H A^H (A R x - y)` is the gradient of
    :math:`\frac12\|A R x - y\|^2`: :math:`\operatorname{Re}\langle R x, z\rangle =
    \langle x, R^H z\rangle`. Composed as ``A * RealToComplex(A.ishape)`` (or with a
    :func:`Phase` in between: ``A * Phase(φ) * RealToComplex``) it turns any SigPy solver
    into one over real images: every iterate stays real, which is the real-value constraint
    of BART ``pics -c``.

    Args:
        shape (tuple of ints): the array shape (input and output).

    Raises:
        ValueError: a complex input to the forward operator (it embeds real arrays only).
    """

    def __init__(self, shape):
        shape = as_shape("RealToComplex shape", shape)
        super().__init__(shape, shape, repr_str="RealToComplex")

    def _apply(self, input):
        if np.iscomplexobj(input):
            raise ValueError(f"RealToComplex: expected a real input, got dtype {input.dtype}")
        return _as_complex(input)

    def _adjoint_linop(self):
        return _RealPart(self.ishape)


class _RealPart(_StrictLinop):
    """The adjoint of :class:`RealToComplex`: ``z -> Re z`` (real input passes unchanged)."""

    def __init__(self, shape):
        super().__init__(shape, shape, repr_str="RealToComplex.H")

    def _apply(self, input):
        return input.real.copy() if np.iscomplexobj(input) else input

    def _adjoint_linop(self):
        return RealToComplex(self.ishape)


_UNSET = object()


def max_eig(A, G=None, dtype=np.complex64, device=None, max_iter=30, seed=0):
    """The largest eigenvalue of ``AᴴA`` (plus ``GᴴG``): ``‖A‖²``, for a gradient step size.

    SigPy's ``MaxEig`` starts its power iteration from an unseeded random vector, so two runs
    of the same reconstruction could take different step sizes (and, for a slow solver,
    reach visibly different images). This is the same power iteration
    (:class:`sigpy.alg.PowerMethod`, ``max_iter`` iterations) from a seeded start, so a
    reconstruction is a function of its inputs.

    Args:
        A (Linop): the operator.
        G (Linop or None): a second operator on the same input (TV's finite differences);
            the result is then ``‖[A; G]‖²``.
        dtype: the dtype of the start vector.
        device: the device to run on (default: the CPU).
        max_iter (int): power iterations.
        seed (int): the seed of the start vector.

    Returns:
        float: the eigenvalue, > 0.

    Raises:
        ValueError: ``G`` has another input shape, or ``AᴴA`` is zero (an all-zero operator).
    """
    if G is not None and tuple(G.ishape) != tuple(A.ishape):
        raise ValueError(f"max_eig: G acts on {tuple(G.ishape)}, A on {tuple(A.ishape)}")
    AHA = A.H * A if G is None else A.H * A + G.H * G
    device = sp.Device(device if device is not None else sp.cpu_device)
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(tuple(A.ishape))
    if np.issubdtype(np.dtype(dtype), np.complexfloating):
        x0 = x0 + 1j * rng.standard_normal(tuple(A.ishape))
    with device:
        x = sp.to_device(x0.astype(dtype), device)
        alg = sp.alg.PowerMethod(AHA, x, max_iter=int(max_iter))
        while not alg.done():
            alg.update()
        lam = float(alg.max_eig)
    if not np.isfinite(lam) or lam <= 0:
        raise ValueError(f"max_eig: the operator's largest eigenvalue is {lam!r}; expected > 0 "
                         "(an all-zero operator or mask?)")
    return lam


class FourierStructure:
    """What :func:`fourier_structure` reads out of an operator.

    ``A x = K F (S ⊙ (P ⊙ x))`` with K either the mask M (``mask``, full grid) or the
    central block (``crop``, the low-resolution shape), S the coil maps (``maps``, None for a
    single coil) and P the phase ``e^{iφ}`` (``phase``, None without). ``forward`` and
    ``adjoint`` apply A and Aᴴ to arrays with any number of extra leading (sample) axes.
    """

    def __init__(self, ishape, oshape, mask=None, crop=None, maps=None, phase=None):
        self.ishape, self.oshape = tuple(ishape), tuple(oshape)
        self.mask, self.crop, self.maps, self.phase = mask, crop, maps, phase
        self.hr_shape = tuple(ishape[-2:])

    @property
    def single_coil(self):
        return self.maps is None

    def without_phase(self):
        """The same structure without its phase (A₀ of ``A = A₀ diag(e^{iφ})``), kept
        while the mask, crop and maps stay the same objects (its cached normal-operator
        mask with it)."""
        key = (self.mask, self.crop, self.maps)
        hit = getattr(self, "_no_phase", None)
        if hit is None or any(a is not b for a, b in zip(hit[0], key)):
            hit = self._no_phase = (key, FourierStructure(self.ishape, self.oshape,
                                                          mask=self.mask, crop=self.crop,
                                                          maps=self.maps, phase=None))
        return hit[1]

    @property
    def coil_axis(self):
        """The coil axis of the measurement counted from the end (-3), or None."""
        return None if self.maps is None else -3

    def forward(self, x):
        return _sampling_forward(x, self.mask, self.maps, self.phase, self.crop)

    def adjoint(self, y):
        return _sampling_adjoint(y, self.mask, self.maps, self.phase,
                                 self.hr_shape if self.crop is not None else None)

    def normal(self, x):
        """Aᴴ A x (complex), over any leading axes, without a centring shift.

        A centred FFT is ``S F S⁻¹`` (S = fftshift), so ``F_cᴴ M F_c = S (F⁻¹ M' F) S⁻¹``
        with ``M' = ifftshift(M)``; ``F⁻¹ M' F`` is a circular convolution, which commutes
        with the circular shift S, so ``F_cᴴ M F_c = F⁻¹ M' F`` for every size, odd ones
        included: plain FFTs (:func:`plain_fft`) and a shifted mask, no shifts per call.
        For a mask made of whole lines (the same along one image axis: 1D Cartesian
        sampling) the FFT along the lines cancels as well, and only 1D FFTs across the lines
        are done. A crop is the mask of its central block. A real ``x`` multiplies the maps
        (or the phase) as it is, and the conjugate maps are kept between calls."""
        axes, mshift = self._normal_mask()
        device = sp.get_device(x)
        if device.xp is np:
            return self._normal_cpu(x, axes, mshift)
        with device:
            c = x if (self.phase is not None or self.maps is not None) else _as_complex(x)
            if self.phase is not None:
                c = c * _move(self.phase, device)
            maps = _move(self.maps, device)
            if maps is not None:
                c = c[..., None, :, :] * maps
            k = plain_fft(c, axes) * _move(mshift, device)
            c = plain_fft(k, axes, inverse=True)
            if maps is not None:
                if getattr(self, "_conj_for", None) is not maps:
                    self._conj_for, self._maps_conj = maps, maps.conj()
                c = (c * self._maps_conj).sum(axis=-3)
            if self.phase is not None:
                c = c * _move(self.phase, device).conj()
            return c.astype(np.result_type(c.dtype, np.complex64), copy=False)

    def _normal_cpu(self, x, axes, mshift):
        """:meth:`normal` in torch on the CPU: its element-wise products (maps, mask,
        conjugate maps, the coil sum) run about 1.6× faster than numpy's (8 coils, 4 × 128 ×
        128, one thread: 6.3–7.0 against 10.4–11.3 ms a call), and conjugates are views."""
        import torch

        t = _torch_view(x)
        if self.phase is None and self.maps is None:
            t = t.to(torch.complex128 if t.dtype == torch.float64 else torch.complex64)
        if self.phase is not None:
            t = t * self._cached_torch("phase", self.phase)
        if self.maps is not None:
            t = t.unsqueeze(-3) * self._cached_torch("maps", self.maps)
        k = torch.fft.fftn(t, dim=axes, norm="ortho")
        k.mul_(self._cached_torch("mshift", mshift))
        c = torch.fft.ifftn(k, dim=axes, norm="ortho")
        if self.maps is not None:
            c = (c * self._cached_torch("maps", self.maps).conj()).sum(dim=-3)
        if self.phase is not None:
            c = c * self._cached_torch("phase", self.phase).conj()
        return c.numpy()

    def _cached_torch(self, name, a):
        """A torch tensor sharing the memory of numpy array ``a`` (a copy when ``a`` is
        read-only or strided), kept while the structure holds the same array."""
        cache = self.__dict__.setdefault("_torch_views", {})
        hit = cache.get(name)
        if hit is None or hit[0] is not a:
            hit = cache[name] = (a, _torch_view(a))
        return hit[1]

    def _normal_mask(self):
        """The FFT axes of :meth:`normal` and its ifftshifted mask (cached): ``(-1,)`` or
        ``(-2,)`` with the line pattern for whole-line masks, else ``(-2, -1)`` and the full
        mask."""
        key = (self.mask, self.crop)
        if getattr(self, "_nm_for", None) is None or self._nm_for[0] is not key[0] \
                or self._nm_for[1] != key[1]:
            axis = self._line_axis()
            if axis is not None:
                axes, m = (axis,), self._lines
            else:
                axes, m = (-2, -1), (self.mask if self.crop is None
                                     else self.full_mask(sp.cpu_device))
            xp = sp.get_device(m).xp
            self._nm_for, self._nm = key, (axes, xp.fft.ifftshift(m, axes=axes))
        return self._nm

    def _line_axis(self):
        """-1 or -2 when the mask is the same along the other image axis (whole lines
        across that axis), else None (cached)."""
        if getattr(self, "_lines_for", _UNSET) is not self.mask:
            self._lines_for, self._lines, self._axis = self.mask, None, None
            if self.crop is None and self.mask is not None:
                m = self.mask
                xp = sp.get_device(m).xp
                for along, across in ((-2, -1), (-1, -2)):
                    first = xp.take(m, xp.asarray([0]), axis=along)
                    if bool(xp.all(m == first)):
                        self._lines, self._axis = first, across
                        break
        return self._axis

    def calibration(self):
        """The calibration size ``(c1, c2)``: the crop, or the largest fully sampled centred
        rectangle of the mask, sampled in every slice (cached per mask)."""
        if self.crop is not None:
            return tuple(self.crop)
        if getattr(self, "_cal_for", _UNSET) is not self.mask:
            from .sampling import calibration_shape

            m = np.asarray(sp.to_device(self.full_mask()))
            self._cal_for = self.mask
            self._cal = calibration_shape(m.reshape((-1,) + self.hr_shape).min(axis=0))
        return self._cal

    def full_mask(self, device=sp.cpu_device):
        """The sampling pattern on the full grid, ``(..., H, W)`` 0/1 float32."""
        device = sp.Device(device)
        with device:
            if self.crop is not None:
                ones = device.xp.ones(tuple(self.crop), dtype=np.float32)
                return sp.resize(ones, self.hr_shape)
            m = _move(self.mask, device)
            return m[..., 0, :, :] if (self.maps is not None and m.ndim > 3) else m

    def to(self, device):
        """Move the arrays to ``device`` (in place; returns self)."""
        self.mask = _move(self.mask, device)
        self.maps = _move(self.maps, device)
        self.phase = _move(self.phase, device)
        return self


def _flatten(A):
    if isinstance(A, sp.linop.Compose):
        out = []
        for L in A.linops:
            out += _flatten(L)
        return out
    return [A]


def _is_2d_centred_fft(L, ndim):
    if not isinstance(L, sp.linop.FFT) or not L.center:
        return False
    axes = L.axes
    if axes is None:
        return ndim == 2
    return sorted(a % ndim for a in axes) == [ndim - 2, ndim - 1]


def _mult(L):
    m = L.mult
    if np.isscalar(m) or not hasattr(m, "shape"):
        return None
    return m.conj() if L.conj else m


def fourier_structure(A):
    """The Fourier-sampling structure of ``A``, or None for an operator it does not know.

    Recognised (read from the factors of a SigPy composition, output side first):

    * :class:`CropFourier` (``crop``) and :class:`FourierSampling` (``mask``, ``maps``);
    * ``Multiply(mask) * FFT(axes=(-2, -1), center=True)``, optionally ``* Multiply(maps)``
      with a coil axis (``sigpy.mri.linop.Sense(maps, weights=mask)`` is exactly this,
      weights 0/1), and ``CropFourier * Multiply(maps)`` (multi-coil super-resolution);
    * any of these times :func:`Phase` (or a ``Multiply`` by unit-modulus values) on the
      input side.

    Returns:
        FourierStructure or None.
    """
    factors = _flatten(A)
    ishape, oshape = tuple(A.ishape), tuple(A.oshape)
    phase = None
    last = factors[-1]
    if (len(factors) > 1 and isinstance(last, sp.linop.Multiply)
            and tuple(last.ishape) == tuple(last.oshape) and tuple(last.ishape) == ishape):
        m = _mult(last)
        if m is not None and np.iscomplexobj(m):
            xp = sp.get_device(m).xp
            if bool(xp.allclose(xp.abs(m), 1, atol=1e-3)):
                phase = m
                factors = factors[:-1]
    if len(factors) == 1:
        L = factors[0]
        if isinstance(L, CropFourier):
            return FourierStructure(ishape, oshape, crop=L.lr_shape, phase=phase)
        if isinstance(L, FourierSampling):
            return FourierStructure(ishape, oshape, mask=L.mask, maps=L.maps, phase=phase)
        return None
    maps = None
    # coil maps: a broadcasting Multiply on the input side
    last = factors[-1]
    if isinstance(last, sp.linop.Multiply) and tuple(last.ishape) != tuple(last.oshape):
        m = _mult(last)
        if m is None or tuple(last.oshape) != tuple(last.ishape)[:-2] + tuple(m.shape[-3:]):
            return None
        maps = m
        factors = factors[:-1]
    if len(factors) == 1 and isinstance(factors[0], CropFourier) and maps is not None:
        return FourierStructure(ishape, oshape, crop=factors[0].lr_shape, maps=maps,
                                phase=phase)
    if len(factors) != 2:
        return None
    M, F = factors
    kndim = len(F.ishape)
    if not isinstance(M, sp.linop.Multiply) or not _is_2d_centred_fft(F, kndim):
        return None
    if tuple(M.ishape) != tuple(M.oshape):
        return None
    mask = _mult(M)
    if mask is None or np.iscomplexobj(mask) or tuple(mask.shape[-2:]) != tuple(F.ishape[-2:]):
        return None
    xp = sp.get_device(mask).xp
    mask = mask.astype(np.float32)
    if not bool(xp.all((mask == 0) | (mask == 1))):
        return None                            # density weights: no closed form
    return FourierStructure(ishape, oshape, mask=mask, maps=maps, phase=phase)
