"""Read cohort files (CSV, TSV, Parquet, Excel, SAS XPT, Stata, SPSS) into lazy Polars frames.

A REDCap export is a plain CSV (first column `record_id`, checkboxes as `field___1` columns) and
is read as one. Several files of one cohort are joined on a key column, anchored on the first.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fastexcel
import polars as pl
import pyreadstat

_DELIMITERS = {".csv": ",", ".tsv": "\t"}
_STATISTICAL: dict[str, Callable[..., tuple[Any, Any]]] = {
    ".xpt": pyreadstat.read_xport,
    ".dta": pyreadstat.read_dta,
    ".sav": pyreadstat.read_sav,
}
SUFFIXES = (*_DELIMITERS, ".parquet", ".xlsx", *_STATISTICAL)
_READER_ERRORS = (
    pl.exceptions.PolarsError,
    pyreadstat.ReadstatError,
    pyreadstat.PyreadstatError,
    fastexcel.FastExcelError,
)
_CHUNK = 1 << 20
_BOM = codecs.BOM_UTF8


class ReadError(ValueError):
    """A cohort file cannot be read as it is; the message names the file and what is wrong."""


@dataclass(frozen=True)
class JoinedFile:
    """How one later file joined the first: its rows, matched or left out."""

    path: Path
    rows: int
    matched: int
    unmatched: int  # rows whose key is not in the first file: not in the joined frame
    unmatched_keys: tuple[Any, ...]  # the first few of them, to look up
    absent: int  # rows of the first file with no row here: this file's columns are null


@dataclass(frozen=True)
class JoinReport:
    """What joining several files on a key kept and what it left out."""

    key: str
    anchor: Path
    rows: int  # rows of the first file, which are the rows of the joined frame
    files: tuple[JoinedFile, ...]


def read_table(
    path: str | Path,
    *,
    encoding: str | None = None,
    sheet: str | None = None,
    text_columns: Collection[str] = (),
) -> pl.LazyFrame:
    """Read one cohort file lazily, choosing the reader by its extension.

    `encoding` names the text encoding of a CSV/TSV (UTF-8 with or without BOM when not given;
    e.g. "gb18030" or "gbk" for Chinese hospital exports) or is passed to the SAS/Stata/SPSS
    reader for files older than Unicode. `sheet` names the Excel sheet; it is required when the
    workbook has more than one. `text_columns` are kept as written in a CSV/TSV (identifiers
    such as 007 would otherwise be read as the number 7); the other formats store their types.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ReadError(
            f"{path}: unknown file type {suffix!r}; expected one of {', '.join(SUFFIXES)}"
        )
    if not path.is_file():
        raise ReadError(f"{path}: no such file")
    if sheet is not None and suffix != ".xlsx":
        raise ReadError(f"{path}: sheet={sheet!r} is given but only Excel workbooks have sheets")
    if encoding is not None and suffix in (".parquet", ".xlsx"):
        raise ReadError(
            f"{path}: encoding={encoding!r} is given but {suffix} files store text as UTF-8"
        )
    try:
        if suffix in _DELIMITERS:
            frame = _read_delimited(path, _DELIMITERS[suffix], encoding, text_columns)
        elif suffix == ".parquet":
            frame = pl.scan_parquet(path)
        elif suffix == ".xlsx":
            frame = _read_excel(path, sheet)
        else:
            frame = _read_statistical(path, _STATISTICAL[suffix], encoding)
        columns = frame.collect_schema().names()
    except _READER_ERRORS as error:
        raise ReadError(f"{path}: cannot be read as {suffix}: {error}") from error
    missing = [name for name in text_columns if name not in columns]
    if missing:
        raise ReadError(f"{path}: {_absent('text column', missing, columns)}")
    return frame


