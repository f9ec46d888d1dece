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
_OTHER_DELIMITERS = (";", "\t", "|", ",")
_BOM = codecs.BOM_UTF8


# Missing-value codes read as missing when nothing else is declared: R's NA, SAS/Stata's '.'.
DEFAULT_NA = ("NA", "N/A", ".", "")
# Column a cohort read adds: what is wrong with the row as a row (ragged, no value at all).
READ_PROBLEMS = "read_problems"
_LINE = "_line"
_QUOTE = '"'


class ReadError(ValueError):
    """A cohort file cannot be read as it is; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ReadOptions:
    """What a cohort run declares about its files (CLI options or the mapping file)."""

    as_text: bool = False  # every CSV cell as text: ids stay as written, numbers parsed later
    delimiter: str | None = None  # None: by extension (.csv comma, .tsv tab)
    na_values: tuple[str, ...] = DEFAULT_NA
    header_rows: int = 1  # >1: merged spreadsheet headers, names joined with a space


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
    options: ReadOptions | None = None,
) -> pl.LazyFrame:
    """Read one cohort file lazily, choosing the reader by its extension.

    `encoding` names the text encoding of a CSV/TSV (UTF-8 with or without BOM when not given;
    e.g. "gb18030" or "gbk" for Chinese hospital exports) or is passed to the SAS/Stata/SPSS
    reader for files older than Unicode. `sheet` names the Excel sheet; it is required when the
    workbook has more than one. `text_columns` are kept as written in a CSV/TSV (identifiers
    such as 007 would otherwise be read as the number 7); the other formats store their types.
    `options` (what a cohort run declares) reads every CSV cell as text, names its delimiter,
    missing-value codes and header rows, and adds a `read_problems` column for ragged and empty
    rows (see `ReadOptions`).
    """
    path = Path(path)
    options = options or ReadOptions()
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
            separator = options.delimiter or _DELIMITERS[suffix]
            frame = _read_delimited(path, separator, encoding, text_columns, options)
        elif suffix == ".parquet":
            frame = pl.scan_parquet(path)
        elif suffix == ".xlsx":
            frame = _read_excel(path, sheet, options.header_rows)
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
    options: ReadOptions | None = None,
) -> tuple[pl.LazyFrame, JoinReport]:
    """Join several files of one cohort on `key`: every row of the first file, in its order.

    NHANES ships one file per exam, joined on SEQN. Rows of later files whose key is not in the
    first file cannot join; they are counted in the report, not silently lost. A key that is
    missing or repeated within a file and a column found in two files are errors. Keys of equal
    value join whatever their type (CSV text 62161, XPT 62161.0); a key that cannot be compared
    exactly (text that is not a number against numbers, a number beyond 2**53) is an error.
    """
    if not paths:
        raise ReadError("no input files given")
    files = [Path(p) for p in paths]
    frames = [
        read_table(p, encoding=encoding, sheet=sheet, text_columns=text_columns, options=options)
        for p in files
    ]
    for index, (path, frame) in enumerate(zip(files, frames, strict=True)):
        if index and READ_PROBLEMS in frame.collect_schema():
            # Only the first file's rows are rows of the run; a bad line elsewhere cannot be
            # rejected as a row, so it stops the join with its line named.
            bad = frame.with_row_index("row", offset=1).filter(pl.col(READ_PROBLEMS).is_not_null())
            first = bad.select("row", READ_PROBLEMS).head(1).collect()
            if first.height:
                row, problem = first.row(0)
                raise ReadError(f"{path}: data row {row}: {problem}; expected one row per subject")
            frames[index] = frame.drop(READ_PROBLEMS)
    schemas = [frame.collect_schema() for frame in frames]
    for path, schema in zip(files, schemas, strict=True):
        if key not in schema:
            raise ReadError(f"{path}: {_absent('key column', [key], schema.names())}")
    _check_join(files, schemas, key)
    for path, frame in zip(files, frames, strict=True):
        _check_key(path, frame, key)
    frames, join_key = _comparable_keys(files, frames, schemas, key)

    anchor = frames[0]
    anchor_keys = anchor.select(join_key)
    joined = anchor
    queries = [anchor.select(pl.len())]
    for frame in frames[1:]:
        # The first file's key is the one the rows keep; the others' served only to join.
        right = frame.drop(key) if join_key != key else frame
        joined = joined.join(right, on=join_key, how="left", maintain_order="left")
        left_out = frame.select(*dict.fromkeys([join_key, key])).join(
            anchor_keys, on=join_key, how="anti", maintain_order="left"
        )
        absent = anchor_keys.join(frame.select(join_key), on=join_key, how="anti")
        queries += [frame.select(pl.len()), left_out.select(pl.len()), left_out.head(5)]
        queries.append(absent.select(pl.len()))
    if join_key != key:
        joined = joined.drop(join_key)
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


_JOIN_KEY = "_join_key"
_EXACT = 2**53  # integers a double holds exactly


def _comparable_keys(
    paths: Sequence[Path], frames: list[pl.LazyFrame], schemas: Sequence[pl.Schema], key: str
) -> tuple[list[pl.LazyFrame], str]:
    """Keys of one type join as they are; of mixed types, as whole numbers compared exactly."""
    types = [schema[key] for schema in schemas]
    if all(t == types[0] for t in types):
        return frames, key
    numeric = next((p for p, t in zip(paths, types, strict=True) if t.is_numeric()), None)
    has_float = any(t.is_float() for t in types)
    out = []
    for path, frame, dtype in zip(paths, frames, types, strict=True):
        column = pl.col(key)
        if dtype == pl.String:
            text = column.str.strip_chars()
            whole = text.str.replace(r"\.0*$", "").cast(pl.Int64, strict=False)
            bad = column.is_not_null() & whole.is_null()
            why = f"is not a whole number, but the key is a number in {numeric}"
        elif dtype.is_float():
            whole = pl.when(column == column.round(0)).then(column.cast(pl.Int64, strict=False))
            bad = column.is_not_null() & (whole.is_null() | (column.abs() >= _EXACT))
            why = "is not a whole number below 2**53 that every file's key type holds exactly"
        elif dtype.is_integer():
            whole = column.cast(pl.Int64, strict=False)
            bad = column.is_not_null() & whole.is_null()
            why = "does not fit a 64-bit integer"
        else:
            raise ReadError(f"{path}: key column {key} has type {dtype}; expected text or numbers")
        if has_float:
            # A float key holds integers exactly only below 2**53: a larger one would join by
            # a rounded value.
            bad = bad | (whole.abs() >= _EXACT)
        found = frame.filter(bad).select(key).head(1).collect()
        if found.height:
            raise ReadError(
                f"{path}: key column {key} has the value {found.item()!r}, which {why}; "
                "expected keys that compare exactly across files (a value that would lose "
                "precision cannot be joined)"
            )
        out.append(frame.with_columns(whole.alias(_JOIN_KEY)))
    return out, _JOIN_KEY


def _check_join(paths: Sequence[Path], schemas: Sequence[pl.Schema], key: str) -> None:
    """Columns the join would rename are errors, not suffixes."""
    owner: dict[str, Path] = {}
    for path, schema in zip(paths, schemas, strict=True):
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
    path: Path,
    separator: str,
    encoding: str | None,
    text_columns: Collection[str],
    options: ReadOptions,
) -> pl.LazyFrame:
    try:
        codec = codecs.lookup(encoding or "utf-8")
    except LookupError:
        raise ReadError(
            f"{path}: unknown encoding {encoding!r}; expected e.g. utf-8 or gb18030"
        ) from None
    utf8 = codec.name in ("utf-8", "utf-8-sig")
    decoded: str | None = None
    if utf8:
        # Polars reads UTF-8 itself and lazily (large files stream); checking every byte first
        # turns its bare "invalid utf-8 sequence" into an error with the offset.
        for _ in _decoded(path, codec):
            pass
        with path.open(encoding="utf-8-sig", newline="") as text:
            header = _check_header(path, text, separator, options.header_rows)
    else:
        # Polars decodes nothing but UTF-8 (and lossy UTF-8), so other encodings are decoded here.
        decoded = "".join(_decoded(path, codec))
        _check_round_trip(path, codec.name, decoded)
        header = _check_header(path, io.StringIO(decoded), separator, options.header_rows)
    if not options.as_text:
        # Inferring column types from every row, not the first hundred, so that a value late in
        # the file cannot fail the read after the schema was fixed.
        plain: dict[str, Any] = {
            "separator": separator,
            "infer_schema_length": None,
            "schema_overrides": {name: pl.String for name in text_columns},
        }
        if decoded is None:
            return pl.scan_csv(path, **plain)
        return pl.read_csv(decoded.encode("utf-8"), **plain).lazy()
    # A cohort read: every cell is text exactly as written; the mapping parses numbers cell by
    # cell, so one bad cell rejects its row, not the run.
    text_options: dict[str, Any] = {
        "separator": separator,
        "has_header": False,
        "skip_rows": options.header_rows,
        "new_columns": header,
        "schema": dict.fromkeys(header, pl.String),
        "null_values": [v for v in options.na_values if v],
        "truncate_ragged_lines": True,
    }
    source: Path | bytes = path if decoded is None else decoded.encode("utf-8")
    problems = _row_problems(source, separator, len(header), options.header_rows)
    if isinstance(source, Path):
        frame = pl.scan_csv(source, **text_options)
    else:
        frame = pl.read_csv(source, **text_options).lazy()
    return _with_row_problems(frame, problems)


def _check_round_trip(path: Path, encoding: str, decoded: str) -> None:
    """A UTF-8 file read as GB18030 decodes without error into other characters: say so."""
    raw = path.read_bytes()
    if raw.isascii():
        return
    try:
        as_utf8 = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return
    if as_utf8 != decoded:
        sample = next((c for c in as_utf8 if ord(c) > 127), "")
        raise ReadError(
            f"{path}: the file is valid UTF-8 (e.g. {sample!r}) but was declared {encoding}, "
            f"which reads the same bytes as other characters; expected --encoding utf-8 (or "
            f"none) for this file"
        )


@dataclass(frozen=True)
class RowProblems:
    """Rows of a delimited file that are not subjects: ragged, empty or blank lines."""

    rows: int  # data lines after the header, blank lines included
    problems: dict[int, str]  # 1-based data line → what is wrong with it


def _row_problems(
    source: Path | bytes, separator: str, width: int, header_rows: int
) -> RowProblems:
    """Count the fields of every line; a line with another count is ragged, never padded."""
    # Each line as one text cell: a separator that is never in the file, no quoting.
    options: dict[str, Any] = {
        "has_header": False,
        "separator": "\x1f" if separator != "\x1f" else "\x1e",
        "quote_char": None,
        "schema": {"line": pl.String},
    }
    if isinstance(source, bytes):
        lines = pl.read_csv(source, **options).lazy()
    else:
        lines = pl.scan_csv(source, **options)
    return _classify_lines(lines, separator, width, header_rows)


def _classify_lines(
    lines: pl.LazyFrame, separator: str, width: int, header_rows: int
) -> RowProblems:
    line = pl.col("line").fill_null("").str.strip_chars_end("\r")
    counted = lines.with_row_index("n").select(
        "n",
        line.alias("line"),
        (line.str.count_matches(separator, literal=True) + 1).alias("fields"),
        line.str.contains(_QUOTE, literal=True).alias("quoted"),
        line.str.replace_all(separator, "", literal=True).str.strip_chars().eq("").alias("empty"),
    )
    odd = counted.filter(
        pl.col("quoted") & (pl.col("line").str.count_matches(_QUOTE, literal=True) % 2 == 1)
    )
    checked = counted.filter((pl.col("fields") != width) | pl.col("empty") | pl.col("quoted"))
    odd_lines, suspect, total = pl.collect_all([odd.head(1), checked, counted.select(pl.len())])
    rows = max(total.item() - header_rows, 0)
    if odd_lines.height:
        # A quoted field spans lines: lines are not rows, so the rows are counted by csv.
        every = counted.select("line").collect()["line"].to_list()
        return _classify_rows(every, separator, width, header_rows)
    problems: dict[int, str] = {}
    for n, text, fields, quoted, empty in suspect.iter_rows():
        row = n - header_rows + 1
        if row < 1:
            continue
        if quoted:
            fields = len(next(csv.reader([text], delimiter=separator), []))
        if not text.strip():
            problems[row] = "the line is blank"
        elif empty:
            problems[row] = "the row has no value in any column"
        elif fields != width:
            problems[row] = f"the row has {fields} fields but the header has {width} columns"
    return RowProblems(rows, problems)


def _classify_rows(lines: list[str], separator: str, width: int, header_rows: int) -> RowProblems:
    text = "\n".join(lines[header_rows:])
    problems: dict[int, str] = {}
    rows = 0
    for rows, fields in enumerate(csv.reader(io.StringIO(text), delimiter=separator), start=1):
        if not fields:
            problems[rows] = "the line is blank"
        elif not "".join(fields).strip():
            problems[rows] = "the row has no value in any column"
        elif len(fields) != width:
            problems[rows] = f"the row has {len(fields)} fields but the header has {width} columns"
    return RowProblems(rows, problems)


def _with_row_problems(frame: pl.LazyFrame, found: RowProblems) -> pl.LazyFrame:
    """Add the row problems (Polars keeps blank lines as empty rows, so lines are rows)."""
    if not found.problems:
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias(READ_PROBLEMS))
    table = pl.LazyFrame(
        {_LINE: list(found.problems), READ_PROBLEMS: list(found.problems.values())},
        schema={_LINE: pl.Int64, READ_PROBLEMS: pl.String},
    )
    # A row index streams; a range over the frame's length would hold the whole file first.
    numbered = frame.with_row_index(_LINE, offset=1).with_columns(pl.col(_LINE).cast(pl.Int64))
    return numbered.join(table, on=_LINE, how="left", maintain_order="left").drop(_LINE)


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
    elif _is_utf8(Path(path)):
        hint = "; the file is valid UTF-8: drop the encoding (or declare utf-8)"
    return (
        f"{path}: byte 0x{bytes(bad).hex()} at byte offset {offset} cannot be decoded as "
        f"{encoding} ({error.reason}); expected {encoding} text{hint}"
    )


def _is_utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except (UnicodeDecodeError, OSError):
        return False
    return True


def _check_header(path: Path, text: IO[str], separator: str, header_rows: int = 1) -> list[str]:
    """The column names; a repeated name (Polars renames it) or a wrong delimiter is an error."""
    reader = csv.reader(text, delimiter=separator)
    rows = [row for _, row in zip(range(header_rows), reader, strict=False)]
    if not rows:
        raise ReadError(f"{path}: the file is empty; expected a header row of column names")
    if len(rows) < header_rows:
        raise ReadError(f"{path}: {header_rows} header rows declared but the file has {len(rows)}")
    names = merge_header_rows(rows)
    if len(names) == 1:
        found = [d for d in _OTHER_DELIMITERS if d != separator and d in names[0]]
        if found:
            shown = {"\t": "a tab", ";": "';'", "|": "'|'", ",": "','"}[found[0]]
            raise ReadError(
                f"{path}: the header is one column {names[0][:60]!r}, which looks separated by "
                f"{shown}, not {separator!r}; expected {separator!r} or declare the delimiter "
                f"(--delimiter)"
            )
    _check_unique(path, names)
    empty = [i + 1 for i, name in enumerate(names) if not name.strip()]
    if empty:
        raise ReadError(
            f"{path}: header column {empty[0]} has no name; expected a name for every column "
            f"(a header over two rows is declared with --header-rows 2)"
        )
    return names


def merge_header_rows(rows: Sequence[Sequence[Any]]) -> list[str]:
    """One name per column from header rows; a merged cell spans the empty cells to its right."""
    width = max(len(row) for row in rows)
    merged: list[list[str]] = [[] for _ in range(width)]
    for level, row in enumerate(rows):
        carried = ""
        for index in range(width):
            cell = row[index] if index < len(row) else None
            value = "" if cell is None else str(cell).strip()
            # Only upper rows spread over merged cells; the last row names each column alone.
            if value:
                carried = value
            elif level < len(rows) - 1:
                value = carried
            if value and (not merged[index] or merged[index][-1] != value):
                merged[index].append(value)
    return [" ".join(parts) for parts in merged]


def _check_unique(path: Path, names: Iterable[str]) -> None:
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise ReadError(
            f"{path}: column name {', '.join(map(repr, repeated))} appears more than once; "
            "expected each column name once"
        )


def _read_excel(path: Path, sheet: str | None, header_rows: int = 1) -> pl.LazyFrame:
    workbook = fastexcel.read_excel(path)
    sheets: list[str] = workbook.sheet_names
    listed = ", ".join(map(repr, sheets))
    if sheet is None and len(sheets) > 1:
        raise ReadError(f"{path}: the workbook has sheets {listed}; pass sheet= to choose one")
    if sheet is not None and sheet not in sheets:
        raise ReadError(f"{path}: no sheet {sheet!r}; the workbook has sheets {listed}")
    chosen = sheet if sheet is not None else sheets[0]
    # The header row read as data: Polars renames a repeated name (a, a_1) and so hides it.
    header = workbook.load_sheet(chosen, header_row=None, n_rows=header_rows).to_polars()
    if header_rows > 1:
        names = merge_header_rows([list(row) for row in header.iter_rows()])
        _check_unique(path, names)
        # Below a merged header the cells are read as text and parsed by the mapping.
        body = workbook.load_sheet(
            chosen, header_row=None, skip_rows=header_rows, dtypes="string"
        ).to_polars()
        body.columns = names[: body.width] + [
            f"column {i + 1}" for i in range(len(names), body.width)
        ]
        return body.filter(~pl.all_horizontal(pl.all().is_null())).lazy()
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
