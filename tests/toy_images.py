"""Small synthetic magnitude slices shared by the benchmark tests."""
import numpy as np


def disc_slices(n=3, size=16):
    """``n`` (size x size) float32 slices: a slightly shifted disc with a cosine texture."""
    yy, xx = np.mgrid[:size, :size] / size
    out = []
    for i in range(n):
        r2 = (xx - 0.5 - 0.03 * i) ** 2 + (yy - 0.5) ** 2
        out.append(np.where(r2 < 0.12, 0.6 + 0.4 * np.cos(8 * xx + i), 0.0))
    return np.stack(out).astype(np.float32)
