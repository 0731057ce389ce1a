"""Sampling patterns: exact line counts, centred calibration, seeds, variable density,
Poisson-disc acceleration, calibration_shape / mask_from_kspace / acceleration, errors."""
import numpy as np
import pytest
import sigpy as sp

from mrirecon_vdm.sampling import (CARTESIAN_PATTERNS, acceleration, calibration_shape,
                                   max_poisson_accel,
                                   cartesian_mask, center_lines, mask_from_kspace, poisson_mask)

# (shape, accel, center, axis): odd / even / non-square sizes, fraction and int centres, both axes
CASES = [
    ((32, 32), 4, 8, -1),
    ((31, 33), 3, 0.2, -2),
    ((16, 15), 2, 5, -1),
    ((15, 16), 4, 3, 0),
    ((20, 17), 2.5, 0.25, 1),
    ((24, 24), 1, 4, -1),          # R = 1: every line
]


def lines_of(mask, axis):
    """The sampled lines along ``axis`` (a 1D bool array), checking they are whole lines."""
    ax = axis % 2
    other = 1 - ax
    assert np.all(mask.all(axis=other) == mask.any(axis=other)), "partial lines"
    return mask.any(axis=other)


def centre_indices(n, count):
    """Where sigpy.resize puts the central block of ``count`` of ``n`` entries."""
    return sp.resize(np.arange(n), (count,))


@pytest.mark.parametrize("pattern", CARTESIAN_PATTERNS)
@pytest.mark.parametrize("shape,accel,center,axis", CASES)
def test_cartesian_line_count_centre_and_whole_lines(pattern, shape, accel, center, axis):
    m = cartesian_mask(shape, accel, center=center, pattern=pattern, axis=axis, seed=3)
    assert m.shape == shape and m.dtype == bool
    n = shape[axis % 2]
    lines = lines_of(m, axis)
    assert lines.sum() == round(n / accel)
    c = center if isinstance(center, int) else int(round(n * center))
    assert center_lines(n, center) == c
    idx = centre_indices(n, c)
    assert lines[idx].all()
    # the block is centred at n // 2, one line more on the negative side for even counts
    assert idx[0] == n // 2 - c // 2 and idx[-1] == n // 2 - c // 2 + c - 1
    assert n // 2 in idx
    cal = calibration_shape(m)
    assert cal[axis % 2] >= c and cal[1 - axis % 2] == shape[1 - axis % 2]


@pytest.mark.parametrize("pattern", CARTESIAN_PATTERNS)
def test_cartesian_seeds(pattern):
    a = cartesian_mask((32, 32), 4, center=4, pattern=pattern, seed=0)
    np.testing.assert_array_equal(a, cartesian_mask((32, 32), 4, center=4, pattern=pattern,
                                                    seed=0))
    others = [cartesian_mask((32, 32), 4, center=4, pattern=pattern, seed=s) for s in (1, 2, 3)]
    assert any(not np.array_equal(a, b) for b in others)
    if pattern == "random":
        assert not np.array_equal(a, others[0])


def test_equispaced_spacing_is_regular():
    """The non-centre lines are every ``(n - c) / k``-th of the remaining ones."""
    n, c = 64, 6
    m = cartesian_mask((8, n), 4, center=c, pattern="equispaced", seed=5)
    lines = lines_of(m, -1)
    free = np.ones(n, bool)
    free[centre_indices(n, c)] = False
    others = np.flatnonzero(free)
    k = round(n / 4) - c
    pos = np.flatnonzero(lines[others])          # positions within the non-centre lines
    assert len(pos) == k
    step = len(others) / k
    assert set(np.diff(pos)) <= {int(np.floor(step)), int(np.ceil(step))}


