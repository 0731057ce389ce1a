"""Benchmark tasks: which measurement each slice gets.

=============  ==========================================================================
task           measurement of a real magnitude slice x (seeded per slice)
=============  ==========================================================================
``sr``         the central (H/f) x (W/f) block of its k-space (super-resolution, factor f)
``cartesian``  1D Cartesian undersampling at acceleration R, random lines and a fully
               sampled centre (:func:`mrirecon_vdm.sampling.cartesian_mask`)
``poisson``    2D Poisson-disc undersampling at R with a calibration square
               (:func:`mrirecon_vdm.sampling.poisson_mask`)
=============  ==========================================================================

Options (:class:`Task`): ``coils`` (1: single coil; above 1: simulated birdcage maps for the
measurement, and the reconstruction gets ESPIRiT maps estimated from the data
(:func:`mrirecon_vdm.coils.espirit_maps`), never the true ones), ``phase`` (``"none"``, or
``"smooth"``: a seeded random smooth phase, :func:`mrirecon_vdm.phase.smooth_phase`, on the
image before it is measured), ``sigma`` (complex Gaussian k-space noise on the sampled
entries; None: 0 for a single coil and :data:`COIL_NOISE` × the data set's largest k-space
magnitude with coils, the level recorded in the results).

Slice i gets the mask, phase and noise of seed ``seed + i`` (a different mask per slice, as
in fastMRI's validation), so every method sees the same measurement.
"""
import dataclasses
import math

import numpy as np

__all__ = ["Task", "TASKS", "COIL_NOISE", "MAX_COILS", "simulate_task", "simulate",
           "lr_shape_for", "check_factor",
           "check_calibration"]

TASKS = ("sr", "cartesian", "poisson")
PHASES = ("none", "smooth")
#: Default k-space noise with coils: this fraction of the largest k-space magnitude
#: (0.2 %, the level of the reliability issue's multi-coil test).
COIL_NOISE = 0.002
#: The most simulated coils (each coil multiplies the simulation's, the maps' and every
#: method's work; clinical head arrays have up to 64).
MAX_COILS = 64
#: Seed offset of the phase (so that it does not repeat the mask's random stream).
PHASE_SEED_OFFSET = 100_003


@dataclasses.dataclass(frozen=True)
class Task:
    """What the benchmark measures (see the module docstring).

    Attributes:
        task (str): one of :data:`TASKS`.
        center_fraction (float or int): the fully sampled centre (fraction of the lines, or a
            line count) of ``cartesian``; the calibration square of ``poisson``.
        coils (int): 1 (single coil) or the number of simulated coils.
        phase (str): ``"none"`` or ``"smooth"``.
        sigma (float or None): k-space noise std (None: the default above).
    """

    task: str = "sr"
    center_fraction: float = 0.08
    coils: int = 1
    phase: str = "none"
    sigma: float = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"Task: task must be one of {TASKS}, got {self.task!r}")
        if self.phase not in PHASES:
            raise ValueError(f"Task: phase must be one of {PHASES}, got {self.phase!r}")
        if isinstance(self.coils, bool) or not isinstance(self.coils, (int, np.integer)) \
                or not 1 <= self.coils <= MAX_COILS:
            raise ValueError(f"Task: coils must be an int in [1, {MAX_COILS}] (MAX_COILS), got "
                             f"{self.coils!r}")
        if self.task != "sr":
            from ..sampling import center_lines
            center_lines(2 ** 31, self.center_fraction, "Task: center_fraction")
        if self.sigma is not None and not (np.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"Task: sigma must be None or finite and >= 0, got {self.sigma!r}")
        if self.task == "sr" and (self.coils > 1 or self.phase != "none"):
            raise ValueError("Task: --coils and --phase apply to the undersampling tasks "
                             "(cartesian, poisson); the sr task measures one real image")

    @property
    def undersampled(self):
        return self.task != "sr"

    @property
    def constraint(self):
        """The image model of the VDM methods on this task, which the constrained classical
        methods share: ``"phase"`` (a real image times the phase estimated from the
        calibration region: a task with a phase, or with coil maps, whose ESPIRiT phase is
        arbitrary) or ``"real"`` (a real image)."""
        return "phase" if self.phase != "none" or self.coils > 1 else "real"

    def describe(self):
        """A JSON-able dict (the journal fingerprint and the results' metadata)."""
        return dataclasses.asdict(self)