def read_inputs(
    paths: Sequence[str | Path],
    key: str,
    *,
    encoding: str | None = None,
    sheet: str | None = None,
    text_columns: Collection[str] = (),
) -> tuple[pl.LazyFrame, JoinReport]:
    """Join several files of one cohort on `key`: every row of the first file, in its order.

    NHANES ships one file per exam, joined on SEQN. Rows of later files whose key is not in the
    first file cannot join; they are counted in the report, not silently lost. A key that is
    missing or repeated within a file, a column found in two files and a key typed differently
    in two files are errors.
    """
    if not paths:
        raise ReadError("no input files given")
    files = [Path(p) for p in paths]
    frames = [
        read_table(p, encoding=encoding, sheet=sheet, text_columns=text_columns) for p in files
    ]
    schemas = [frame.collect_schema() for frame in frames]
    for path, schema in zip(files, schemas, strict=True):
        if key not in schema:
            raise ReadError(f"{path}: {_absent('key column', [key], schema.names())}")
    _check_join(files, schemas, key)
    for path, frame in zip(files, frames, strict=True):
        _check_key(path, frame, key)

    anchor = frames[0]
    anchor_keys = anchor.select(key)
    joined = anchor
    queries = [anchor.select(pl.len())]
    for frame in frames[1:]:
        joined = joined.join(frame, on=key, how="left", maintain_order="left")
        left_out = frame.select(key).join(anchor_keys, on=key, how="anti", maintain_order="left")
        absent = anchor_keys.join(frame.select(key), on=key, how="anti")
        queries += [frame.select(pl.len()), left_out.select(pl.len()), left_out.head(5)]
        queries.append(absent.select(pl.len()))
    results = iter(pl.collect_all(queries))
    rows = next(results).item()
    later = []
    for path in files[1:]:
        size, unmatched, examples, absent_rows = (next(results) for _ in range(4))
        later.append(
            JoinedFile(
                path=path,
                rows=size.item(),
                matched=size.item() - unmatched.item(),
                unmatched=unmatched.item(),
                unmatched_keys=tuple(examples.get_column(key).to_list()),
                absent=absent_rows.item(),
            )
        )
    return joined, JoinReport(key=key, anchor=files[0], rows=rows, files=tuple(later))


def _check_join(paths: Sequence[Path], schemas: Sequence[pl.Schema], key: str) -> None:
    """Columns the join would rename or types it could not compare are errors, not suffixes."""
    first_path, first_schema = paths[0], schemas[0]
    owner: dict[str, Path] = {}
    for path, schema in zip(paths, schemas, strict=True):
        if schema[key] != first_schema[key]:
            raise ReadError(
                f"{path}: key column {key} has type {schema[key]} but {first_schema[key]} in "
                f"{first_path}; expected the same type in every file"
            )
        for name in schema.names():
            if name == key:
                continue
            if name in owner:
                raise ReadError(
                    f"{path}: column {name} is also in {owner[name]}; expected each column other "
                    f"than the key {key} in one file only"
                )
            owner[name] = path


def _check_key(path: Path, frame: pl.LazyFrame, key: str) -> None:
    """Every row of every file must have its own key value, or the join would guess."""
    keys = frame.select(pl.col(key)).with_row_index("row", offset=1)
    bad = keys.filter(pl.col(key).is_null() | pl.col(key).is_duplicated()).head(1).collect()
    if bad.is_empty():
        return
    row, value = bad.row(0)
    if value is None:
        raise ReadError(
            f"{path}: key column {key} is empty in row {row}; expected a value in every row"
        )
    rows = keys.filter(pl.col(key) == value).select("row").head(10).collect().to_series()
    raise ReadError(
        f"{path}: key column {key} has the value {value!r} in more than one row (rows "
        f"{', '.join(map(str, rows.to_list()))}); expected each value once"
    )


def _read_delimited(
    path: Path, separator: str, encoding: str | None, text_columns: Collection[str]
) -> pl.LazyFrame:
    try:
        codec = codecs.lookup(encoding or "utf-8")
    except LookupError:
        raise ReadError(
            f"{path}: unknown encoding {encoding!r}; expected e.g. utf-8 or gb18030"
        ) from None
    # Inferring column types from every row, not the first hundred, so that a value late in the
    # file cannot fail the read after the schema was fixed.
    options: dict[str, Any] = {
        "separator": separator,
        "infer_schema_length": None,
        "schema_overrides": {name: pl.String for name in text_columns},
    }
    if codec.name in ("utf-8", "utf-8-sig"):
        # Polars reads UTF-8 itself and lazily (large files stream); checking every byte first
        # turns its bare "invalid utf-8 sequence" into an error with the offset.
        for _ in _decoded(path, codec):
            pass
        with path.open(encoding="utf-8-sig", newline="") as text:
            _check_header(path, text, separator)
        return pl.scan_csv(path, **options)
    # Polars decodes nothing but UTF-8 (and lossy UTF-8), so other encodings are decoded here.
    decoded = "".join(_decoded(path, codec))
    _check_header(path, io.StringIO(decoded), separator)
    return pl.read_csv(decoded.encode("utf-8"), **options).lazy()


