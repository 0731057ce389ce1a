"""DLPack conversions and optional-dependency detection."""
import numpy as np
import pytest
import torch

from mrirecon_vdm import backend, config


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64])
def test_numpy_torch_roundtrip_shares_memory(dtype):
    x = (np.arange(12).reshape(3, 4) * (1 + 1j if np.iscomplexobj(np.zeros(1, dtype)) else 1)).astype(dtype)
    t = backend.to_torch(x)
    assert t.shape == (3, 4) and t.device.type == "cpu"
    t[0, 0] = 42
    assert x[0, 0] == 42                      # no copy
    y = backend.from_torch(t)
    assert isinstance(y, np.ndarray) and y.dtype == dtype
    np.testing.assert_array_equal(y, x)


def test_from_torch_resolves_conjugate_views():
    t = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex64).conj()
    np.testing.assert_array_equal(backend.from_torch(t), np.array([1 - 2j, 3 + 1j], np.complex64))


def test_torch_device_of_cpu_array():
    assert backend.torch_device_of(np.zeros(2)) == torch.device("cpu")
    assert backend.get_xp(np.zeros(2)) is np


def test_optional_dependency_flags_are_booleans():
    assert isinstance(config.cupy_enabled(), bool)
    assert isinstance(config.bart_available(), bool)
    if not config.bart_available():
        with pytest.raises(RuntimeError, match="apt-get install bart"):
            config.require_bart()


def test_package_import_is_light():
    import subprocess
    import sys
    # the top-level import loads nothing heavy; operators load SigPy (which loads torch)
    # but neither cupy nor the prior
    code = ("import sys, mrirecon_vdm; a = [m in sys.modules for m in ('torch', 'sigpy')]; "
            "mrirecon_vdm.CropFourier; "
            "b = [m in sys.modules for m in ('cupy', 'mrirecon_vdm.prior', 'bart')]; print(a, b)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[False, False] [False, False, False]"


@pytest.mark.gpu
@pytest.mark.skipif(not config.cupy_enabled(), reason="needs cupy and a CUDA device")
def test_cupy_torch_roundtrip_no_copy():
    import cupy
    x = cupy.arange(6, dtype=cupy.float32)
    t = backend.to_torch(x)
    assert t.device.type == "cuda"
    t[0] = 7
    assert float(x[0]) == 7
    y = backend.from_torch(t)
    assert isinstance(y, cupy.ndarray) and y.data.ptr == x.data.ptr
