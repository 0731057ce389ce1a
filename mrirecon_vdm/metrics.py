"""Image quality metrics on real magnitude images, fastMRI convention.

All metrics compare a reconstruction ``x`` with a reference ``ref`` of exactly the same shape
``(..., H, W)``; the last two axes are the image plane, leading axes are slices.

The fastMRI convention (Zbontar et al. 2018) sets the *data range* of PSNR and SSIM to the
maximum of the reference **volume** (all slices of one data set), not of each slice and not
``max - min``; pass it explicitly as ``data_range`` when you evaluate a subset of a volume.

Definitions (``N`` entries, :math:`\\|\\cdot\\|` the Frobenius norm over all of them):

.. math::
    \\mathrm{PSNR} &= 10 \\log_{10} \\frac{D^2}{\\frac{1}{N}\\|x - x_{ref}\\|^2}, \\qquad
    \\mathrm{NRMSE} = \\frac{\\|x - x_{ref}\\|}{\\|x_{ref}\\|}, \\\\
    \\mathrm{HFEN} &= \\frac{\\|\\mathrm{LoG}(x) - \\mathrm{LoG}(x_{ref})\\|}
                           {\\|\\mathrm{LoG}(x_{ref})\\|},

with ``D`` the data range and LoG the 2D Laplacian-of-Gaussian filter of standard deviation
1.5 pixels on a 15 x 15 support, normalised to sum to zero (MATLAB's
``fspecial('log', 15, 1.5)``, as Ravishankar & Bresler 2011), applied per slice with
reflected borders (:func:`log_kernel`).
SSIM is scikit-image's ``structural_similarity`` (7 x 7 uniform window, K1 = 0.01,
K2 = 0.03, the fastMRI settings) with data range ``D``, averaged over slices.

Inputs must be real (take ``abs()`` of complex images yourself), finite, of equal shape.
cupy arrays are copied to the host.

References:
    Zbontar, J., et al. (2018). fastMRI: An open dataset and benchmarks for accelerated
    MRI. arXiv:1811.08839.

    Wang, Z., Bovik, A. C., Sheikh, H. R., & Simoncelli, E. P. (2004). Image quality
    assessment: from error visibility to structural similarity. IEEE Transactions on Image
    Processing, 13(4), 600-612.

    Ravishankar, S., & Bresler, Y. (2011). MR image reconstruction from highly
    undersampled k-space data by dictionary learning. IEEE Transactions on Medical
    Imaging, 30(5), 1028-1041. (HFEN)
"""
import numpy as np
import sigpy as sp

from ._checks import check_finite, check_real

__all__ = ["psnr", "ssim", "nrmse", "hfen", "evaluate", "evaluate_slices", "summarize",
           "METRICS", "HFEN_SIGMA", "log_kernel"]

#: Metric names, in the order of :func:`evaluate`'s dictionary.
METRICS = ("psnr", "ssim", "nrmse", "hfen")

#: Standard deviation (pixels) of the Laplacian-of-Gaussian filter of HFEN.
HFEN_SIGMA = 1.5
_HFEN_RADIUS = 7  # 15 x 15 kernel, as Ravishankar & Bresler (2011)


def _prepare(name, ref, x):
    """Host float64 copies of ``ref`` and ``x`` after the shape/real/finite checks."""
    for what, a in (("ref", ref), ("x", x)):
        if not hasattr(a, "shape") or not hasattr(a, "dtype"):
            raise ValueError(f"{name}: {what} must be an array, got {type(a).__name__}")
        check_real(f"{name} {what}", a)
    if tuple(ref.shape) != tuple(x.shape):
        raise ValueError(f"{name}: ref and x must have the same shape, got {tuple(ref.shape)} "
                         f"and {tuple(x.shape)}")
    if ref.ndim < 2:
        raise ValueError(f"{name}: expected images of shape (..., H, W), got shape "
                         f"{tuple(ref.shape)}")
    ref = np.asarray(sp.to_device(ref, sp.cpu_device), dtype=np.float64)
    x = np.asarray(sp.to_device(x, sp.cpu_device), dtype=np.float64)
    check_finite(f"{name} ref", ref)
    check_finite(f"{name} x", x)
    return ref, x


def _data_range(name, ref, data_range):
    if data_range is None:
        data_range = float(ref.max())
    else:
        try:
            data_range = float(data_range)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: data_range must be a number, got {data_range!r}") from None
    if not np.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"{name}: data_range must be finite and > 0 (the reference volume's "
                         f"maximum), got {data_range!r}")
    return data_range


def _psnr(ref, x, data_range):
    mse = np.mean((x - ref) ** 2)
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(data_range ** 2 / mse))


def _nrmse(name, ref, x):
    norm_ref = np.linalg.norm(ref)
    if norm_ref == 0:
        raise ValueError(f"{name}: the reference is all zeros, NRMSE is undefined")
    return float(np.linalg.norm(x - ref) / norm_ref)


def _ssim(name, ref, x, data_range):
    from skimage.metrics import structural_similarity

    if min(ref.shape[-2:]) < 7:
        raise ValueError(f"{name}: SSIM needs images of at least 7 x 7 pixels (its window), "
                         f"got {ref.shape[-2:]}")
    ref2 = ref.reshape((-1,) + ref.shape[-2:])
    x2 = x.reshape((-1,) + x.shape[-2:])
    return float(np.mean([structural_similarity(r, s, data_range=data_range)
                          for r, s in zip(ref2, x2)]))


