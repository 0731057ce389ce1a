"""The benchmark's journal: finished slices on disk, so that a killed benchmark can go on.

Every finished ``(method, scale, slice)`` is appended (flushed and fsync'ed) to
``<out>/bench.journal.jsonl`` (:data:`JOURNAL`), whose first line fingerprints the data
(:func:`fingerprint`: the slices' bytes, the data range, σ, the seed, the plugins). A resumed
run reads the journal and skips the slices already done (their metrics and timings are
kept); a journal written for other data is refused with the difference, and a line torn by
the kill is dropped. Each entry also records the method's settings (:func:`method_settings`:
the tuned weights of a classical method, the prior's SHA-256 for a learned one): entries
made with other settings are run again. Methods and factors may be added on resume.
"""
import json

__all__ = ["BenchJournal", "JOURNAL", "JOURNAL_FORMAT", "fingerprint", "method_settings",
           "prior_fingerprint"]

#: File name of the journal inside the benchmark's output folder.
JOURNAL = "bench.journal.jsonl"
#: Version of the journal's format (part of its fingerprint).
JOURNAL_FORMAT = 2


class BenchJournal:
    """Append-only record of finished slices, so that a killed benchmark can go on.

    The first line is ``{"fingerprint": {...}}`` (the data); every further line is one
    finished ``(method, scale, slice)`` with its metrics, seconds, NFE and the method's
    ``settings`` (:func:`method_settings`): an entry made with other settings is not
    reused. Each line is flushed and fsync'ed when written, so a kill loses at most the
    slice in progress (a torn last line is dropped on reading).

    Args:
        path (path-like): the journal file.
        fingerprint (dict): JSON-serialisable description of the run; ``resume`` requires
            the journal's to be equal.
        resume (bool): read and extend an existing journal (a missing one starts fresh);
            False starts a fresh journal, replacing any old one.

    Raises:
        ValueError: ``resume`` and the journal belongs to another run, or a line other
            than the last is not valid JSON.
    """

    def __init__(self, path, fingerprint, resume=False):
        import pathlib

        from .._atomic import atomic_write_text

        self.path = pathlib.Path(path)
        self.fingerprint = json.loads(json.dumps(fingerprint))   # normalised (tuples, ...)
        self.entries = {}
        self.resumed = 0
        if resume and self.path.exists():
            self._read()
            self.resumed = len(self.entries)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps({"fingerprint": self.fingerprint}) + "\n")
        self._file = open(self.path, "a", encoding="utf-8")

    def _read(self):
        lines = self.path.read_text(encoding="utf-8").split("\n")
        complete = lines[:-1]          # text after the last newline is a torn write
        if not complete:
            raise ValueError(f"{self.path}: empty benchmark journal; rerun without --resume")
        try:
            head = json.loads(complete[0])["fingerprint"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{self.path}: not a benchmark journal (first line "
                             f"{complete[0][:80]!r}); rerun without --resume") from None
        if head != self.fingerprint:
            from .._checks import differing_keys
            diff = differing_keys(head, self.fingerprint)
            raise ValueError(f"{self.path} was written for another run (it differs in "
                             f"{', '.join(diff)}: journal {[head.get(k) for k in diff]}, "
                             f"now {[self.fingerprint.get(k) for k in diff]}); rerun without "
                             f"--resume to start over, or use another --out")
        n_slices = (head.get("image_stack") or [None])[0]
        for n, line in enumerate(complete[1:], start=2):
            try:
                e = json.loads(line)
                key = (e["method"], int(e["scale"]), int(e["slice"]))
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{self.path}: line {n} is not a journal entry: "
                                 f"{line[:80]!r}") from None
            problem = _entry_problem(e, n_slices)
            if problem:
                raise ValueError(f"{self.path}: line {n} ({key[0]} {key[1]}x slice {key[2]}) "
                                 f"is damaged: {problem}; delete that line (the slice is run "
                                 f"again) or rerun without --resume")
            self.entries[key] = e
        if lines[-1]:
            # drop the torn tail so that the next entry starts on a fresh line
            with open(self.path, "w", encoding="utf-8") as f:
                f.write("\n".join(complete) + "\n")
                f.flush()
                import os
                os.fsync(f.fileno())

    def done(self, method, scale, settings=None):
        """``{slice: entry}`` of the slices of ``method`` at ``scale`` already finished.

        With ``settings``, only entries recorded with the same settings (e.g. the classical
        method's tuned weights, the prior's hash) count: stale ones are run again.
        """
        settings = None if settings is None else json.loads(json.dumps(settings))
        return {k[2]: e for k, e in self.entries.items() if k[:2] == (method, int(scale))
                and (settings is None or e.get("settings") == settings)}

    def add(self, entry):
        """Record one finished slice (a dict with ``method``, ``scale``, ``slice``, ...)."""
        import os

        key = (entry["method"], int(entry["scale"]), int(entry["slice"]))
        self.entries[key] = entry
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self):
        self._file.close()


