"""CT body composition at L3: muscle area and attenuation from a slice and a mask, and cut-offs.

The slice is one axial CT image (DICOM); HU = stored value × RescaleSlope + RescaleIntercept,
and the pixel area comes from PixelSpacing (row spacing, column spacing in mm), never assumed.
The mask is binary (1 = inside) and may be:

* a NumPy array or `.npy` file in the slice's (row, column) order, as pydicom returns pixels;
* a NIfTI file: NIfTI stores (i, j, k) voxels with an affine to RAS, and converters such as
  dcm2niix put DICOM columns on i and rows on j, often flipping rows. No transpose is assumed:
  each pixel's mask voxel is found through both files' geometry (NIfTI sform/qform; DICOM
  ImageOrientationPatient, ImagePositionPatient, PixelSpacing), and the mask's grid must
  coincide with the slice's;
* a DICOM image whose pixel data is the mask. DICOM Segmentation objects (DICOM-SEG) need
  highdicom, which sarcokit does not depend on: convert them to one of the other forms.

Tissue windows and cut-offs are data with their sources in reference/secondary/ct.toml.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import narwhals as nw
import numpy as np
from numpy.typing import NDArray

from sarcokit.equations import EXACT
from sarcokit.secondary._data import criterion_expr, reference, where_of
from sarcokit.thresholds import CriteriaError

NAME = "ct"
SMI = "l3_smi_cm2_m2"
SEGMENTATION_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
# DICOM patient coordinates are LPS; NIfTI world coordinates are RAS.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
# A NIfTI mask is accepted when every slice pixel centre lies within this fraction of a voxel of
# a mask voxel centre: far above float32 rounding of a stored affine, far below a misalignment.
REGISTRATION_TOLERANCE_VOXELS = 0.1

Window = tuple[float, float]
MaskSource = str | os.PathLike[str] | NDArray[Any]


class CtInputError(ValueError):
    """A CT slice or a mask cannot be measured; the message names the file and the problem."""


def _imaging(module: str) -> Any:
    # The image readers cost a second at import and only CT measurement needs them: they are
    # loaded here, on first use, and installed with the `imaging` extra.
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise CtInputError(
            f"reading CT images needs {module}: pip install 'sarcokit[imaging]'"
        ) from None


def _tests() -> Mapping[str, Any]:
    tests: Mapping[str, Any] = reference(NAME)["tests"]
    return tests


def tissue_window(tissue: str) -> Window:
    """A tissue's attenuation window (low, high) in HU, both ends inclusive, from the file."""
    raw = reference(NAME)["windows"][tissue]
    if raw["inclusive"]["value"] is not True:
        raise CriteriaError(f"{where_of(NAME)}: window {tissue!r} must be inclusive")
    return (float(raw["low_hu"]["value"]), float(raw["high_hu"]["value"]))


MUSCLE_WINDOW_HU = tissue_window("skeletal_muscle")
IMAT_WINDOW_HU = tissue_window("imat")


# --- Image measurement -------------------------------------------------------------------------


@dataclass(frozen=True)
class L3Measurement:
    """Muscle and intermuscular adipose tissue inside a mask on one CT slice."""

    muscle_area_cm2: float
    mean_attenuation_hu: float | None
    imat_area_cm2: float
    mask_pixels: int
    muscle_pixels: int
    imat_pixels: int
    row_spacing_mm: float
    column_spacing_mm: float
    window_hu: Window
    imat_window_hu: Window

    def record(self) -> dict[str, float | None]:
        """The subject-record fields this slice supplies to `ct_stages`."""
        return {
            "l3_muscle_area_cm2": self.muscle_area_cm2,
            "muscle_attenuation_hu": self.mean_attenuation_hu,
        }


def _read_dicom(path: Path) -> Any:
    pydicom = _imaging("pydicom")
    try:
        return pydicom.dcmread(path)
    except pydicom.errors.InvalidDicomError as error:
        raise CtInputError(f"{path}: not a DICOM file ({error})") from None


