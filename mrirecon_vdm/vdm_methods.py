"""Old name of :mod:`mrirecon_vdm.bench.vdm_methods`: the VDM samplers as benchmark methods.

``import mrirecon_vdm.vdm_methods`` (or ``--plugin mrirecon_vdm.vdm_methods``) registers the
VDM methods and gives that very module, not a copy: one prior cache (:func:`set_prior`), one
set of settings (``BF16``, ``THREADS``), whichever name they are reached by.
"""
import sys

from .bench import vdm_methods as _vdm_methods

sys.modules[__name__] = _vdm_methods