def log_kernel(sigma=HFEN_SIGMA, radius=_HFEN_RADIUS):
    """The (2 radius + 1)^2 Laplacian-of-Gaussian kernel of MATLAB's ``fspecial('log')``.

    Normalised like MATLAB: the Gaussian sums to one and the kernel to zero, so that a
    constant image has no LoG response.
    """
    r = np.arange(-radius, radius + 1, dtype=np.float64)
    xx, yy = np.meshgrid(r, r, indexing="ij")
    rr = xx ** 2 + yy ** 2
    g = np.exp(-rr / (2 * sigma ** 2))
    g /= g.sum()
    h = g * (rr - 2 * sigma ** 2) / sigma ** 4
    return h - h.mean()


def _log(img):
    from scipy.ndimage import convolve

    h = log_kernel()
    img2 = img.reshape((-1,) + img.shape[-2:])
    return np.stack([convolve(s, h, mode="reflect") for s in img2])


def _hfen(name, ref, x):
    log_ref = _log(ref)
    norm_ref = np.linalg.norm(log_ref)
    if norm_ref == 0:
        raise ValueError(f"{name}: the reference has no high-frequency content "
                         "(its Laplacian-of-Gaussian is zero), HFEN is undefined")
    return float(np.linalg.norm(_log(x) - log_ref) / norm_ref)


def psnr(ref, x, data_range=None):
    """Peak signal-to-noise ratio in dB; ``inf`` when ``x == ref``.

    Args:
        ref (array): real reference, ``(..., H, W)``.
        x (array): real reconstruction, same shape.
        data_range (float or None): peak value ``D``; None takes ``ref.max()``.

    Returns:
        float: :math:`10 \\log_{10}(D^2 / \\mathrm{MSE})` over all entries.
    """
    ref, x = _prepare("psnr", ref, x)
    return _psnr(ref, x, _data_range("psnr", ref, data_range))


def ssim(ref, x, data_range=None):
    """Structural similarity (scikit-image, 7 x 7 window), averaged over leading slices.

    Args:
        ref (array): real reference, ``(..., H, W)`` with ``H, W >= 7``.
        x (array): real reconstruction, same shape.
        data_range (float or None): data range ``D``; None takes ``ref.max()``.
    """
    ref, x = _prepare("ssim", ref, x)
    return _ssim("ssim", ref, x, _data_range("ssim", ref, data_range))


def nrmse(ref, x):
    """Normalised root-mean-square error :math:`\\|x - x_{ref}\\| / \\|x_{ref}\\|`."""
    ref, x = _prepare("nrmse", ref, x)
    return _nrmse("nrmse", ref, x)


def hfen(ref, x):
    """High-frequency error norm with a 2D LoG filter (sigma 1.5 px, 15 x 15), per slice.

    .. math::
        \\mathrm{HFEN} = \\|\\mathrm{LoG}(x) - \\mathrm{LoG}(x_{ref})\\| /
        \\|\\mathrm{LoG}(x_{ref})\\|
    """
    ref, x = _prepare("hfen", ref, x)
    return _hfen("hfen", ref, x)


def evaluate(ref, x, data_range=None):
    """All metrics of ``x`` against ``ref``, each over the whole array.

    Args:
        ref (array): real reference, ``(..., H, W)``.
        x (array): real reconstruction, same shape.
        data_range (float or None): peak value for PSNR and SSIM; None takes ``ref.max()``.
            For one slice of a volume pass the volume's maximum (fastMRI convention).

    Returns:
        dict: ``{"psnr": float, "ssim": float, "nrmse": float, "hfen": float}``.
    """
    ref, x = _prepare("evaluate", ref, x)
    data_range = _data_range("evaluate", ref, data_range)
    return {"psnr": _psnr(ref, x, data_range),
            "ssim": _ssim("evaluate", ref, x, data_range),
            "nrmse": _nrmse("evaluate", ref, x),
            "hfen": _hfen("evaluate", ref, x)}


def evaluate_slices(ref, x, data_range=None):
    """Per-slice metrics of a stack, with one data range for the whole stack.

    Args:
        ref (array): real reference slices, ``(n, H, W)`` (or ``(H, W)``, one slice).
        x (array): real reconstructions, same shape.
        data_range (float or None): None takes the maximum of the whole ``ref`` stack
            (the reference volume), as fastMRI does.

    Returns:
        dict: metric name -> float64 array of shape ``(n,)``.
    """
    ref, x = _prepare("evaluate_slices", ref, x)
    if ref.ndim == 2:
        ref, x = ref[None], x[None]
    if ref.ndim != 3:
        raise ValueError(f"evaluate_slices: expected slices of shape (n, H, W), got shape "
                         f"{ref.shape}")
    data_range = _data_range("evaluate_slices", ref, data_range)
    rows = [evaluate(r, s, data_range) for r, s in zip(ref, x)]
    return {m: np.array([row[m] for row in rows]) for m in METRICS}


def summarize(per_slice):
    """Mean and (population, ``ddof=0``) standard deviation over slices.

    Args:
        per_slice (dict): metric name -> sequence of per-slice values, as returned by
            :func:`evaluate_slices`.

    Returns:
        dict: ``{"psnr": mean, "psnr_std": std, "ssim": ..., "ssim_std": ..., ...,
        "n": number of slices}``.
    """
    out = {}
    n = None
    for name, values in per_slice.items():
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"summarize: {name} must be a non-empty 1D sequence, got shape "
                             f"{values.shape}")
        if n is not None and values.size != n:
            raise ValueError(f"summarize: all metrics need the same number of slices, got "
                             f"{n} and {values.size} ({name})")
        n = values.size
        out[name] = float(np.mean(values))
        out[f"{name}_std"] = float(np.std(values))
    out["n"] = n
    return out