def _required(ds: Any, keyword: str, path: Path, why: str) -> Any:
    value = ds.get(keyword)
    if value is None or (isinstance(value, str) and not value):
        raise CtInputError(f"{path}: missing {keyword}, needed {why}")
    return value


def _pixels(ds: Any, path: Path) -> NDArray[Any]:
    if "PixelData" not in ds:
        raise CtInputError(f"{path}: no pixel data")
    try:
        pixels: NDArray[Any] = ds.pixel_array
    except (NotImplementedError, RuntimeError, ValueError) as error:
        raise CtInputError(f"{path}: pixel data cannot be decoded ({error})") from None
    if pixels.ndim != 2:
        raise CtInputError(
            f"{path}: pixel data has shape {pixels.shape}; one greyscale slice (rows, columns) "
            "is expected"
        )
    return pixels


def _spacing(ds: Any, path: Path) -> tuple[float, float]:
    # A missing spacing is never assumed to be 1 mm: the area would be wrong by an unknown factor.
    raw = _required(ds, "PixelSpacing", path, "for the pixel area")
    spacing = tuple(float(v) for v in raw)
    if len(spacing) != 2 or min(spacing) <= 0:
        raise CtInputError(f"{path}: PixelSpacing {list(spacing)} is not two positive values")
    return spacing[0], spacing[1]


def _read_slice(path: Path) -> tuple[Any, NDArray[np.float64]]:
    """The dataset and its pixels in HU, after checking it is one CT image, not a localizer."""
    ds = _read_dicom(path)
    modality = ds.get("Modality")
    if modality != "CT":
        raise CtInputError(f"{path}: Modality is {modality!r}, not 'CT'")
    if "LOCALIZER" in (ds.get("ImageType") or ()):
        raise CtInputError(f"{path}: a localizer (scout) image, not an axial slice")
    pixels = _pixels(ds, path)
    slope = float(_required(ds, "RescaleSlope", path, "to convert stored values to HU"))
    intercept = float(_required(ds, "RescaleIntercept", path, "to convert stored values to HU"))
    # CT images state RescaleType only when the rescaled values are not Hounsfield units.
    rescale_type = ds.get("RescaleType")
    if rescale_type not in (None, "", "HU"):
        raise CtInputError(f"{path}: RescaleType is {rescale_type!r}, not Hounsfield units")
    return ds, pixels.astype(np.float64) * slope + intercept


def _binary(values: NDArray[Any], where: str) -> NDArray[np.bool_]:
    distinct = np.unique(values)
    if not np.isin(distinct, (0, 1)).all():
        shown = ", ".join(str(v) for v in distinct[:6]) + (", …" if distinct.size > 6 else "")
        raise CtInputError(f"{where}: mask is not binary (values {shown}); expected 0 and 1")
    binary: NDArray[np.bool_] = values == 1
    return binary


def _slice_affine(ds: Any, path: Path, spacing: tuple[float, float]) -> NDArray[np.float64]:
    """Array index (row, column, 0) → RAS mm, the NIfTI world convention."""
    why = "to align a NIfTI mask (or give the mask as .npy in (row, column) order)"
    orientation = np.array(_required(ds, "ImageOrientationPatient", path, why), dtype=float)
    position = np.array(_required(ds, "ImagePositionPatient", path, why), dtype=float)
    # ImageOrientationPatient gives the direction of increasing column, then of increasing row.
    along_row, along_column = orientation[:3], orientation[3:]
    affine = np.eye(4)
    affine[:3, 0] = LPS_TO_RAS @ along_column * spacing[0]
    affine[:3, 1] = LPS_TO_RAS @ along_row * spacing[1]
    affine[:3, 2] = LPS_TO_RAS @ np.cross(along_row, along_column)
    affine[:3, 3] = LPS_TO_RAS @ position
    return affine


