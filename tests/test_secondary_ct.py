"""CT L3 body composition: measurement on synthetic DICOM slices and masks, then the cut-offs.

Measurements are checked against hand arithmetic (pixels × 0.8 mm × 0.7 mm ÷ 100 = cm²).
Expected flags come from the papers as summarised in /work/shared/reference/criteria.md §6.1
and §7 row 17, never from the data file: Prado 2008 ≤52.4 / ≤38.5 (≤ as printed in the paper),
Martin 2013 men <43 (BMI <25) or <53 (BMI ≥25), women <41 at any BMI, myosteatosis <41 HU
(BMI <25) or <33 HU (BMI ≥25), BMI exactly 25 in the ≥25 stratum; Carey 2017 <50 / <39.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import narwhals as nw
import nibabel as nib
import numpy as np
import polars as pl
import pytest
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from sarcokit.secondary.ct import (
    CtInputError,
    L3Measurement,
    ct_columns,
    ct_stages,
    measure_l3,
)
from sarcokit.thresholds import subject_exprs

ROWS = COLUMNS = 64
ROW_SPACING, COLUMN_SPACING = 0.8, 0.7
PIXEL_CM2 = ROW_SPACING * COLUMN_SPACING / 100
POSITION = [-100.0, -120.0, 50.0]  # ImagePositionPatient (LPS, mm)
AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # ImageOrientationPatient: columns → L, rows → P
# Outside the mask the image is muscle-like (60 HU), so a mask read in the wrong orientation
# lands on 60 HU pixels and changes every number below.
BACKGROUND_HU = 60
# Mask pixels, placed row-major from row 2, column 30 (top right, asymmetric on purpose).
GROUPS = [
    (40, 10),  # muscle
    (-29, 5),  # muscle: the window's low end is included
    (150, 5),  # muscle: the window's high end is included
    (-30, 4),  # IMAT, not muscle
    (151, 3),  # neither
    (-100, 6),  # IMAT
    (-190, 2),  # IMAT: the IMAT window's low end is included
    (-191, 2),  # neither
]
# By hand: muscle 10 + 5 + 5 = 20 pixels, HU sum 400 − 145 + 750 = 1005, mean 50.25;
# IMAT 4 + 6 + 2 = 12 pixels; mask 37 pixels. Areas: 20 × 0.56 mm² = 0.112 cm², 12 × 0.56 mm²
# = 0.0672 cm².
EXPECTED = {
    "muscle_area_cm2": 0.112,
    "mean_attenuation_hu": 50.25,
    "imat_area_cm2": 0.0672,
    "mask_pixels": 37,
    "muscle_pixels": 20,
    "imat_pixels": 12,
    "row_spacing_mm": 0.8,
    "column_spacing_mm": 0.7,
}


def layout(groups: list[tuple[int, int]]) -> tuple[NDArray[np.float64], NDArray[np.uint8]]:
    """An HU image and its mask with the groups' pixels at known places."""
    hu = np.full((ROWS, COLUMNS), float(BACKGROUND_HU))
    mask = np.zeros((ROWS, COLUMNS), dtype=np.uint8)
    cells = [(2 + k // 20, 30 + k % 20) for k in range(sum(n for _, n in groups))]
    values = [value for value, n in groups for _ in range(n)]
    for (r, c), value in zip(cells, values, strict=True):
        hu[r, c] = value
        mask[r, c] = 1
    return hu, mask


def write_ct(
    path: Path,
    hu: NDArray[np.float64],
    *,
    slope: float = 1.0,
    intercept: float = -1024.0,
    omit: tuple[str, ...] = (),
    **tags: Any,
) -> Path:
    """A single-slice CT file whose stored values give `hu` through the rescale."""
    stored = (hu - intercept) / slope
    assert np.array_equal(stored, np.round(stored)) and stored.min() >= 0
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelSpacing = [ROW_SPACING, COLUMN_SPACING]
    ds.ImagePositionPatient = POSITION
    ds.ImageOrientationPatient = AXIAL
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.set_pixel_data(stored.astype(np.uint16), "MONOCHROME2", 16)
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    for keyword in omit:
        delattr(ds, keyword)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


def write_mask_dicom(path: Path, mask: NDArray[Any], **tags: Any) -> Path:
    """A mask stored as an ordinary DICOM image (not DICOM-SEG) on the slice's geometry."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    ds.Modality = "OT"
    ds.PixelSpacing = [ROW_SPACING, COLUMN_SPACING]
    ds.ImagePositionPatient = POSITION
    ds.ImageOrientationPatient = AXIAL
    ds.set_pixel_data(mask.astype(np.uint8), "MONOCHROME2", 8)
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(path, enforce_file_format=True)
    return path


# The slice's voxel-to-world map, worked out by hand: NIfTI world is RAS, DICOM is LPS, so a
# step down the rows (+P by 0.8 mm) is −0.8 along A, a step along the columns (+L by 0.7 mm)
# is −0.7 along R, and the first pixel (−100, −120, 50) LPS is (100, 120, 50) RAS. Slice
# thickness 5 mm.
SLICE_AFFINE = np.array(
    [
        [0.0, -0.7, 0.0, 100.0],
        [-0.8, 0.0, 0.0, 120.0],
        [0.0, 0.0, 5.0, 50.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
# dcm2niix-style storage: i runs along the columns, j up the rows (flipped), so voxel (i, j)
# is pixel (row 63 − j, column i).
FLIP_TRANSPOSE = np.array(
    [
        [0.0, -1.0, 0.0, ROWS - 1.0],
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


# nibabel's image constructor and header setters are unannotated; mypy --strict refuses them.
NIFTI1: Any = nib.Nifti1Image


def write_nifti(path: Path, data: NDArray[Any], affine: NDArray[np.float64]) -> Path:
    nib.save(NIFTI1(data.astype(np.uint8), affine), path)
    return path


def dcm2niix_style(mask: NDArray[Any]) -> NDArray[Any]:
    """The mask as dcm2niix would store it: data[i, j] = mask[63 − j, i]."""
    return np.flip(mask, axis=0).T[:, :, np.newaxis]


def values(measurement: L3Measurement) -> dict[str, Any]:
    return {key: getattr(measurement, key) for key in EXPECTED}


@pytest.fixture
def slice_and_mask(tmp_path: Path) -> tuple[Path, NDArray[np.uint8]]:
    hu, mask = layout(GROUPS)
    return write_ct(tmp_path / "l3.dcm", hu), mask


# --- Measurement -------------------------------------------------------------------------------


def test_npy_mask_areas_and_attenuation_by_hand(
    tmp_path: Path, slice_and_mask: tuple[Path, NDArray[np.uint8]]
) -> None:
    ct, mask = slice_and_mask
    np.save(tmp_path / "mask.npy", mask)
    measurement = measure_l3(ct, tmp_path / "mask.npy")
    assert values(measurement) == EXPECTED
    assert measurement.window_hu == (-29, 150)
    assert measurement.imat_window_hu == (-190, -30)


def test_array_mask_and_string_path(slice_and_mask: tuple[Path, NDArray[np.uint8]]) -> None:
    ct, mask = slice_and_mask
    assert values(measure_l3(str(ct), mask.astype(bool))) == EXPECTED


def test_slope_two_proves_the_rescale_is_applied(tmp_path: Path) -> None:
    # Even HU only (stored = (HU + 1024) / 2 must be whole). Muscle 40 × 10, −28 × 5, 150 × 5
    # = 20 pixels, HU sum 400 − 140 + 750 = 1010, mean 50.5; IMAT −30 × 4, −100 × 6, −190 × 2
    # = 12; 152 and −192 are in neither window. Read with slope 1 the same stored values would
    # be HU 532 − 1024 = −492 and so on: no muscle at all.
    groups = [(40, 10), (-28, 5), (150, 5), (-30, 4), (152, 3), (-100, 6), (-190, 2), (-192, 2)]
    hu, mask = layout(groups)
    ct = write_ct(tmp_path / "slope2.dcm", hu, slope=2.0, intercept=-1024.0)
    measurement = measure_l3(ct, mask)
    assert measurement.muscle_pixels == 20
    assert measurement.mean_attenuation_hu == 50.5
    assert measurement.imat_pixels == 12
    assert measurement.muscle_area_cm2 == 0.112


def test_anisotropic_spacing_is_honoured(slice_and_mask: tuple[Path, NDArray[np.uint8]]) -> None:
    # 0.8 × 0.7 = 0.56 mm² per pixel; a square-pixel assumption (0.8² or 0.7²) gives 0.128 or
    # 0.098 cm² for the 20 muscle pixels instead of 0.112.
    ct, mask = slice_and_mask
    measurement = measure_l3(ct, mask)
    assert measurement.muscle_area_cm2 == 0.112
    assert measurement.muscle_area_cm2 == pytest.approx(20 * PIXEL_CM2, abs=1e-12)


@pytest.mark.parametrize(
    ("hu", "muscle", "imat"),
    [
        pytest.param(-191, 0, 0, id="-191"),
        pytest.param(-190, 0, 1, id="-190-imat"),
        pytest.param(-30, 0, 1, id="-30-imat"),
        pytest.param(-29, 1, 0, id="-29-muscle"),
        pytest.param(150, 1, 0, id="150-muscle"),
        pytest.param(151, 0, 0, id="151"),
    ],
)
def test_window_boundaries(tmp_path: Path, hu: int, muscle: int, imat: int) -> None:
    image, mask = layout([(hu, 1)])
    measurement = measure_l3(write_ct(tmp_path / "b.dcm", image), mask)
    assert (measurement.muscle_pixels, measurement.imat_pixels) == (muscle, imat)


def test_no_muscle_pixels_gives_no_mean(tmp_path: Path) -> None:
    image, mask = layout([(-100, 3)])
    measurement = measure_l3(write_ct(tmp_path / "fat.dcm", image), mask)
    assert measurement.muscle_area_cm2 == 0
    assert measurement.mean_attenuation_hu is None


def test_custom_window(slice_and_mask: tuple[Path, NDArray[np.uint8]]) -> None:
    # 0…100 HU keeps only the ten 40 HU pixels.
    ct, mask = slice_and_mask
    measurement = measure_l3(ct, mask, window=(0, 100))
    assert (measurement.muscle_pixels, measurement.mean_attenuation_hu) == (10, 40.0)
    with pytest.raises(ValueError, match="overlaps the IMAT window"):
        measure_l3(ct, mask, window=(-50, 150))


# --- NIfTI masks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "storage",
    [pytest.param("dcm2niix", id="flipped-and-transposed"), pytest.param("rows", id="row-major")],
)
def test_nifti_mask_is_aligned_by_geometry(
    tmp_path: Path, slice_and_mask: tuple[Path, NDArray[np.uint8]], storage: str
) -> None:
    ct, mask = slice_and_mask
    if storage == "dcm2niix":
        data, affine = dcm2niix_style(mask), SLICE_AFFINE @ FLIP_TRANSPOSE
    else:
        data, affine = mask[:, :, np.newaxis], SLICE_AFFINE
    nifti = write_nifti(tmp_path / "mask.nii.gz", data, affine)
    assert values(measure_l3(ct, nifti)) == EXPECTED


def test_nifti_shape_mismatch_names_both_shapes(
    tmp_path: Path, slice_and_mask: tuple[Path, NDArray[np.uint8]]
) -> None:
    ct, mask = slice_and_mask
    nifti = write_nifti(tmp_path / "m.nii", dcm2niix_style(mask)[:60], SLICE_AFFINE)
    with pytest.raises(CtInputError, match=re.escape("(60, 64, 1)")) as error:
        measure_l3(ct, nifti)
    assert "(64, 64)" in str(error.value) and str(nifti) in str(error.value)


@pytest.mark.parametrize(
    ("shift_mm", "message"),
    [
        pytest.param((0.0, 0.0, 5.0), "shifted", id="next-slice"),
        pytest.param((0.35, 0.0, 0.0), "do not line up", id="half-a-pixel"),
    ],
)
def test_nifti_not_on_this_slice(
    tmp_path: Path,
    slice_and_mask: tuple[Path, NDArray[np.uint8]],
    shift_mm: tuple[float, float, float],
    message: str,
) -> None:
    ct, mask = slice_and_mask
    affine = SLICE_AFFINE @ FLIP_TRANSPOSE
    affine[:3, 3] += shift_mm
    nifti = write_nifti(tmp_path / "m.nii.gz", dcm2niix_style(mask), affine)
    with pytest.raises(CtInputError, match=message):
        measure_l3(ct, nifti)


def test_nifti_without_orientation_is_refused(
    tmp_path: Path, slice_and_mask: tuple[Path, NDArray[np.uint8]]
) -> None:
    ct, mask = slice_and_mask
    image = NIFTI1(mask[:, :, np.newaxis], SLICE_AFFINE)
    image.set_sform(None, code=0)
    image.set_qform(None, code=0)
    nib.save(image, tmp_path / "bare.nii")
    with pytest.raises(CtInputError, match="no orientation"):
        measure_l3(ct, tmp_path / "bare.nii")


# --- DICOM masks -------------------------------------------------------------------------------


def test_dicom_mask(tmp_path: Path, slice_and_mask: tuple[Path, NDArray[np.uint8]]) -> None:
    ct, mask = slice_and_mask
    assert values(measure_l3(ct, write_mask_dicom(tmp_path / "mask.dcm", mask))) == EXPECTED


def test_dicom_seg_is_refused(
    tmp_path: Path, slice_and_mask: tuple[Path, NDArray[np.uint8]]
) -> None:
    ct, mask = slice_and_mask
    seg = write_mask_dicom(tmp_path / "seg.dcm", mask, Modality="SEG")
    with pytest.raises(CtInputError, match="highdicom"):
        measure_l3(ct, seg)


def test_dicom_mask_on_other_geometry_is_refused(
    tmp_path: Path, slice_and_mask: tuple[Path, NDArray[np.uint8]]
) -> None:
    ct, mask = slice_and_mask
    other = write_mask_dicom(tmp_path / "other.dcm", mask, PixelSpacing=[0.7, 0.7])
    with pytest.raises(CtInputError, match="PixelSpacing"):
        measure_l3(ct, other)


# --- Errors name the file and the problem ------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "omit", "message"),
    [
        pytest.param({"Modality": "MR"}, (), "Modality is 'MR', not 'CT'", id="mr"),
        pytest.param({}, ("PixelSpacing",), "missing PixelSpacing", id="no-spacing"),
        pytest.param({}, ("RescaleSlope",), "missing RescaleSlope", id="no-slope"),
        pytest.param({}, ("RescaleIntercept",), "missing RescaleIntercept", id="no-intercept"),
        pytest.param({"RescaleType": "OD"}, (), "not Hounsfield units", id="not-hu"),
        pytest.param(
            {"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}, (), "localizer", id="scout"
        ),
    ],
)
def test_slice_errors(
    tmp_path: Path, tags: dict[str, Any], omit: tuple[str, ...], message: str
) -> None:
    hu, mask = layout(GROUPS)
    ct = write_ct(tmp_path / "bad.dcm", hu, omit=omit, **tags)
    with pytest.raises(CtInputError, match=re.escape(message)) as error:
        measure_l3(ct, mask)
    assert str(ct) in str(error.value)


def test_not_dicom(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(CtInputError, match="not a DICOM file") as error:
        measure_l3(text, np.ones((ROWS, COLUMNS)))
    assert str(text) in str(error.value)


def test_mask_not_binary(slice_and_mask: tuple[Path, NDArray[np.uint8]]) -> None:
    ct, mask = slice_and_mask
    labels = mask.copy()
    labels[0, 0] = 2  # a label map (several structures), not a binary mask
    with pytest.raises(CtInputError, match=re.escape("not binary (values 0, 1, 2)")):
        measure_l3(ct, labels)


def test_mask_shape_mismatch_names_both_shapes(
    tmp_path: Path, slice_and_mask: tuple[Path, NDArray[np.uint8]]
) -> None:
    ct, mask = slice_and_mask
    np.save(tmp_path / "narrow.npy", mask[:, :63])
    with pytest.raises(CtInputError, match=re.escape("(64, 63)")) as error:
        measure_l3(ct, tmp_path / "narrow.npy")
    assert "(64, 64)" in str(error.value) and "narrow.npy" in str(error.value)


def test_empty_mask(slice_and_mask: tuple[Path, NDArray[np.uint8]]) -> None:
    ct, mask = slice_and_mask
    with pytest.raises(CtInputError, match="empty"):
        measure_l3(ct, np.zeros_like(mask))


# --- Cut-offs ----------------------------------------------------------------------------------

M = "male"
F = "female"
SCHEMA = {
    "sex": pl.String,
    "height_m": pl.Float64,
    "bmi_kg_m2": pl.Float64,
    "l3_muscle_area_cm2": pl.Float64,
    "muscle_attenuation_hu": pl.Float64,
    "asm_method": pl.String,
}


def evaluate(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The CT stages on a Polars frame through Narwhals, after the per-row sex columns."""
    frame = nw.from_native(pl.DataFrame(rows, schema=SCHEMA))
    for stage in [subject_exprs(), *ct_stages()]:
        frame = frame.with_columns(*stage)
    return frame.select(ct_columns()).to_native()


def smi_row(sex: str | None, bmi: float | None, smi: float) -> dict[str, Any]:
    """Height 1 m, so the SMI is the area itself."""
    return {"sex": sex, "height_m": 1.0, "bmi_kg_m2": bmi, "l3_muscle_area_cm2": smi}


def case(
    column: str, sex: str | None, bmi: float | None, value: float, expected: bool | None
) -> Any:
    name = f"{column.removeprefix('ct_')}-{sex or 'sex?'}-bmi{bmi}-{value}"
    return pytest.param(column, sex, bmi, value, expected, id=name)


PRADO = "ct_low_smi_prado2008"
MARTIN = "ct_low_smi_martin2013"
MYOSTEATOSIS = "ct_myosteatosis_martin2013"
CAREY = "ct_low_smi_carey2017"

SMI_CASES = [
    # Prado 2008: ≤52.4 men, ≤38.5 women, as printed in the paper (criteria.md §6.1, §10.6)
    case(PRADO, M, None, 52.3, True),
    case(PRADO, M, None, 52.4, True),
    case(PRADO, M, None, 52.5, False),
    case(PRADO, F, None, 38.4, True),
    case(PRADO, F, None, 38.5, True),
    case(PRADO, F, None, 38.6, False),
    # sexes swapped is a known mistake: 45 is low for a man and normal for a woman
    case(PRADO, M, 22.0, 45.0, True),
    case(PRADO, F, 22.0, 45.0, False),
    # unknown sex: decided only where both sexes agree
    case(PRADO, None, None, 38.0, True),
    case(PRADO, None, None, 45.0, None),
    case(PRADO, None, None, 52.5, False),
    # Martin 2013, men with BMI <25: <43
    case(MARTIN, M, 24.9, 42.9, True),
    case(MARTIN, M, 24.9, 43.0, False),
    case(MARTIN, M, 24.9, 43.1, False),
    case(MARTIN, M, 24.9, 50.0, False),
    # men with BMI ≥25: <53; BMI exactly 25 is in this stratum (43 is low there)
    case(MARTIN, M, 25.0, 43.0, True),
    case(MARTIN, M, 25.0, 52.9, True),
    case(MARTIN, M, 25.0, 53.0, False),
    case(MARTIN, M, 25.0, 53.1, False),
    case(MARTIN, M, 30.0, 52.9, True),
    # women: <41 at any BMI (a cut-off other than 41 for women with high BMI is a known mistake)
    case(MARTIN, F, 24.9, 40.9, True),
    case(MARTIN, F, 24.9, 41.0, False),
    case(MARTIN, F, 24.9, 41.1, False),
    case(MARTIN, F, 30.0, 40.9, True),
    case(MARTIN, F, 30.0, 41.0, False),
    case(MARTIN, F, 30.0, 45.0, False),
    # unknown BMI: women are decided (41 in both strata), men only where both strata agree
    case(MARTIN, F, None, 40.9, True),
    case(MARTIN, F, None, 41.0, False),
    case(MARTIN, M, None, 42.0, True),
    case(MARTIN, M, None, 50.0, None),
    case(MARTIN, M, None, 53.0, False),
    # unknown sex, known BMI <25: men <43, women <41
    case(MARTIN, None, 24.9, 40.0, True),
    case(MARTIN, None, 24.9, 42.0, None),
    case(MARTIN, None, 24.9, 43.0, False),
    # unknown sex and BMI: every cut-off must agree
    case(MARTIN, None, None, 40.0, True),
    case(MARTIN, None, None, 45.0, None),
    case(MARTIN, None, None, 53.0, False),
    # Carey 2017: <50 men, <39 women
    case(CAREY, M, None, 49.9, True),
    case(CAREY, M, None, 50.0, False),
    case(CAREY, M, None, 50.1, False),
    case(CAREY, F, None, 38.9, True),
    case(CAREY, F, None, 39.0, False),
    case(CAREY, F, None, 39.1, False),
    case(CAREY, None, None, 38.0, True),
    case(CAREY, None, None, 45.0, None),
    case(CAREY, None, None, 50.0, False),
]


@pytest.mark.parametrize(("column", "sex", "bmi", "smi", "expected"), SMI_CASES)
def test_smi_cutoffs(
    column: str, sex: str | None, bmi: float | None, smi: float, expected: bool | None
) -> None:
    result = evaluate([smi_row(sex, bmi, smi)])
    assert result["l3_smi_cm2_m2"][0] == smi
    assert result[column][0] is expected


MYOSTEATOSIS_CASES = [
    # Martin 2013, both sexes: <41 HU with BMI <25
    case(MYOSTEATOSIS, M, 24.9, 40.9, True),
    case(MYOSTEATOSIS, F, 24.9, 41.0, False),
    case(MYOSTEATOSIS, M, 24.9, 41.1, False),
    # <33 HU with BMI ≥25; BMI exactly 25 is in this stratum (35 HU is normal there)
    case(MYOSTEATOSIS, F, 25.0, 32.9, True),
    case(MYOSTEATOSIS, M, 25.0, 33.0, False),
    case(MYOSTEATOSIS, F, 25.0, 33.1, False),
    case(MYOSTEATOSIS, M, 25.0, 35.0, False),
    # sex does not matter
    case(MYOSTEATOSIS, None, 30.0, 32.0, True),
    case(MYOSTEATOSIS, None, 24.0, 40.0, True),
    # unknown BMI: decided only where both strata agree
    case(MYOSTEATOSIS, M, None, 30.0, True),
    case(MYOSTEATOSIS, M, None, 35.0, None),
    case(MYOSTEATOSIS, M, None, 41.0, False),
]


@pytest.mark.parametrize(("column", "sex", "bmi", "hu", "expected"), MYOSTEATOSIS_CASES)
def test_myosteatosis_cutoffs(
    column: str, sex: str | None, bmi: float | None, hu: float, expected: bool | None
) -> None:
    row = {"sex": sex, "bmi_kg_m2": bmi, "muscle_attenuation_hu": hu}
    assert evaluate([row])[column][0] is expected


@pytest.mark.parametrize(
    ("sex", "height", "area", "bmi", "smi", "column", "expected"),
    [
        # Decimal-exact products whose naive IEEE-754 quotient misses the cut-off:
        # 117.9 / 1.5² is 52.400000000000006 unrounded, which would read as normal for Prado.
        pytest.param(M, 1.5, 117.9, 22.0, 52.4, PRADO, True, id="prado-m-1.5"),
        pytest.param(F, 1.64, 103.5496, 22.0, 38.5, PRADO, True, id="prado-f-1.64"),
        # 110.08 / 1.6² is 42.99999999999999 unrounded, which would read as low for Martin.
        pytest.param(M, 1.6, 110.08, 24.0, 43.0, MARTIN, False, id="martin-m-1.6"),
        pytest.param(M, 1.55, 127.3325, 27.0, 53.0, MARTIN, False, id="martin-m-1.55"),
        pytest.param(F, 1.6, 104.96, 30.0, 41.0, MARTIN, False, id="martin-f-1.6"),
        pytest.param(M, 1.55, 120.125, 22.0, 50.0, CAREY, False, id="carey-m-1.55"),
        pytest.param(F, 1.56, 94.9104, 22.0, 39.0, CAREY, False, id="carey-f-1.56"),
    ],
)
def test_smi_from_real_heights_is_decimal_exact(
    sex: str, height: float, area: float, bmi: float, smi: float, column: str, expected: bool
) -> None:
    row = {"sex": sex, "height_m": height, "bmi_kg_m2": bmi, "l3_muscle_area_cm2": area}
    result = evaluate([row])
    assert result["l3_smi_cm2_m2"][0] == smi
    assert result[column][0] is expected


def test_population_sets_disagree_at_smi_50() -> None:
    # criteria.md §7 row 17: SMI 50 in a man is low for Prado and normal for Carey.
    result = evaluate([smi_row(M, 27.0, 50.0)])
    assert result[PRADO][0] is True
    assert result[CAREY][0] is False


@pytest.mark.parametrize(
    "row",
    [
        pytest.param({"l3_muscle_area_cm2": 40.0, "muscle_attenuation_hu": 30.0}, id="no-height"),
        pytest.param({"height_m": 1.7, "muscle_attenuation_hu": 30.0}, id="no-area"),
    ],
)
def test_missing_height_or_area_is_never_low(row: dict[str, Any]) -> None:
    # 40 cm² at any plausible height would be low everywhere, yet without the height nothing
    # is known; myosteatosis needs no height and is still decided.
    result = evaluate([{"sex": M, "bmi_kg_m2": 24.0, **row}])
    assert result["l3_smi_cm2_m2"][0] is None
    assert [result[column][0] for column in (PRADO, MARTIN, CAREY)] == [None, None, None]
    assert result[MYOSTEATOSIS][0] is True


def test_missing_attenuation_is_never_low() -> None:
    assert evaluate([smi_row(M, 24.0, 40.0)])[MYOSTEATOSIS][0] is None


def test_columns_and_types() -> None:
    result = evaluate([smi_row(M, 24.0, 40.0)])
    assert result.columns == [
        "l3_smi_cm2_m2",
        "ct_low_smi_prado2008",
        "ct_low_smi_martin2013",
        "ct_myosteatosis_martin2013",
        "ct_low_smi_carey2017",
    ]
    assert result.schema["l3_smi_cm2_m2"] == pl.Float64
    assert all(result.schema[c] == pl.Boolean for c in result.columns[1:])


def test_measurement_feeds_the_cutoffs(
    tmp_path: Path, slice_and_mask: tuple[Path, NDArray[np.uint8]]
) -> None:
    ct, mask = slice_and_mask
    record = measure_l3(ct, mask).record()
    assert record == {"l3_muscle_area_cm2": 0.112, "muscle_attenuation_hu": 50.25}
    result = evaluate([{"sex": F, "height_m": 1.0, "bmi_kg_m2": 22.0, **record}])
    assert result["l3_smi_cm2_m2"][0] == 0.112
    assert result[MYOSTEATOSIS][0] is False
