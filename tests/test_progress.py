"""Progress: a tqdm bar on a terminal, one plain line per update in a log."""
import io

from mrirecon_vdm.progress import progress


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_one_line_per_update_in_a_log():
    log = io.StringIO()
    bar = progress(3, "PnPVDMRecon", file=log, interval=0)
    for _ in range(3):
        bar.update()
    bar.close()
    lines = log.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == ["PnPVDMRecon: 1/3", "PnPVDMRecon: 2/3",
                                                       "PnPVDMRecon: 3/3"]
    assert "\r" not in log.getvalue()


def test_log_lines_are_throttled_but_the_last_is_kept():
    log = io.StringIO()
    bar = progress(50, "bench", file=log, interval=3600)
    for _ in range(50):
        bar.update()
    lines = log.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == ["bench: 1/50", "bench: 50/50"]


def test_a_terminal_gets_tqdm_and_disable_shows_nothing():
    tty = Tty()
    bar = progress(2, "GuidedVDMRecon", file=tty)
    assert type(bar).__module__.startswith("tqdm")
    bar.close()
    quiet = io.StringIO()
    off = progress(2, "x", file=quiet, disable=True)
    off.update()
    off.close()
    assert quiet.getvalue() == ""


def test_the_apps_print_one_line_per_step_into_a_log(capsys):
    """PnPVDMRecon shows its progress by default, GuidedVDMRecon too; in a log (pytest's
    captured stderr is not a terminal) one line per step, not two."""
    import numpy as np

    from mrirecon_vdm import progress as P
    from mrirecon_vdm.app import GuidedVDMRecon
    from mrirecon_vdm.gaussian_prior import GaussianPrior, stationary_variance
    from mrirecon_vdm.linop import FourierSampling
    from mrirecon_vdm.pnp import PnPVDMRecon
    from mrirecon_vdm.sampling import cartesian_mask

    P.LOG_INTERVAL, old = 0.0, P.LOG_INTERVAL
    try:
        prior = GaussianPrior(np.full((16, 16), 0.3), variance=stationary_variance((16, 16)))
        A = FourierSampling((16, 16), cartesian_mask((16, 16), 2, center=4, seed=0))
        y = A(np.full((16, 16), 0.3, np.float32)).astype(np.complex64)
        capsys.readouterr()
        PnPVDMRecon(y, A, prior, num_steps=4).run()
        GuidedVDMRecon(y, A, prior, num_steps=3).run()
    finally:
        P.LOG_INTERVAL = old
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in err] == [f"PnPVDMRecon: {i}/4" for i in range(1, 5)] \
        + [f"GuidedVDMRecon: {i}/3" for i in range(1, 4)]