def _decoded(path: Path, codec: codecs.CodecInfo) -> Iterator[str]:
    """The file's text chunk by chunk; an undecodable byte is an error naming its offset."""
    with path.open("rb") as stream:
        offset = 0  # bytes of the file before the current chunk
        if codec.name in ("utf-8", "utf-8-sig"):
            # Skipping the BOM here keeps offsets true: the utf-8-sig decoder counts after it.
            offset = len(_BOM) if stream.read(len(_BOM)) == _BOM else 0
            stream.seek(offset)
            codec = codecs.lookup("utf-8")
        decoder = codec.incrementaldecoder("strict")
        while True:
            chunk = stream.read(_CHUNK)
            pending = len(decoder.getstate()[0])  # bytes of the last chunk not yet decoded
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                at = offset - pending + error.start
                raise ReadError(_undecodable(path, codec.name, at, error)) from None
            yield text
            if not chunk:
                return
            offset += len(chunk)


def _undecodable(path: Path, encoding: str, offset: int, error: UnicodeDecodeError) -> str:
    bad = error.object[error.start : error.end]
    hint = ""
    if encoding == "utf-8":
        hint = "; if the file comes from a Chinese system, pass encoding='gb18030'"
    return (
        f"{path}: byte 0x{bytes(bad).hex()} at byte offset {offset} cannot be decoded as "
        f"{encoding} ({error.reason}); expected {encoding} text{hint}"
    )


def _check_header(path: Path, text: IO[str], separator: str) -> None:
    """Polars renames a repeated column name (a, a_duplicated_0); a repeat is an error instead."""
    header = next(csv.reader(text, delimiter=separator), None)
    if header is None:
        raise ReadError(f"{path}: the file is empty; expected a header row of column names")
    _check_unique(path, header)


def _check_unique(path: Path, names: Iterable[str]) -> None:
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise ReadError(
            f"{path}: column name {', '.join(map(repr, repeated))} appears more than once; "
            "expected each column name once"
        )


def _read_excel(path: Path, sheet: str | None) -> pl.LazyFrame:
    workbook = fastexcel.read_excel(path)
    sheets: list[str] = workbook.sheet_names
    listed = ", ".join(map(repr, sheets))
    if sheet is None and len(sheets) > 1:
        raise ReadError(f"{path}: the workbook has sheets {listed}; pass sheet= to choose one")
    if sheet is not None and sheet not in sheets:
        raise ReadError(f"{path}: no sheet {sheet!r}; the workbook has sheets {listed}")
    chosen = sheet if sheet is not None else sheets[0]
    # The header row read as data: Polars renames a repeated name (a, a_1) and so hides it.
    header = workbook.load_sheet(chosen, header_row=None, n_rows=1).to_polars()
    if header.height:
        _check_unique(path, [str(v) for v in header.row(0) if v is not None])
    # Rows with no value at all are skipped, as Polars does for CSV blank lines: they hold no
    # subject. Types are inferred from every row, as for CSV.
    frame = pl.read_excel(path, sheet_name=chosen, engine="calamine", infer_schema_length=None)
    return frame.lazy()


def _read_statistical(
    path: Path, reader: Callable[..., tuple[Any, Any]], encoding: str | None
) -> pl.LazyFrame:
    # Codes are read, not their value labels: the mapping file declares what codes mean.
    frame: pl.DataFrame = reader(path, encoding=encoding, output_format="polars")[0]
    # SAS, Stata and SPSS have no null string: an empty string is their missing value.
    return frame.with_columns(pl.col(pl.String).replace("", None)).lazy()


def _absent(what: str, names: Sequence[str], columns: Sequence[str]) -> str:
    parts = []
    for name in names:
        # Exports change case (SEQN, seqn) more often than they misspell.
        close = [c for c in columns if c.casefold() == name.casefold()]
        close = close or difflib.get_close_matches(name, columns, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        parts.append(f"{what} {name!r} is not in the file{hint}")
    return "; ".join(parts)
