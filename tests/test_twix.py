"""Real raw k-space: the Siemens phantom of twixtools (a 64 x 64 centre crop of its k-space
ships in tests/data, MIT) through the fastMRI layout and ``recon``; the twix reader's
reordering on a stand-in for twixtools; the real file when twixtools and the cached release
are there."""
import pathlib
import sys
import types

import h5py
import numpy as np
import pytest

from mrirecon_vdm import cli, metrics
from mrirecon_vdm.data.twix import read_twix_kspace, write_fastmri

DATA = pathlib.Path(__file__).parent / "data" / "gre_phantom_k64.npy"


def coil_images(k):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


def test_phantom_piece_through_recon(tmp_path):
    """Fully sampled 2-coil k-space, undersampled 2x along the phase encoding: plug-and-play
    with the shipped prior and ESPIRiT maps from the data is closer to the fully sampled
    root-sum-of-squares than zero-filling."""
    from mrirecon_vdm.sampling import cartesian_mask

    full = np.load(DATA)                                         # (2, 64, 64)
    ref = np.sqrt((np.abs(coil_images(full)) ** 2).sum(0))
    write_fastmri(tmp_path / "gre.h5", full[None], (5.0, 5.0, 4.0))
    with h5py.File(tmp_path / "gre.h5") as f:
        assert f["kspace"].shape == (1, 2, 64, 64) and f.attrs["voxel_size_mm"][2] == 4.0
    mask = cartesian_mask((64, 64), 2, center=16, seed=0)
    np.save(tmp_path / "mask.npy", mask)
    assert cli.main(["recon", str(tmp_path / "gre.h5"), "--mask", str(tmp_path / "mask.npy"),
                     "--out", str(tmp_path / "x.npy"), "--quiet"]) == 0
    x = np.abs(np.load(tmp_path / "x.npy"))[0]
    zf = np.sqrt((np.abs(coil_images(full * mask)) ** 2).sum(0))
    r = float(ref.max())
    assert metrics.evaluate(ref, x, r)["nrmse"] < metrics.evaluate(ref, zf, r)["nrmse"]


def test_reader_reorders_to_fastmri(tmp_path, monkeypatch):
    """twixtools' (…, Lin, Cha, Col) with singleton dimensions -> (slices, coils, readout,
    lines), the voxel size from the protocol; other dimensions are refused by name."""
    dims = ["Ide", "Idd", "Idc", "Idb", "Ida", "Seg", "Set", "Rep", "Phs", "Eco", "Par",
            "Sli", "Ave", "Lin", "Cha", "Col"]
    rng = np.random.default_rng(0)
    k = (rng.standard_normal((6, 2, 8)) + 1j * rng.standard_normal((6, 2, 8)))

    class Image:
        def __init__(self, data, non_singleton):
            self.data, self.non_singleton_dims, self.dims = data, non_singleton, dims
            self.flags = {}

        def __getitem__(self, item):
            return self.data

    def fake(non_singleton, data):
        hdr = {"MeasYaps": {"sSliceArray": {"asSlice": [
            {"dReadoutFOV": 200.0, "dPhaseFOV": 150.0, "dThickness": 4.0}]}}}
        return types.SimpleNamespace(
            read_twix=lambda path, verbose=False: [{"hdr": hdr}],
            map_twix=lambda scan: {"image": Image(data, non_singleton)})

    (tmp_path / "x.dat").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "twixtools",
                        fake(["Lin", "Cha", "Col"], k.reshape((1,) * 13 + k.shape)))
    got, voxel = read_twix_kspace(tmp_path / "x.dat")
    assert got.shape == (1, 2, 8, 6) and got.dtype == np.complex64
    np.testing.assert_allclose(got[0], np.transpose(k, (1, 2, 0)).astype(np.complex64))
    assert voxel == (25.0, 25.0, 4.0)
    monkeypatch.setitem(sys.modules, "twixtools",
                        fake(["Ave", "Lin", "Cha", "Col"], k.reshape((1,) * 13 + k.shape)))
    with pytest.raises(ValueError, match="x.dat: .* also has Ave"):
        read_twix_kspace(tmp_path / "x.dat")
    with pytest.raises(FileNotFoundError):
        read_twix_kspace(tmp_path / "missing.dat")


def _cached_phantom():
    from mrirecon_vdm.data.fetch import default_cache_dir
    path = default_cache_dir() / "raw" / "twix_gre_phantom.dat"
    return path if path.exists() else None


@pytest.mark.skipif(_cached_phantom() is None or not __import__("importlib").util.find_spec(
    "twixtools"), reason="twixtools and the cached phantom (mrirecon-vdm data twix --out x.h5)")
def test_the_real_file_matches_the_shipped_piece():
    k, voxel = read_twix_kspace(_cached_phantom())
    assert k.shape == (1, 2, 160, 160) and voxel == (1.25, 1.25, 4.0)
    np.testing.assert_array_equal(k[0, :, 48:112, 48:112], np.load(DATA))