def _nifti_mask(
    path: Path, ds: Any, slice_path: Path, shape: tuple[int, ...], spacing: tuple[float, float]
) -> NDArray[Any]:
    """The mask in the slice's (row, column) order, looked up through both files' geometry."""
    try:
        image: Any = _imaging("nibabel").load(path)
    except Exception as error:  # nibabel raises several unrelated types for unreadable files
        raise CtInputError(f"{path}: not a readable NIfTI file ({error})") from None
    header = image.header
    if header.get_sform(coded=True)[1] == 0 and header.get_qform(coded=True)[1] == 0:
        raise CtInputError(
            f"{path}: the NIfTI header has no orientation (sform and qform codes are 0); "
            "give the mask as .npy in (row, column) order"
        )
    data: NDArray[Any] = np.asarray(image.dataobj)
    stored_shape = data.shape
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    rows, columns = shape
    if data.ndim != 3 or data.size != rows * columns:
        raise CtInputError(
            f"{path}: mask shape {stored_shape} does not match the slice's {shape} (rows, "
            f"columns) in {slice_path}; one slice of the same size is expected"
        )
    try:
        to_mask = np.linalg.inv(image.affine) @ _slice_affine(ds, slice_path, spacing)
    except np.linalg.LinAlgError:
        raise CtInputError(f"{path}: the NIfTI affine is not invertible") from None
    r, c = np.indices(shape).reshape(2, -1)
    voxels = (to_mask @ np.vstack([r, c, np.zeros_like(r), np.ones_like(r)]))[:3]
    nearest = np.rint(voxels).astype(np.intp)
    misfit = float(np.abs(voxels - nearest).max())
    if misfit > REGISTRATION_TOLERANCE_VOXELS:
        raise CtInputError(
            f"{path}: mask voxels do not line up with the pixels of {slice_path} (off by up to "
            f"{misfit:.2f} voxel); the mask was not drawn on this slice's grid"
        )
    # Equal sizes and an invertible affine make the lookup one-to-one once every index is inside.
    if ((nearest < 0) | (nearest >= np.array(data.shape)[:, np.newaxis])).any():
        raise CtInputError(
            f"{path}: mask grid is shifted from the grid of {slice_path} (another slice, or a "
            "different origin)"
        )
    looked_up: NDArray[Any] = data[nearest[0], nearest[1], nearest[2]]
    return looked_up.reshape(shape)


def _dicom_mask(path: Path, ds: Any, slice_path: Path) -> NDArray[Any]:
    mask = _read_dicom(path)
    if mask.get("Modality") == "SEG" or mask.get("SOPClassUID") == SEGMENTATION_SOP_CLASS:
        raise CtInputError(
            f"{path}: a DICOM Segmentation (SEG) object; reading one needs highdicom, which "
            "sarcokit does not use; convert it to .npy or NIfTI"
        )
    slope, intercept = mask.get("RescaleSlope"), mask.get("RescaleIntercept")
    rescaled = (slope is not None and float(slope) != 1) or (
        intercept is not None and float(intercept) != 0
    )
    if rescaled:
        raise CtInputError(
            f"{path}: mask image has a rescale (slope {slope}, intercept {intercept}), so it is "
            "unclear whether stored or rescaled values are the mask"
        )
    for keyword in ("PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient"):
        mine, theirs = mask.get(keyword), ds.get(keyword)
        if (
            mine is not None
            and theirs is not None
            and not np.allclose(np.array(mine, dtype=float), np.array(theirs, dtype=float))
        ):
            raise CtInputError(
                f"{path}: {keyword} {list(mine)} differs from the slice's {list(theirs)} "
                f"({slice_path})"
            )
    return _pixels(mask, path)