def _entry_problem(e, n_slices=None):
    """What is wrong with a journal entry's values ("" when nothing): every metric a number
    (PSNR may be +inf, for an exact reconstruction; nothing may be NaN), seconds and NFE
    finite and >= 0, the slice index inside the data."""
    import math

    from ..metrics import METRICS

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    for m in METRICS:
        v = e.get(m)
        ok = number(v) and not math.isnan(v) and (math.isfinite(v) or (m == "psnr" and v > 0))
        if not ok:
            return f"{m} is {v!r}, expected a finite number"
    for k in ("seconds", "nfe"):
        v = e.get(k)
        if not (number(v) and math.isfinite(v) and v >= 0):
            return f"{k} is {v!r}, expected a finite number >= 0"
    s = int(e["slice"])
    if s < 0 or (n_slices is not None and s >= n_slices):
        return f"slice {s} is outside the {n_slices} slices of the data"
    return ""


def fingerprint(images, data_range, sigma, seed, plugins=(), task=None):
    """What a resumed benchmark must share with the journal it goes on from: the data.

    The slices' bytes (SHA-256, after ``--stride``/``--limit``), the data range, σ, the
    seed, the plugins, the task and, with coils, ESPIRiT's crop
    (:data:`mrirecon_vdm.coils.DEFAULT_CROP`). The methods and factors may change between runs; what each method
    depends on (tuned weights, the prior) is checked per entry (:func:`method_settings`).
    """
    import hashlib

    import numpy as np

    fp = {"format": JOURNAL_FORMAT,
          "images_sha256": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest(),
          "image_stack": list(images.shape), "data_range": float(data_range),
          "sigma": None if sigma is None else float(sigma), "seed": seed,
          "plugins": sorted(plugins)}
    if task is not None and task.task != "sr":
        fp["task"] = task.describe()        # sr journals keep their old fingerprint
        if task.coils > 1:                  # the ESPIRiT maps every method reconstructs with
            from ..coils import DEFAULT_CROP
            fp["espirit_crop"] = DEFAULT_CROP
    return fp


def method_settings(name, scale, kind="sr", opts=None):
    """What a journal entry of ``name`` at ``scale`` depends on besides the data.

    The tuned ``lamda`` / ``max_iter`` of the regularised classical methods
    (``mrirecon_vdm/baselines_defaults.json``) and their solver version where it changed
    (``baselines.SOLVER_VERSIONS``), for learned methods (NFE > 0) the prior's
    SHA-256 (:func:`prior_fingerprint`), and the method's registered ``settings`` for the
    options ``opts`` the benchmark passes it (:meth:`~mrirecon_vdm.bench.registry.Method.
    settings_for`). A re-tuned baseline, another prior or a changed algorithm makes its old
    entries stale.
    """
    from .. import baselines as B
    from .registry import METHODS

    if name in B.REGULARISED:
        out = {"lamda": B.default_lamda(name, scale, kind),
               "max_iter": B.default_max_iter(name, scale, kind)}
        if name in B.SOLVER_VERSIONS:
            out["solver"] = B.SOLVER_VERSIONS[name]
        return out
    out = {}
    if name in METHODS and METHODS[name].nfe > 0:
        out = prior_fingerprint()
    if name in METHODS:
        out.update(METHODS[name].settings_for(opts, kind))
    return out


def prior_fingerprint():
    """The VDM methods' prior: its source, training step and the SHA-256 of its weights
    (:func:`mrirecon_vdm.prior.pretrained.weights_sha256`, computed once per prior)."""
    from ..prior.pretrained import weights_sha256
    from . import vdm_methods as vm

    prior = vm.get_prior()
    if _prior_fp.get("prior") is not prior:
        fp = {"prior": vm.prior_source(),
              "prior_step": getattr(prior, "provenance", {}).get("step"),
              "prior_sha256": weights_sha256(prior)}
        _prior_fp.update(prior=prior, fp=fp)
    return dict(_prior_fp["fp"])


_prior_fp = {}          # the last prior hashed and its fingerprint (the weights are frozen)
