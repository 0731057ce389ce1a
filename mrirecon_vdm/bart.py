"""A BART caller that raises with BART's own message.

The PyPI wrapper ``mrbart`` (``from bart import bart``) prints BART's error and returns
None. This module calls the ``bart`` binary itself on ``.cfl``/``.hdr`` files in a private
temporary folder (written and read with ``mrbart``'s cfl helpers), captures its output and
raises :class:`BartError` carrying BART's message when the command fails.

BART's conventions, for callers (measured with BART 0.8.00):
    * ``fft -u 3`` is the centred orthonormal FFT over the first two axes, identical to
      ``sigpy.fft(x, center=True)`` and to :class:`mrirecon_vdm.linop.CropFourier`'s FFT
      (odd sizes included); ``fft -i`` without ``-u`` is not normalised.
    * arrays map onto BART's dimensions in order (axis 0 -> dim 0 = READ, ...); BART stores
      column-major, the cfl helpers handle it.
    * ``pics`` scales the data internally; ``-S`` returns the image on the physical scale,
      ``-w 1`` switches the internal scaling off.

References:
    Uecker, M., Ong, F., Tamir, J. I., Bahri, D., Virtue, P., Cheng, J. Y., Zhang, T., &
    Lustig, M. (2015). Berkeley Advanced Reconstruction Toolbox. Proc. Intl. Soc. Mag.
    Reson. Med. 23, 2486.
"""
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile

import numpy as np
import sigpy as sp

from .config import BART_INSTALL_HINT, bart_available, require_bart

__all__ = ["bart", "BartError", "bart_available", "bart_version"]

_log = logging.getLogger(__name__)

#: OpenMP threads of the BART process (``OMP_NUM_THREADS``). On 128 x 128 slices BART's
#: threading costs more than it gains, and on a busy machine its spinning threads made
#: ``pics`` 25x slower (measured on 2 cores); None inherits the environment.
THREADS = 1
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BartError(RuntimeError):
    """A BART command failed.

    Attributes:
        command (list of str): the command line, BART's arguments only (no file names).
        returncode (int): the exit status (negative: killed by that signal).
        message (str): what BART wrote to stderr (and stdout), colour codes removed.
    """

    def __init__(self, command, returncode, message):
        self.command = list(command)
        self.returncode = returncode
        self.message = message
        text = message if message else "(BART printed no message)"
        super().__init__(f"bart {' '.join(self.command)} failed with exit status "
                         f"{returncode}: {text}")


def _binary():
    path = shutil.which("bart")
    if path is None:  # bart_available() said yes, but PATH changed since
        raise RuntimeError(BART_INSTALL_HINT)
    return path


def _tokens(cmd):
    if isinstance(cmd, str):
        tokens = shlex.split(cmd)
    else:
        tokens = [str(c) for c in cmd]
    if not tokens:
        raise ValueError("bart: empty command")
    return tokens


def _clean(text):
    return _ANSI.sub("", text or "").strip()


def bart_version():
    """BART's version string, e.g. ``"v0.8.00"`` (``RuntimeError`` when BART is missing)."""
    require_bart()
    out = subprocess.run([_binary(), "version"], capture_output=True, text=True, check=False)
    return _clean(out.stdout)


def bart(nargout, cmd, *arrays, **kw_arrays):
    """Run a BART command on arrays and return its outputs; raise when it fails.

    Mirrors ``mrbart``'s ``bart(nargout, cmd, *args, **kwargs)``: ``arrays`` are written to
    files passed after the command's options, in order, followed by ``nargout`` output
    files; each keyword array ``name=a`` is passed as ``-name FILE`` (one letter) or
    ``--name FILE`` before them, e.g. ``bart(1, "pics -S", ksp, sens, p=pattern)``.

    Args:
        nargout (int): number of output arrays, ``>= 0``.
        cmd (str or list of str): BART tool and options, e.g. ``"fft -u 3"``.
        *arrays (array): inputs (numpy or cupy; cast to complex64, as BART stores them).
        **kw_arrays (array): inputs passed through an option.

    Returns:
        None (``nargout == 0``), one complex64 numpy array (``nargout == 1``) or a list.
        Trailing singleton dimensions are dropped, as ``mrbart`` does.

    Raises:
        RuntimeError: when BART or its Python helpers are not installed (with install
            instructions).
        BartError: when the command exits with a non-zero status; its message is BART's.
        ValueError: on a bad ``nargout`` or an empty command.
    """
    require_bart()
    from bart.cfl import readcfl, writecfl  # PyPI mrbart

    if not isinstance(nargout, (int, np.integer)) or isinstance(nargout, bool) or nargout < 0:
        raise ValueError(f"bart: nargout must be an int >= 0, got {nargout!r}")
    tokens = _tokens(cmd)

    with tempfile.TemporaryDirectory(prefix="mrirecon_vdm_bart_") as tmp:
        def write(name, a):
            path = os.path.join(tmp, name)
            a = np.asarray(sp.to_device(a, sp.cpu_device))
            if a.ndim == 0:
                a = a.reshape(1)
            writecfl(path, a.astype(np.complex64, copy=False))
            return path

        options = []
        for key, a in kw_arrays.items():
            options += [("--" if len(key) > 1 else "-") + key, write(f"kw_{key}", a)]
        infiles = [write(f"in{i}", a) for i, a in enumerate(arrays)]
        outfiles = [os.path.join(tmp, f"out{i}") for i in range(nargout)]

        env = None
        if THREADS is not None:
            env = dict(os.environ, OMP_NUM_THREADS=str(int(THREADS)))
        proc = subprocess.run([_binary(), *tokens, *options, *infiles, *outfiles],
                              capture_output=True, text=True, check=False, env=env)
        stdout, stderr = _clean(proc.stdout), _clean(proc.stderr)
        if stdout:
            _log.debug("bart %s: %s", " ".join(tokens), stdout)
        if proc.returncode != 0:
            message = stderr
            if stdout:  # usage lines go to stdout with some tools
                message = f"{stderr}\n{stdout}" if stderr else stdout
            raise BartError(tokens, proc.returncode, message.replace(tmp + os.sep, ""))
        outputs = [np.array(readcfl(f)) for f in outfiles]

    if nargout == 0:
        return None
    if nargout == 1:
        return outputs[0]
    return outputs