def _load_mask(
    mask: MaskSource,
    ds: Any,
    slice_path: Path,
    shape: tuple[int, ...],
    spacing: tuple[float, float],
) -> NDArray[np.bool_]:
    if isinstance(mask, np.ndarray):
        where, values = "mask array", mask
    else:
        path = Path(mask)
        where = str(path)
        name = path.name.lower()
        if name.endswith(".npy"):
            try:
                values = np.load(path, allow_pickle=False)
            except ValueError as error:
                raise CtInputError(f"{path}: not a NumPy array file ({error})") from None
        elif name.endswith((".nii", ".nii.gz")):
            values = _nifti_mask(path, ds, slice_path, shape, spacing)
        else:
            values = _dicom_mask(path, ds, slice_path)
    if values.shape != shape:
        raise CtInputError(
            f"{where}: mask shape {values.shape} differs from the slice's {shape} (rows, "
            f"columns) in {slice_path}"
        )
    binary = _binary(values, where)
    if not binary.any():
        raise CtInputError(f"{where}: mask is empty")
    return binary


def _inside(hu: NDArray[np.float64], window: Window) -> NDArray[np.bool_]:
    low, high = window
    return (hu >= low) & (hu <= high)


def measure_l3(
    slice_path: str | os.PathLike[str],
    mask: MaskSource,
    *,
    window: Window = MUSCLE_WINDOW_HU,
) -> L3Measurement:
    """Muscle area, mean attenuation and IMAT inside `mask` on one axial CT slice."""
    # Muscle is mask pixels in `window` (default −29…+150 HU), IMAT mask pixels in −190…−30 HU,
    # both inclusive (Mitsiopoulos 1998). IMAT is only meaningful when the mask is the muscle
    # compartment with the fat inside it; the myosteatosis cut-offs assume the default window.
    if window[0] > window[1]:
        raise ValueError(f"window {window}: the low end is above the high end")
    if window[0] <= IMAT_WINDOW_HU[1] and IMAT_WINDOW_HU[0] <= window[1]:
        raise ValueError(f"window {window} overlaps the IMAT window {IMAT_WINDOW_HU}")
    path = Path(slice_path)
    ds, hu = _read_slice(path)
    spacing = _spacing(ds, path)
    inside = _load_mask(mask, ds, path, hu.shape, spacing)
    muscle = inside & _inside(hu, window)
    imat = inside & _inside(hu, IMAT_WINDOW_HU)
    muscle_pixels, imat_pixels = int(muscle.sum()), int(imat.sum())
    pixel_area_cm2 = spacing[0] * spacing[1] / 100
    return L3Measurement(
        # Rounding at 1e-9 cm² removes the representation error of the product (0.8 × 0.7 is
        # 0.5599999999999999 in IEEE-754); no real area is known to that precision.
        muscle_area_cm2=round(muscle_pixels * pixel_area_cm2, EXACT),
        mean_attenuation_hu=float(hu[muscle].mean()) if muscle_pixels else None,
        imat_area_cm2=round(imat_pixels * pixel_area_cm2, EXACT),
        mask_pixels=int(inside.sum()),
        muscle_pixels=muscle_pixels,
        imat_pixels=imat_pixels,
        row_spacing_mm=spacing[0],
        column_spacing_mm=spacing[1],
        window_hu=window,
        imat_window_hu=IMAT_WINDOW_HU,
    )


# --- Cut-offs as columnar expressions ----------------------------------------------------------


def _flag_expr(raw: Mapping[str, Any]) -> nw.Expr:
    return criterion_expr(raw, where_of(NAME))


def ct_columns() -> list[str]:
    """The output columns of `ct_stages`, in order."""
    return [SMI, *_tests()]


def ct_stages() -> list[list[nw.Expr]]:
    """SMI, then the three-valued cut-off flags: stages in dependency order, like score_stages."""
    # Inputs l3_muscle_area_cm2, muscle_attenuation_hu, height_m, bmi_kg_m2, and the per-row sex
    # columns of thresholds.subject_exprs (the engine's stage before this). A missing sex or BMI
    # gives null unless every cut-off it could select gives the same answer.
    height = nw.col("height_m")
    smi = (nw.col("l3_muscle_area_cm2") / (height * height)).round(EXACT)
    return [[smi.alias(SMI)], [_flag_expr(t).alias(column) for column, t in _tests().items()]]
