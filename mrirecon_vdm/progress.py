"""Progress of long jobs, as SigPy's Apps show it, readable in a log file too.

On a terminal :func:`progress` is a tqdm bar. Written to a file or a pipe (a job's log), a
tqdm bar rewrites itself with carriage returns and, through SigPy's ``App.run`` (``update``
then ``refresh``), leaves each state twice; there :func:`progress` prints one plain line per
update instead, at most one every :data:`LOG_INTERVAL` seconds, and always the last.
:func:`run_app` is ``sigpy.app.App.run`` with that progress.
"""
import sys
import time

__all__ = ["progress", "run_app", "LOG_INTERVAL"]

#: Seconds between two progress lines in a log (not a terminal).
LOG_INTERVAL = 5.0


class _LogLines:
    """A progress line per update in a log: ``<desc>: <n>/<total> (<s> s)``."""

    def __init__(self, total, desc, file, interval):
        self.total, self.desc, self.file, self.interval = total, desc, file, interval
        self.n, self.start, self._last = 0, time.perf_counter(), None

    def update(self, n=1):
        self.n += n
        now = time.perf_counter()
        if self.n >= (self.total or float("inf")) or self._last is None \
                or now - self._last >= self.interval:
            self._last = now
            total = "" if self.total is None else f"/{self.total}"
            print(f"{self.desc}: {self.n}{total} ({now - self.start:.1f} s)", file=self.file,
                  flush=True)

    def set_description(self, desc):
        self.desc = desc

    def close(self):
        pass


class _Off:
    def update(self, n=1):
        pass

    def set_description(self, desc):
        pass

    def close(self):
        pass


def progress(total, desc, leave=True, disable=False, file=None, interval=None):
    """A progress indicator with ``update()``, ``set_description()`` and ``close()``.

    Args:
        total (int or None): the number of updates expected.
        desc (str): what is running.
        leave (bool): keep a terminal bar after it ends.
        disable (bool): show nothing.
        file: where to write (default ``sys.stderr``).
        interval (float or None): seconds between log lines (default :data:`LOG_INTERVAL`).
    """
    if disable:
        return _Off()
    file = sys.stderr if file is None else file
    if getattr(file, "isatty", lambda: False)():
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc, leave=leave, file=file)
    return _LogLines(total, desc, file, LOG_INTERVAL if interval is None else interval)


def run_app(app):
    """``sigpy.app.App.run`` with :func:`progress` (one update per iteration of the Alg)."""
    bar = progress(app.alg.max_iter, type(app).__name__, leave=app.leave_pbar,
                   disable=not app.show_pbar)
    try:
        while not app.alg.done():
            start = time.time()
            app._pre_update()
            app.alg.update()
            app._post_update()
            if app.record_time:
                app.time.append(app.time[-1] + time.time() - start)
            app._summarize()
            bar.update()
    finally:
        bar.close()
    return app._output()