def test_gaussian_is_denser_near_the_centre():
    """Over many seeds, lines near the centre are drawn more often than lines at the edge;
    "random" draws them uniformly."""
    n, c = 64, 4
    counts = {p: np.zeros(n) for p in ("gaussian", "random")}
    for seed in range(60):
        for p in counts:
            counts[p] += lines_of(cartesian_mask((4, n), 4, center=c, pattern=p, seed=seed), -1)
    d = np.abs(np.arange(n) - n // 2)
    near = (d > c) & (d <= 12)
    far = d >= 22
    g, r = counts["gaussian"] / 60, counts["random"] / 60
    assert g[near].mean() > 2 * g[far].mean()
    assert abs(r[near].mean() - r[far].mean()) < 0.12


@pytest.mark.parametrize("kwargs,match", [
    (dict(accel=0.5), "accel"),
    (dict(accel="x"), "accel"),
    (dict(accel=float("inf")), "accel"),
    (dict(accel=4, center=12), "exceeds"),              # 12 centre lines > 8 kept
    (dict(accel=4, center=0.5), "exceeds"),
    (dict(pattern="poisson"), "pattern"),
    (dict(axis=2), "axis"),
    (dict(axis=-3), "axis"),
    (dict(center=True), "center"),
    (dict(center=-1), "cartesian_mask: center"),
    (dict(center=0.0), r"\(0, 1\)"),
    (dict(center=1.0), r"\(0, 1\)"),
    (dict(center=1.5), r"\(0, 1\)"),
    (dict(center=0), r"\[1, 32\]"),
    (dict(center=33), r"\[1, 32\]"),
    (dict(center="a"), "center"),
    (dict(shape=(32,)), "at least 2"),
    (dict(shape=(2, 32, 32)), r"\(H, W\)"),
])
def test_cartesian_errors(kwargs, match):
    args = dict(shape=(32, 32), accel=2, center=4, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        cartesian_mask(args.pop("shape"), args.pop("accel"), **args)


@pytest.mark.parametrize("shape,accel,calib", [((32, 32), 4, 8), ((32, 32), 3, 0.25),
                                                ((31, 28), 5, (6, 10)), ((40, 24), 2, 6)])
def test_poisson_mask(shape, accel, calib):
    m = poisson_mask(shape, accel, calib=calib, seed=1)
    assert m.shape == shape and m.dtype == bool
    assert abs(acceleration(m) - accel) <= 0.15 * accel
    cal = calib if isinstance(calib, tuple) else (calib, calib)
    want = tuple(center_lines(n, c) for n, c in zip(shape, cal))
    got = calibration_shape(m)
    assert got[0] >= want[0] and got[1] >= want[1]
    rows, cols = centre_indices(shape[0], want[0]), centre_indices(shape[1], want[1])
    assert m[np.ix_(rows, cols)].all()
    np.testing.assert_array_equal(m, poisson_mask(shape, accel, calib=calib, seed=1))
    assert not np.array_equal(m, poisson_mask(shape, accel, calib=calib, seed=2))


@pytest.mark.parametrize("kwargs,match", [
    (dict(seed=None), "seed must be an int"),
    (dict(seed=1.5), "seed must be an int"),
    (dict(seed=True), "seed must be an int"),
    (dict(accel=1), "> 1"),
    (dict(accel=0.5), ">= 1"),
    (dict(calib=(4, 4, 4)), "pair"),
    (dict(calib=40), r"\[1, 32\]"),
    (dict(calib=-1), r"poisson_mask: calib: a line count must be in \[1, 32\], got -1"),
    (dict(calib=-0.5), r"poisson_mask: calib: a fraction"),
    (dict(calib=0), r"poisson_mask: calib: a line count"),
    (dict(accel=1000), r"accel 1000 is beyond .* \(at most \d+"),
    (dict(accel=80), r"accel 80 is beyond"),
    (dict(shape=(3, 32, 32)), r"\(H, W\)"),
])
def test_poisson_errors(kwargs, match):
    args = dict(shape=(32, 32), accel=4, calib=6, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        poisson_mask(args.pop("shape"), args.pop("accel"), **args)


def test_calibration_shape_of_hand_made_masks():
    m = np.zeros((8, 8), bool)
    assert calibration_shape(m) == (0, 0)
    m[4, 4] = True
    assert calibration_shape(m) == (1, 1)
    m[:] = False
    m[3:6, :] = True            # 3 full rows around the centre row 4
    assert calibration_shape(m) == (3, 8)
    m[:] = False
    m[2:6, :] = True            # 4 rows, one more on the negative side: the convention
    assert calibration_shape(m) == (4, 8)
    m[:] = False
    m[3:7, :] = True            # 4 rows, one more on the positive side: only 3 count
    assert calibration_shape(m) == (3, 8)
    m[:] = False
    m[2:7, 3:6] = True          # a 5 x 3 block around (4, 4)
    assert calibration_shape(m) == (5, 3)
    m = np.zeros((7, 9))        # odd sizes, centre (3, 4); 0/1 floats
    m[2:5, 3:6] = 1.0
    assert calibration_shape(m) == (3, 3)
    assert calibration_shape(np.ones((5, 6))) == (5, 6)
    with pytest.raises(ValueError, match="2D"):
        calibration_shape(np.ones((2, 8, 8)))


def test_mask_from_kspace_and_acceleration():
    rng = np.random.default_rng(0)
    mask = cartesian_mask((16, 12), 3, center=4, seed=0)
    k = (rng.standard_normal((3, 16, 12)) + 1j * rng.standard_normal((3, 16, 12))) * mask
    k[1] = 0                                      # a coil with nothing: the others count
    got = mask_from_kspace(k, coil_axis=0)
    assert got.shape == (16, 12) and got.dtype == bool
    np.testing.assert_array_equal(got, mask)
    np.testing.assert_array_equal(mask_from_kspace(k[None], coil_axis=-3)[0], mask)
    np.testing.assert_array_equal(mask_from_kspace(k[0]), mask)
    assert mask_from_kspace(k).shape == (3, 16, 12)
    with pytest.raises(ValueError, match="no non-zero"):
        mask_from_kspace(np.zeros((2, 8, 8), np.complex64), coil_axis=0)
    assert acceleration(mask) == pytest.approx(16 * 12 / mask.sum())
    assert acceleration(mask) == pytest.approx(12 / 4)
    quarter = np.zeros((8, 8))
    quarter[::2, ::2] = 1
    assert acceleration(quarter) == 4.0
    assert acceleration(np.stack([quarter, np.ones((8, 8))])) == pytest.approx(128 / 80)
    with pytest.raises(ValueError, match="samples nothing"):
        acceleration(np.zeros((4, 4)))


def test_poisson_mask_ends_where_sigpy_would_turn_forever():
    """Small grids at high accelerations: SigPy's bisection on the density slope never meets
    its tolerance of 0.1 (one sample is 0.25 here) and loops forever; ours ends, with a
    pattern near the acceleration, and refuses what no slope reaches, at once."""
    import time

    start = time.perf_counter()
    m = poisson_mask((32, 32), 16, calib=3, seed=0)
    assert abs(m.size / m.sum() - 16) < 0.1 * 16
    assert max_poisson_accel((32, 32), (3, 3)) > 16
    with pytest.raises(ValueError, match="beyond"):
        poisson_mask((32, 32), 1000, seed=0)
    assert time.perf_counter() - start < 30


def test_poisson_mask_equals_sigpy_where_sigpy_ends():
    import sigpy.mri

    for shape, accel, cal, seed in (((64, 64), 8, (5, 5), 3), ((32, 40), 4, (6, 8), 0)):
        want = np.abs(sigpy.mri.poisson(shape, accel, calib=cal, seed=seed)) > 0
        got = poisson_mask(shape, accel, calib=cal, seed=seed)
        rows, cols = centre_indices(shape[0], cal[0]), centre_indices(shape[1], cal[1])
        want[np.ix_(rows, cols)] = True              # the centre convention of poisson_mask
        np.testing.assert_array_equal(got, want)


def test_mask_from_kspace_refuses_non_finite_kspace():
    k = np.full((8, 8), np.nan, np.complex64)
    with pytest.raises(ValueError, match="mask_from_kspace: the k-space: expected finite"):
        mask_from_kspace(k)
    k = np.ones((2, 8, 8), np.complex64)
    k[1, 3, 3] = np.inf
    with pytest.raises(ValueError, match="1 NaN/Inf"):
        mask_from_kspace(k, coil_axis=0)
