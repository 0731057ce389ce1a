"""Calibrated uncertainty: the factor that turns the spread of K samples into an honest std.

The spread of K posterior samples (``GuidedVDMRecon.std_raw``, the per-pixel standard
deviation over the samples, ddof = 1) is too small to describe the error of the
reconstruction (the mean of the K samples): a few-step sampler and an imperfect prior
under-disperse. :class:`~mrirecon_vdm.app.GuidedVDMRecon` reports

.. math::
    \\mathrm{std} = c_{m,K}\\, \\mathrm{std\\_raw}, \\qquad
    P\\big(|\\hat x - x| \\le 1.96\\, \\mathrm{std}\\big) \\approx 0.95,

i.e. ``std`` is the standard deviation of the error of the reported image x̂ (the mean of
the K samples), and x̂ ± 1.96·std is a 95 % interval for the true pixel value. The factor
c is learned per method m (sampler, operator family and scale factor) and per K on the
validation person (foreground pixels; ``benchmarks/volumes.py``) and stored, tied to the
SHA-256 of the prior's weights, in ``uncertainty_calibration.json`` beside this module.
Methods, K or priors without an entry get no factor (``std == std_raw``,
``calibration`` None).
"""
import json
import math
import pathlib

import numpy as np

__all__ = ["calibration_factor", "load_table", "method_key", "sampler_key", "TABLE_PATH",
           "check_calibration"]

#: The shipped table (see the module docstring).
TABLE_PATH = pathlib.Path(__file__).with_name("uncertainty_calibration.json")


def load_table(path=None):
    """The calibration table (dict) from ``path`` (default :data:`TABLE_PATH`); an empty
    table when the default file is absent."""
    p = TABLE_PATH if path is None else pathlib.Path(path)
    if path is None and not p.exists():
        return {"prior_sha256": None, "entries": []}
    return json.loads(p.read_text())


def sampler_key(sampler, renoise=None):
    """The table's name of a sampler: ``"paper"``; ``"fast"`` for the fast sampler with DDIM
    renoising; ``"fast-<renoise>"`` otherwise
    (``"fast-fresh"``, the default)."""
    return sampler if renoise in (None, "ddim") else f"{sampler}-{renoise}"


def method_key(A, sampler):
    """``"<sampler>/crop<f>x"`` for a :class:`~mrirecon_vdm.linop.CropFourier` with the same
    integer factor f on both axes, else None (no calibration measured for other operators)."""
    from .linop import fourier_structure
    st = fourier_structure(A)
    if st is None or st.crop is None or st.maps is not None or st.phase is not None:
        return None
    hr, lr = st.hr_shape, tuple(st.crop[-2:])
    f = {h / m for h, m in zip(hr, lr)}
    if len(f) != 1:
        return None
    f = f.pop()
    if f != int(f):
        return None
    return f"{sampler}/crop{int(f)}x"


def check_calibration(name, calibration):
    """``ValueError`` unless ``calibration`` is ``"auto"``, None or a finite number > 0."""
    if calibration is None or (isinstance(calibration, str) and calibration == "auto"):
        return
    ok = isinstance(calibration, (int, float, np.floating, np.integer)) \
        and not isinstance(calibration, bool)
    if not ok or not math.isfinite(float(calibration)) or float(calibration) <= 0:
        raise ValueError(f"{name}: expected 'auto', None or a finite number > 0, got "
                         f"{calibration!r}")


def calibration_factor(calibration, prior, A, sampler, num_samples, table=None):
    """The factor c applied to the sample spread, or None (raw spread).

    Args:
        calibration: ``"auto"`` (look up the shipped table: an entry for this prior's
            weights, :func:`method_key` and K), None (no factor) or a number (that factor).
        prior: the prior (its weights' SHA-256 must match the table's).
        A (sigpy.linop.Linop): the forward operator (the method key).
        sampler (str): ``"fast"`` or ``"paper"``.
        num_samples (int): K.
        table (dict or None): a table like :func:`load_table`'s (default: the shipped one).
    """
    if calibration is None:
        return None
    if not isinstance(calibration, str):
        return float(calibration)
    key = method_key(A, sampler)
    if key is None:
        return None
    table = load_table() if table is None else table
    entries = [e for e in table.get("entries", [])
               if e.get("method") == key and int(e.get("num_samples", -1)) == int(num_samples)]
    if not entries:
        return None
    from .prior.pretrained import weights_sha256
    if table.get("prior_sha256") is None or weights_sha256(prior) != table["prior_sha256"]:
        return None
    return float(entries[0]["factor"])