def lr_shape_for(hr_shape, scale):
    """``(H // f, W // f)``; ``ValueError`` unless ``f`` divides both."""
    if scale < 1 or any(n % scale for n in hr_shape):
        raise ValueError(f"scale factor {scale} must be >= 1 and divide the image size "
                         f"{tuple(hr_shape)}")
    return tuple(n // scale for n in hr_shape)


def simulate(images, scale, sigma=0.0, seed=0):
    """``(A, [y_i])``: the crop operator and each slice's noisy LR k-space."""
    from ..linop import CropFourier
    from ..noise import simulate_lowres

    hr = images.shape[-2:]
    lr = lr_shape_for(hr, scale)
    ys = [simulate_lowres(x, lr, sigma=sigma, seed=None if seed is None else seed + i)
          for i, x in enumerate(images)]
    return CropFourier(hr, lr), ys


def check_factor(task, factor, hr_shape):
    """``ValueError`` unless ``factor`` suits ``task`` on images of ``hr_shape``."""
    if task.task == "sr":
        lr_shape_for(hr_shape, factor)
        return
    if not np.isfinite(factor) or factor <= 1:
        raise ValueError(f"acceleration {factor} must be > 1")
    from ..sampling import center_lines
    if task.task == "cartesian":
        n = hr_shape[-1]
        if center_lines(n, task.center_fraction) > max(1, round(n / factor)):
            raise ValueError(f"acceleration {factor} keeps {round(n / factor)} of {n} lines, "
                             f"fewer than the centre ({task.center_fraction}); lower "
                             f"--center-fraction")
    else:
        from ..sampling import POISSON_RELATIVE_TOL, max_poisson_accel
        cal = tuple(center_lines(n, task.center_fraction) for n in hr_shape[-2:])
        most = max_poisson_accel(tuple(hr_shape[-2:]), cal)
        if factor > most * (1 + POISSON_RELATIVE_TOL):
            raise ValueError(f"acceleration {factor} is beyond what a {hr_shape[-2]} x "
                             f"{hr_shape[-1]} Poisson-disc pattern with a {cal[0]} x {cal[1]} "
                             f"calibration square reaches (at most {most:.3g}); lower --accel "
                             f"or --center-fraction")


def check_calibration(task, hr_shape):
    """``ValueError`` unless the fully sampled centre of ``task`` on images of ``hr_shape``
    is large enough for the ESPIRiT maps of a multi-coil task
    (:data:`mrirecon_vdm.coils.ESPIRIT_MIN_CALIB` lines)."""
    if task.coils <= 1:
        return
    from ..coils import ESPIRIT_MIN_CALIB
    from ..sampling import center_lines
    axes = hr_shape[-1:] if task.task == "cartesian" else hr_shape[-2:]
    lines = min(center_lines(n, task.center_fraction) for n in axes)
    if lines < ESPIRIT_MIN_CALIB:
        need = ESPIRIT_MIN_CALIB / min(axes)
        raise ValueError(f"--center-fraction {task.center_fraction} keeps a fully sampled centre "
                         f"of {lines} lines of {min(axes)}; the ESPIRiT coil maps of --coils "
                         f"{task.coils} need at least {ESPIRIT_MIN_CALIB} (--center-fraction "
                         f"{math.ceil(need * 1000) / 1000:g} or more)")


def simulate_task(images, task, factor, seed=0):
    """``(operators, ys, info)``: per slice the reconstruction operator and the measurement.

    Args:
        images (array): (n, H, W) real slices.
        task (Task): the task.
        factor (float): super-resolution factor (``sr``) or acceleration R.
        seed (int): seed of slice 0.

    Returns:
        tuple: a list of n SigPy linops (the operator each method reconstructs with: the
        crop, the mask, or the mask with ESPIRiT maps), a list of n complex k-space arrays,
        and ``info`` (dict: the noise σ used, the mean acceleration, the ESPIRiT seconds).
    """
    import time

    from ..coils import birdcage_maps, espirit_maps
    from ..linop import FourierSampling
    from ..noise import GaussianNoise
    from ..phase import smooth_phase
    from ..sampling import acceleration, cartesian_mask, poisson_mask

    if task.task == "sr":
        sigma = 0.0 if task.sigma is None else task.sigma
        A, ys = simulate(images, int(factor), sigma, seed)
        return [A] * len(ys), ys, {"sigma": sigma}
    hr = tuple(images.shape[-2:])
    maps_true = birdcage_maps(hr, task.coils) if task.coils > 1 else None
    clean, masks = [], []
    for i, x in enumerate(images):
        s = seed + i
        if task.task == "cartesian":
            mask = cartesian_mask(hr, factor, center=task.center_fraction, seed=s)
        else:
            mask = poisson_mask(hr, factor, calib=task.center_fraction, seed=s)
        img = x.astype(np.complex64)
        if task.phase == "smooth":
            img = img * np.exp(1j * smooth_phase(hr, seed=s + PHASE_SEED_OFFSET))
        A_true = FourierSampling(hr, mask, maps=maps_true)
        clean.append(A_true(img).astype(np.complex64))
        masks.append(mask)
    sigma = task.sigma
    if sigma is None:
        sigma = COIL_NOISE * max(float(np.abs(y).max()) for y in clean) if task.coils > 1 else 0.0
    ops, ys, espirit_s = [], [], 0.0
    for i, (y, mask) in enumerate(zip(clean, masks)):
        if sigma > 0:
            y = (GaussianNoise(sigma, seed + i)(y) * mask).astype(np.complex64)
        if task.coils > 1:
            start = time.perf_counter()
            maps = espirit_maps(y)
            espirit_s += time.perf_counter() - start
            ops.append(FourierSampling(hr, mask, maps=maps))
        else:
            ops.append(FourierSampling(hr, mask))
        ys.append(y)
    info = {"sigma": float(sigma),
            "acceleration": float(np.mean([acceleration(m) for m in masks])),
            "espirit_seconds_per_slice": espirit_s / len(images)}
    return ops, ys, info
