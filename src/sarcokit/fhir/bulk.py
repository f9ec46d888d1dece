"""FHIR Bulk Data export (NDJSON: Patient, Observation, QuestionnaireResponse) → one subject
record per patient, through the same mapping (reference/fhir.toml) and the same rules as a
Bundle: per field the newest observation within the look-back window, the best or fastest trial
on that day, units converted as fields.toml says, and every observation left out counted with
its reason.

Streamed in two passes, with memory bounded by the block and partition sizes, not by the export:
(1) each NDJSON file is parsed in blocks (Arrow's JSON reader, only the fields sarcokit reads);
each block is classified into narrow rows (one per observation or component: patient, field,
date, canonical value, reason) and written to Parquet, split into partitions by a hash of the
patient's id; (2) each partition (its patients, observations and responses, wherever they were
in the export) is read back alone and the per-patient choice is made there with Polars. Nothing
of the export is ever held as Python objects.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from polars.expr.whenthen import ChainedThen

from sarcokit.fhir.inbound import FHIR_ID, NO_SUBJECT
from sarcokit.fhir.mapping import fhir_mapping
from sarcokit.fhir.shape import (
    ELEMENT,
    OBSERVATION,
    OBSERVATION_SCHEMA,
    PATIENT,
    PATIENT_SCHEMA,
    RESPONSE,
    RESPONSE_SCHEMA,
    SCHEMAS,
    resource_problem,
)
from sarcokit.fields import field_specs, input_columns
from sarcokit.screening import sarc_f_items

_FULL_DATE = r"^\d{4}-\d{2}-\d{2}"
# NDJSON bytes per block parsed at once, and Observation bytes per partition of the second pass:
# together they bound the reader's memory (a few hundred MiB) whatever the export's size.
BLOCK_BYTES = 32 << 20
PARTITION_BYTES = 256 << 20
# Narrow rows held before they are written out, split by partition: one file per block and
# partition cost more in each file's overhead than in its rows (~1,000 files at 1 M patients).
SPILL_BYTES = 64 << 20


@dataclass(frozen=True)
class BulkRead:
    """Subject records (one row per Patient) and the observations left out, with reasons."""

    records: pl.LazyFrame
    ignored: pl.LazyFrame


def _arrow_type(dtype: Any) -> Any:
    import pyarrow as pa

    if isinstance(dtype, pl.Struct):
        return pa.struct([(f.name, _arrow_type(f.dtype)) for f in dtype.fields])
    if isinstance(dtype, pl.List):
        return pa.list_(_arrow_type(dtype.inner))
    simple: dict[Any, Any] = {
        pl.String: pa.string(),
        pl.Float64: pa.float64(),
        pl.Int64: pa.int64(),
    }
    return simple[dtype if isinstance(dtype, type) else type(dtype)]


def _arrow_options(schema: dict[str, Any]) -> Any:
    import pyarrow as pa
    import pyarrow.json as pj

    arrow = pa.schema([(name, _arrow_type(dtype)) for name, dtype in schema.items()])
    # Fields sarcokit does not read (meta, text, extensions, ...) are skipped, not refused.
    return pj.ParseOptions(explicit_schema=arrow, unexpected_field_behavior="ignore")


@dataclass(frozen=True)
class Block:
    """Some lines of an NDJSON file: the resources read, and the lines refused with why."""

    frame: pl.DataFrame
    refused: list[dict[str, Any]]


# NDJSON files as an export may hold them: plain, or compressed with gzip.
_SUFFIXES = (".ndjson", ".ndjson.gz")


def _is_ndjson(path: Path) -> bool:
    return path.name.endswith(_SUFFIXES)


def _open(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed on the fly where it is gzip (.ndjson.gz)."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


# FHIR NDJSON compresses 10-27 fold with gzip (27 for the benchmark's export); a .gz file is
# counted as this many times its size when the partitions are planned, so that they stay small
# (more partitions than needed cost little).
GZIP_RATIO = 25


def _text_bytes(path: Path) -> int:
    """About how many bytes of NDJSON text the file holds (for planning partitions)."""
    size = path.stat().st_size
    return size * GZIP_RATIO if path.name.endswith(".gz") else size


def _pieces(path: Path, block_bytes: int) -> Iterator[tuple[int, memoryview]]:
    """The file in pieces of about `block_bytes` that end at a line's end, each with the
    offset of its first byte in the file's text (`_Lines` turns it into a line number).

    Every piece is a view of one buffer, refilled for the next piece: a piece is valid only
    until the next one is asked for (its parse copies what it keeps). Fresh memory for every
    piece cost more than the reading itself (page faults), and half the pieces' bytes were
    copied again to join the unfinished line to what followed it.
    """
    buffer = bytearray(block_bytes)
    kept, offset = 0, 0  # bytes of an unfinished line at the front; where the next piece starts
    with _open(path) as source:
        while True:
            if kept == len(buffer):  # a line longer than the buffer: a larger one
                buffer = buffer + bytes(len(buffer))
            count = source.readinto(memoryview(buffer)[kept:])
            if not count:
                break
            end = kept + count
            cut = buffer.rfind(b"\n", 0, end) + 1
            if cut:
                yield offset, memoryview(buffer)[:cut]
                offset += cut
                buffer[: end - cut] = buffer[cut:end]
            kept = end - cut
    if buffer[:kept].strip():
        yield offset, memoryview(buffer)[:kept]


class _Lines:
    """The line number at a byte offset of a file's text, counted only when a piece holds a
    line to refuse: counting the lines of every piece cost more than reading the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.source: io.BufferedIOBase | None = None
        self.offset, self.line = 0, 1  # counted so far: the next byte and its line

    def at(self, offset: int) -> int:
        """The number of the line that starts at `offset` (offsets asked in increasing order)."""
        if self.source is None:
            self.source = _open(self.path)
        while self.offset < offset:
            chunk = self.source.read(min(offset - self.offset, 1 << 24))
            if not chunk:
                break
            self.line += chunk.count(b"\n")
            self.offset += len(chunk)
        return self.line

    def close(self) -> None:
        """Close the second handle on the file, if one was opened."""
        if self.source is not None:
            self.source.close()


def _parse(piece: bytes | memoryview, options: Any, block_size: int = 1 << 20) -> pl.DataFrame:
    import pyarrow as pa
    import pyarrow.json as pj

    # Arrow parses a piece's blocks on its threads; a line longer than a block is refused
    # here and read alone in `_salvage`.
    read = pj.ReadOptions(block_size=block_size)
    frame = pl.from_arrow(pj.read_json(pa.BufferReader(piece), read, options))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _line_problem(text: bytes, kind: str) -> str | None:
    """Why one NDJSON line is not a `kind` resource sarcokit can read, or None."""
    try:
        resource = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"not JSON: {error}"
    problem = resource_problem(resource, kind)
    if problem is None and resource.get("resourceType") != kind:
        shown = json.dumps(resource.get("resourceType"), ensure_ascii=False)[:40]
        problem = f'resourceType is {shown}; expected "{kind}", the type of this file'
    if problem is None and not resource.get("id"):
        problem = "id is missing; every resource of an export has one"
    return problem


def _salvage(path: Path, kind: str, first: int, piece: memoryview, options: Any) -> Block:
    """A piece Arrow refused, line by line: the readable lines parsed, the others refused with
    their line number and why (slower, but only where a piece holds a bad line)."""
    import pyarrow as pa

    schema = SCHEMAS[kind]
    checked = [
        (number, text, _line_problem(text, kind))
        for number, text in enumerate(bytes(piece).split(b"\n"), start=first)
        if text.strip()
    ]
    good = [text for _, text, problem in checked if problem is None]
    refused = [_refused(path, n, problem) for n, _, problem in checked if problem is not None]
    try:
        frame = _parse(b"\n".join(good), options) if good else pl.DataFrame(schema=schema)
    except pa.ArrowInvalid:
        # What the checks above pass and Arrow refuses (a line longer than Arrow's block):
        # each line alone, refused with Arrow's message, in the file's order.
        frames, refused = [], []
        for number, text, problem in checked:
            if problem is None:
                try:
                    frames.append(_parse(text, options, max(len(text) + 1, 1 << 20)))
                    continue
                except pa.ArrowInvalid as error:
                    problem = str(error).removeprefix("JSON parse error: ")
            refused.append(_refused(path, number, problem))
        frame = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    return Block(frame.drop("resourceType", strict=False), refused)


def _refused(path: Path, line: int, problem: str) -> dict[str, Any]:
    return {"resource": f"{path.name} line {line}", "patient": None, "code": None,
            "reason": "malformed", "detail": problem}  # fmt: skip


def ndjson_blocks(path: Path, kind: str, block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """The file's `kind` resources in blocks of about `block_bytes` of text, as Polars frames
    with only the elements sarcokit reads; a line that is not such a resource is refused with
    its number and why, and the rest is read."""
    import pyarrow as pa

    schema = SCHEMAS[kind]
    options = _arrow_options({**schema, "resourceType": pl.String})
    lines = _Lines(path)
    try:
        for offset, piece in _pieces(path, block_bytes):
            try:
                frame = _parse(piece, options)
            except pa.ArrowInvalid:
                yield _salvage(path, kind, lines.at(offset), piece, options)
                continue
            # A resource of another type, or without an id, is read line by line like a
            # malformed one, so that it is refused with its line number.
            wrong = pl.col("resourceType").ne_missing(kind) | (pl.col("id").fill_null("") == "")
            if frame.select(wrong.any()).item():
                yield _salvage(path, kind, lines.at(offset), piece, options)
            else:
                yield Block(frame.drop("resourceType"), [])
    finally:
        lines.close()


# How many lines of a file are tried for its resource type when its name does not give one.
_TYPE_LINES = 100


def file_type(path: Path) -> str | None:
    """The resource type of a Bulk Data file (one type per file, as the Bulk Data IG requires):
    the one of sarcokit's types its name holds as a part (`Observation.ndjson`,
    `2.Observation.ndjson`, `Observation_002.ndjson`), else that of its first resources."""
    named = {part for part in re.split(r"[._\-]", path.name) if part in SCHEMAS}
    if len(named) == 1:
        return named.pop()
    with _open(path) as lines:
        for _, line in zip(range(_TYPE_LINES), lines, strict=False):
            try:
                resource = json.loads(line)
            except ValueError:
                continue
            if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                return str(resource["resourceType"])
    return None


def _natural(path: Path) -> list[Any]:
    """Sort key: Observation.2.ndjson before Observation.10.ndjson."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def export_files(inputs: Sequence[Path]) -> dict[str | None, list[Path]]:
    """The export's .ndjson and .ndjson.gz files by resource type (None: no type found), each
    type's files in natural order of their names."""
    if inputs[0].is_dir():
        paths = [p for p in inputs[0].iterdir() if _is_ndjson(p) and p.is_file()]
    else:
        paths = list(inputs)
    found: dict[str | None, list[Path]] = {}
    for path in sorted(paths, key=_natural):
        found.setdefault(file_type(path), []).append(path)
    return found


def is_bulk_export(inputs: Sequence[Path]) -> bool:
    """Whether the cohort inputs are a Bulk Data export: a folder holding .ndjson (or
    .ndjson.gz) files, or such files (`read_bulk` then says what is missing, such as the
    Patient resources)."""
    if len(inputs) == 1 and inputs[0].is_dir():
        return any(_is_ndjson(p) for p in inputs[0].iterdir())
    return bool(inputs) and all(_is_ndjson(p) for p in inputs)


def _unread(files: dict[str | None, list[Path]]) -> list[dict[str, Any]]:
    """One row for each file of a type sarcokit does not read (it is not silently skipped)."""
    rows = []
    for kind, paths in files.items():
        if kind in SCHEMAS:
            continue
        detail = (
            f"a file of {kind} resources; sarcokit reads {', '.join(SCHEMAS)}"
            if kind is not None
            else f"no resourceType in its first {_TYPE_LINES} lines, nor a type in its name"
        )
        rows += [{"resource": p.name, "patient": None, "code": None,
                  "reason": "file_not_read", "detail": detail} for p in paths]  # fmt: skip
    return rows


def _rules() -> pl.DataFrame:
    """One row per (input, unit): the field, the column type and the factor to the canonical
    unit (fields.toml), the look-back and the choice rule. (Which input a code names is
    `_input_of`'s.)"""
    rows = []
    columns = input_columns()
    for item in fhir_mapping().inputs:
        for unit, column in item.units.items():
            spec, alt_name = columns[column]
            alternative = spec.alternative(alt_name)
            factor = 1.0 if alternative is None else alternative.to_canonical(1.0)
            rows.append(
                {
                    "unit": unit,
                    "input": item.name,
                    "field": item.field,
                    "factor": factor,
                    "divide_by": alternative.divide_by if alternative else None,
                    "lookback_days": item.lookback_days,
                    "combine": item.combine,
                    "yields_to": item.yields_to,
                }
            )
    return pl.DataFrame(rows, schema_overrides={"divide_by": pl.Float64, "yields_to": pl.String})


# A patient reference as the Bulk Data IG allows it: relative (Patient/<id>) or absolute, rooted
# in the exporting server's base URL, either possibly with a version (/_history/<vid>). Any other
# reference is kept as given, so the row is listed as about a patient not in the export.
_PATIENT_REFERENCE = (
    rf"^(?:[A-Za-z][A-Za-z0-9+.\-]*://\S+/)?Patient/({FHIR_ID})(?:/_history/{FHIR_ID})?$"
)


def _with_patient_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """The block with each subject.reference replaced by the patient id it names (see
    `_PATIENT_REFERENCE`), or kept as given if it names none."""
    reference = frame["subject"].struct.field("reference")
    rest = reference.str.strip_prefix("Patient/")
    # Nearly always plain Patient/<id>: literal tests, where the regular expression would cost
    # twenty times as much; it is run only on a block that holds another form.
    plain = reference.str.starts_with("Patient/") & ~rest.str.contains("/", literal=True)
    if plain.all():
        ids = rest
    else:
        ids = pl.select(
            pl.coalesce(reference.str.extract(_PATIENT_REFERENCE, 1), reference)
        ).to_series()
    return frame.with_columns(pl.struct(ids.alias("reference")).alias("subject"))


# An observation's patient reference, and its date: the effective time as given, else when issued.
_SUBJECT = pl.col("subject").struct.field("reference").alias("subject")
_WHEN = pl.coalesce(
    pl.col("effectiveDateTime"),
    pl.col("effectiveInstant"),
    pl.col("effectivePeriod").struct.field("end"),
    pl.col("effectivePeriod").struct.field("start"),
    pl.col("issued"),
).alias("when")


def _elements(observations: pl.LazyFrame) -> pl.LazyFrame:
    """One row per observation and per component: id, patient, status, date, code, value."""
    top = observations.select(
        pl.col("id"),
        pl.lit(None, pl.Int64).alias("part"),
        pl.col("status"),
        _SUBJECT,
        _WHEN,
        *(pl.col(name) for name in ELEMENT),
        pl.col("component").list.len().fill_null(0).alias("components"),
    )
    parts = (
        observations.filter(pl.col("component").list.len() > 0)
        .select(
            "id",
            "status",
            _SUBJECT,
            _WHEN,
            pl.col("component"),
        )
        .with_columns(pl.int_ranges(pl.col("component").list.len()).alias("part"))
        .explode("component", "part")
        .select(
            "id",
            pl.col("part").cast(pl.Int64),
            "status",
            "subject",
            "when",
            *(pl.col("component").struct.field(name).alias(name) for name in ELEMENT),
            pl.lit(0, pl.UInt32).alias("components"),
        )
    )
    both = pl.concat([top.with_columns(pl.col("components").cast(pl.UInt32)), parts])
    return both.with_columns(
        pl.col("subject").alias("patient"),
        pl.col("code").struct.field("coding").alias("coding"),
    ).drop("code")


# `detail` says what is wrong with a malformed line (null for the other reasons).
_IGNORED_SCHEMA = {
    "resource": pl.String, "patient": pl.String, "code": pl.String, "reason": pl.String,
    "detail": pl.String,
}  # fmt: skip


# The reason of a panel's own row in the narrow rows: it stands for the resource, never listed.
PANEL = "panel"


_ID_HASH = pl.col("id").hash(seed=7)
# The narrow rows that stand for a resource (an observation's own row, not its components'),
# for each kind counted for repeated ids: one id on two of them is one resource twice.
_OWN_ROWS = {"observation": pl.col("part").is_null(), "response": pl.lit(True)}


class _Spill:
    """Narrow rows of pass 1, written to Parquet by partition (hash of the patient's id)."""

    def __init__(self, folder: Path, parts: int) -> None:
        self.folder, self.parts = folder, parts
        self.files: dict[tuple[str, int], list[Path]] = {}
        self.hashes: dict[str, list[pl.Series]] = {}
        self.held: dict[str, tuple[str, list[pl.DataFrame]]] = {}  # kind: (patient column, rows)

    def write(self, kind: str, frame: pl.DataFrame, patient: str) -> None:
        """Keep `frame` to be written (split by the hash of its `patient` column) once
        `SPILL_BYTES` of its kind are held; for a kind of `_OWN_ROWS`, keep a hash of each
        resource's id for `repeated`."""
        if frame.is_empty():
            return
        if kind in _OWN_ROWS:
            ids = frame.filter(_OWN_ROWS[kind]).select(_ID_HASH).to_series()
            self.hashes.setdefault(kind, []).append(ids)
        frames = self.held.setdefault(kind, (patient, []))[1]
        frames.append(frame)
        if sum(f.estimated_size() for f in frames) >= SPILL_BYTES:
            self._flush(kind)

    def _flush(self, kind: str) -> None:
        """Write the rows held of `kind`, one file per partition, in the order they came."""
        patient, frames = self.held.pop(kind, ("", []))
        if not frames:
            return
        where = (pl.col(patient).hash(seed=13) % self.parts).fill_null(0).alias("_partition")
        for (part, *_), piece in (
            pl.concat(frames)
            .with_columns(where)
            .partition_by("_partition", as_dict=True, include_key=False)
            .items()
        ):
            paths = self.files.setdefault((kind, int(part)), [])
            path = self.folder / f"{kind}-{part}-{len(paths):06d}.parquet"
            piece.write_parquet(path, compression="lz4", statistics=False)
            paths.append(path)

    def repeated(self, kind: str) -> pl.DataFrame:
        """The ids of `kind` resources found more than once anywhere in the export (one id
        for two patients included), with how many: the hashes kept by `write` find the
        suspects, and only their rows are read back to count them exactly."""
        self._flush(kind)
        none = pl.DataFrame(schema={"id": pl.String, "copies": pl.UInt32})
        hashes = self.hashes.get(kind)
        if not hashes:
            return none
        # Sorted, a repeated hash is next to its copy: cheaper than hashing the hashes again.
        every = pl.concat(hashes).sort()
        suspects = every.filter(every == every.shift(1)).unique()
        if suspects.is_empty():
            return none
        paths = [path for (k, _), paths in self.files.items() if k == kind for path in paths]
        return (
            pl.scan_parquet(paths)
            .filter(_OWN_ROWS[kind])
            .select("id")
            .filter(_ID_HASH.is_in(suspects.implode()))
            .group_by("id")
            .agg(pl.len().alias("copies"))
            .filter(pl.col("copies") > 1)
            .collect()
        )

    def read(self, kind: str, part: int, schema: dict[str, Any]) -> pl.DataFrame:
        """Every row of one partition of one kind, in the export's order."""
        self._flush(kind)
        paths = self.files.get((kind, part), [])
        if not paths:
            return pl.DataFrame(schema=schema)
        return pl.read_parquet(paths)


def read_bulk(inputs: Sequence[Path], as_of: date | None = None) -> BulkRead:
    """Read a Bulk Data export into subject records and the ignored observations, streamed
    (blocks, then partitions by patient; see the module's docstring)."""
    day = as_of or datetime.now(UTC).date()
    files = export_files(inputs)
    if PATIENT not in files:
        seen = ", ".join(f"{p.name} ({kind})" for kind, paths in files.items() for p in paths)
        raise ValueError(
            f"a Bulk Data export needs a file of Patient resources; found {seen or 'none'}"
        )
    size = sum(_text_bytes(p) for kind in (OBSERVATION, RESPONSE) for p in files.get(kind, []))
    parts = max(1, -(-size // PARTITION_BYTES))
    questionnaire = fhir_mapping().questionnaire_url
    refused: list[dict[str, Any]] = _unread(files)
    gaps: list[pl.DataFrame] = []  # a Patient's gender or birth date that gives no value
    with tempfile.TemporaryDirectory(prefix="sarcokit-bulk-") as tmp:
        spill = _Spill(Path(tmp), parts)
        order = 0
        for block in _blocks(files, PATIENT):
            refused += block.refused
            found = _patients(block.frame.lazy(), day).collect()
            gaps.append(_patient_gaps(block.frame, found))
            spill.write("patient", found.with_row_index("order", order), "id")
            order += block.frame.height
        rules = _rules()
        offset = 0
        # Each block shrinks to narrow rows (written out) before the next is parsed.
        for block in _blocks(files, OBSERVATION):
            refused += block.refused
            frame = block.frame
            classified = _worded(_classify(_with_patient_ids(frame).lazy(), day, rules).collect())
            classified = classified.with_columns(pl.col("element") + offset)
            spill.write("observation", classified, "patient")
            offset += frame.height + int(frame["component"].list.len().sum() or 0)
        for block in _blocks(files, RESPONSE):
            refused += block.refused
            rows = _response_rows(_with_patient_ids(block.frame).lazy(), day, questionnaire)
            spill.write("response", rows.collect(), "patient")
        schemas = _spill_schemas(day)
        repeated = {kind: spill.repeated(kind) for kind in _OWN_ROWS}
        records, ignored = [], []
        for part in range(parts):
            found, left_out = _partition(
                spill.read("patient", part, schemas["patient"]),
                spill.read("observation", part, schemas["observation"]),
                spill.read("response", part, schemas["response"]),
                repeated,
            )
            records.append(found)
            ignored.append(left_out)
    everyone = pl.concat(records, how="diagonal_relaxed").sort("order").drop("order")
    left = pl.concat(
        [pl.DataFrame(refused, schema=_IGNORED_SCHEMA), *gaps, *ignored], how="diagonal_relaxed"
    )
    return BulkRead(everyone.lazy(), left.lazy())


def _blocks(files: dict[str | None, list[Path]], kind: str) -> Iterator[Block]:
    """The blocks of every file of `kind` resources, file after file."""
    for path in files.get(kind, []):
        yield from ndjson_blocks(path, kind)


def _spill_schemas(day: date) -> dict[str, dict[str, Any]]:
    """The schema of each kind of narrow row, for partitions that hold none of that kind."""
    empty = {
        "patient": _patients(pl.LazyFrame(schema=PATIENT_SCHEMA), day).with_row_index("order"),
        "observation": _worded(
            _classify(pl.LazyFrame(schema=OBSERVATION_SCHEMA), day, _rules()).collect()
        ).lazy(),
        "response": _response_rows(pl.LazyFrame(schema=RESPONSE_SCHEMA), day, ""),
    }
    return {kind: dict(frame.collect_schema()) for kind, frame in empty.items()}


def _about_known_patients(
    rows: pl.LazyFrame, known: pl.LazyFrame, first: Sequence[str], own_row: pl.Expr
) -> pl.LazyFrame:
    """Rows (observations or responses) whose patient is not in the export marked other_patient,
    and those of a patient whose Patient resource is in the export more than once marked
    duplicate_patient (`known` holds each id once, with whether it is duplicated).

    As the Bundle reader checks them, only the reasons in `first` come before the patient; a
    resource about another patient is listed once, on its `own_row` (its components dropped).
    """
    about = pl.col("duplicated")
    other = (
        pl.when(pl.col("reason").is_in(list(first)))
        .then(pl.col("reason"))
        .when(about.is_null() | about)
        .then(
            pl.when(own_row).then(
                pl.when(about.is_null())
                .then(pl.lit("other_patient"))
                .otherwise(pl.lit("duplicate_patient"))
            )
        )
        .otherwise(pl.col("reason"))
    )
    # In the export's order: among equally new responses the first is used.
    joined = rows.join(known, on="patient", how="left", maintain_order="left")
    if "detail" in rows.collect_schema():
        # A detail says why the row's first reason applies; it goes with that reason.
        kept = other.eq_missing(pl.col("reason"))
        joined = joined.with_columns(pl.when(kept).then(pl.col("detail")).alias("detail"))
    return (
        joined.with_columns(other.alias("reason"))
        .filter(pl.col("reason").is_not_null() & (pl.col("reason") != PANEL))
        .drop("duplicated")
    )


def _partition(
    patients: pl.DataFrame,
    observations: pl.DataFrame,
    responses: pl.DataFrame,
    repeated: dict[str, pl.DataFrame],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The records of one partition's patients and the rows left out, with reasons.

    A patient id on more than one Patient resource gives no record: which of them is right
    cannot be told, so every copy and all that patient's observations are listed instead.
    """
    copies = patients["id"].is_duplicated()
    known = patients.select(pl.col("id").alias("patient"), copies.alias("duplicated"))
    if copies.any():
        known = known.unique("patient")
    doubled = (
        patients.filter(copies)
        .lazy()
        .sort("order")
        .select(
            pl.concat_str(pl.lit("Patient/"), pl.col("id")).alias("resource"),
            pl.col("id").alias("patient"),
            pl.lit(None, pl.String).alias("code"),
            pl.lit("duplicate_patient").alias("reason"),
            _copies_detail(PATIENT, pl.len().over("id")),
        )
    )
    patients = patients.filter(~copies)
    observations, doubled_observations = _split_copies(observations, repeated, "observation")
    responses, doubled_responses = _split_copies(responses, repeated, "response")
    listed = [
        _ignored(
            # Listed once per copy, as a Bundle lists them: on the resource's own row.
            doubled_observations.lazy().filter(pl.col("part").is_null()),
            pl.lit("duplicate"),
            _copies_detail(OBSERVATION),
        ),
        doubled_responses.lazy().select(
            pl.concat_str(pl.lit("QuestionnaireResponse/"), pl.col("id")).alias("resource"),
            "patient",
            pl.lit("sarc-f").alias("code"),
            pl.lit("duplicate").alias("reason"),
            _copies_detail(RESPONSE),
        ),
    ]
    # The Bundle reader checks an observation's status, then its patient; a response's
    # questionnaire, then its status, then its patient.
    values, left_out = _choose(
        _about_known_patients(
            observations.lazy(),
            known.lazy(),
            ["entered_in_error", "status"],
            pl.col("part").is_null(),
        )
    )
    records = (
        patients.lazy()
        .join(values, on="id", how="left")
        .with_columns(
            pl.when(pl.col("asm_kg").is_not_null()).then(pl.lit("dxa")).alias("asm_method"),
            pl.when(pl.col("walk_time_s").is_not_null()).then(pl.lit(4.0)).alias("walk_distance_m"),
        )
    )
    answers, answers_left_out = _choose_responses(
        _about_known_patients(
            responses.lazy(),
            known.lazy(),
            ["unknown_code", "entered_in_error", "status"],
            pl.lit(True),
        )
    )
    records = records.join(answers, on="id", how="left")
    found, *ignored = pl.collect_all([records, doubled, left_out, answers_left_out, *listed])
    return found, pl.concat(ignored, how="diagonal_relaxed")


def _split_copies(
    rows: pl.DataFrame, repeated: dict[str, pl.DataFrame], kind: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of resources that are in the export once, and those of a resource that is in
    it more than once (which copy is right cannot be told, so none is used), with the count."""
    if repeated[kind].is_empty():  # nearly always: no join
        return rows, rows.clear().with_columns(pl.lit(None, pl.UInt32).alias("copies"))
    # Every row of a repeated resource, its components' too.
    counted = rows.join(repeated[kind], on="id", how="left", maintain_order="left")
    once = pl.col("copies").is_null()
    return counted.filter(once).drop("copies"), counted.filter(~once)


def _copies_detail(kind: str, copies: pl.Expr | None = None) -> pl.Expr:
    """Why none of a resource's copies is used (`copies`: how many; the column by default)."""
    count = pl.col("copies") if copies is None else copies
    return pl.format(
        f"{kind}/{{}} is in the export {{}} times; none is used", pl.col("id"), count
    ).alias("detail")


def _shown(value: pl.Expr) -> pl.Expr:
    """A text as the Bundle reader shows it in a detail (Python's repr): 'other', or None."""
    return pl.concat_str(pl.lit("'"), value, pl.lit("'")).fill_null(pl.lit("None"))


def _patient_gaps(patients: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
    """A row for each Patient whose gender gives no sex or whose birthDate no age (`found`:
    what `_patients` read of them, row for row), saying why, as the Bundle reader lists them."""
    both = pl.concat([patients, found.select("sex", "age")], how="horizontal")
    resource = pl.concat_str(pl.lit("Patient/"), pl.col("id")).alias("resource")
    gender = both.filter(pl.col("sex").is_null()).select(
        resource,
        pl.col("id").alias("patient"),
        pl.lit("gender").alias("code"),
        pl.lit("no_value").alias("reason"),
        pl.format("gender {} is not male or female", _shown(pl.col("gender"))).alias("detail"),
    )
    birth = both.filter(pl.col("age").is_null()).select(
        resource,
        pl.col("id").alias("patient"),
        pl.lit("birthDate").alias("code"),
        pl.lit("no_date").alias("reason"),
        pl.format(
            "birthDate {} is not a full date (YYYY-MM-DD)", _shown(pl.col("birthDate"))
        ).alias("detail"),
    )
    return pl.concat([gender, birth])


def _patients(patients: pl.LazyFrame, day: date) -> pl.LazyFrame:
    birth = pl.col("birthDate")
    full = birth.str.contains(r"^\d{4}-\d{2}-\d{2}$")
    born = birth.str.to_date("%Y-%m-%d", strict=False)
    before_birthday = (pl.lit(day.month) < born.dt.month()) | (
        (pl.lit(day.month) == born.dt.month()) & (pl.lit(day.day) < born.dt.day())
    )
    age = pl.lit(day.year) - born.dt.year() - before_birthday.cast(pl.Int32)
    return patients.select(
        pl.col("id"),
        pl.when(pl.col("gender").is_in(["male", "female"])).then(pl.col("gender")).alias("sex"),
        pl.when(full).then(age).cast(pl.Float64).alias("age"),
    )


# An observation's (or component's) name, as the ignored file and the Bundle reader give it.
# The resource's name, a component's with its index. Text is built outside any when branch: a
# format inside one made Polars 2.1 read past a string array's end on some small partitions (a
# panic found by the generated parity test, tests/interop/test_bulk_parity.py).
_RESOURCE = pl.concat_str(
    pl.lit("Observation/"),
    pl.col("id"),
    pl.concat_str(pl.lit("#component["), pl.col("part").cast(pl.String), pl.lit("]")).fill_null(
        pl.lit("")
    ),
)


def _ignored(frame: pl.LazyFrame, reason: pl.Expr, *detail: pl.Expr) -> pl.LazyFrame:
    return frame.select(
        _RESOURCE.alias("resource"),
        pl.col("patient"),
        pl.col("code"),
        reason.alias("reason"),
        *detail,
    )


def _input_of(system: pl.Expr, code: pl.Expr) -> pl.Expr:
    """The mapping's input a (system, code) pair names, or null: one lookup per code system,
    about three times cheaper than a join with the mapping's codes."""
    by_system: dict[str, dict[str, str]] = {}
    for (url, value), item in fhir_mapping().by_code.items():
        by_system.setdefault(url, {})[value] = item.name
    found = pl.lit(None, pl.String)
    for url, names in by_system.items():
        named = code.replace_strict(names, default=None, return_dtype=pl.String)
        found = pl.when(system == url).then(named).otherwise(found)
    return found.alias("input")


# The separator of the (input, unit) keys of `_with_rules`: never in an input's name or a unit of
# the mapping, so a key joined from an observation's unit matches only the pair it names.
_KEY_SEPARATOR = "\x00"


def _with_rules(rows: pl.LazyFrame, rules: pl.DataFrame) -> pl.LazyFrame:
    """The rows with each rule column (field, factor, ...) for their input and unit, and the
    input's look-back whatever the unit (`window`); null where the mapping has no such rule.

    Looked up by the rule's row number rather than joined: the joins with the small rules
    table cost more than the rest of the classification.
    """
    keys: dict[str, int] = {}
    for row, (name, unit) in enumerate(rules.select("input", "unit").iter_rows()):
        if _KEY_SEPARATOR in name + unit:
            raise ValueError(f"the FHIR mapping's input {name!r} or unit {unit!r} holds a NUL")
        keys[name + _KEY_SEPARATOR + unit] = row
    number = pl.concat_str(pl.col("input"), pl.lit(_KEY_SEPARATOR), pl.col("unit")).replace_strict(
        keys, default=None, return_dtype=pl.UInt32
    )
    windows = dict(
        rules.group_by("input", maintain_order=True)
        .agg(pl.col("lookback_days").first())
        .iter_rows()
    )
    columns = ("field", "factor", "divide_by", "lookback_days", "combine", "yields_to")
    # The row number in a column of its own: Polars would compute it again for every gather.
    return (
        rows.with_columns(number.alias("_rule"))
        .with_columns(
            *(pl.lit(rules[name]).gather(pl.col("_rule")).alias(name) for name in columns),
            pl.col("input")
            .replace_strict(windows, default=None, return_dtype=rules["lookback_days"].dtype)
            .alias("window"),
        )
        .drop("_rule")
    )


def _classify(observations: pl.LazyFrame, day: date, rules: pl.DataFrame) -> pl.LazyFrame:
    """One narrow row per observation (and component) with why it is left out, or "ok" (a
    patient missing from the export is found in the second pass, `_partition`); subject
    references as `_with_patient_ids` leaves them."""
    elements = _elements(observations).with_row_index("element").collect()
    # Nearly every observation has one coding: its code is looked up directly. Only the others
    # are exploded: the first coding the mapping knows decides, else the first code is shown.
    one = (pl.col("coding").list.len() == 1).fill_null(False)
    coding = pl.col("coding").list.first().struct
    rows = (
        elements.lazy()
        .filter(one)
        .with_columns(coding.field("system").alias("system"), coding.field("code").alias("code"))
        .with_columns(_input_of(pl.col("system"), pl.col("code")))
    )
    others = elements.filter(~one)
    if not others.is_empty():
        exploded = (
            others.lazy()
            .select("element", "coding")
            .explode("coding")
            .select(
                "element",
                pl.col("coding").struct.field("system").alias("system"),
                pl.col("coding").struct.field("code").alias("code"),
            )
        )
        matched = (
            exploded.with_columns(_input_of(pl.col("system"), pl.col("code")))
            .filter(pl.col("input").is_not_null())
            .group_by("element", maintain_order=True)
            .agg(pl.col("system").first(), pl.col("code").first(), pl.col("input").first())
        )
        first_code = exploded.group_by("element").agg(pl.col("code").first().alias("any_code"))
        several = (
            others.lazy()
            .join(matched, on="element", how="left")
            .join(first_code, on="element", how="left")
            .with_columns(pl.coalesce("code", "any_code").alias("code"))
            .drop("any_code")
        )
        rows = pl.concat([rows, several], how="diagonal_relaxed").sort("element")
    quantity = pl.col("valueQuantity")
    unit = (
        pl.when(pl.col("valueInteger").is_not_null())
        .then(pl.lit("1"))
        .otherwise(quantity.struct.field("code"))
    )
    rows = rows.with_columns(
        unit.alias("unit"),
        pl.coalesce(pl.col("valueInteger").cast(pl.Float64), quantity.struct.field("value")).alias(
            "value"
        ),
        quantity.struct.field("system").alias("unit_system"),
        quantity.struct.field("unit").alias("unit_text"),
        quantity.struct.field("comparator").alias("comparator"),
        pl.col("dataAbsentReason").is_not_null().alias("absent"),
        pl.col("valueInteger").is_not_null().alias("integer_given"),
        pl.col("when").str.contains(_FULL_DATE).fill_null(False).alias("dated"),
        pl.col("when").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).alias("day"),
    )
    unknown = pl.col("input").is_null()
    panel = unknown & pl.col("part").is_null() & (pl.col("components") > 0)
    ucum = fhir_mapping().ucum
    with_rules = _with_rules(rows, rules)
    integer_fields = [n for n, s in field_specs().items() if s.kind == "integer"]
    # As in a Bundle, the status is the resource's: a resource it refuses is listed once, on
    # its own row (part null), not once per component.
    status = (
        pl.when(pl.col("status") == "entered-in-error")
        .then(pl.lit("entered_in_error"))
        .when(~pl.col("status").is_in(["final", "amended", "corrected"]).fill_null(False))
        .then(pl.lit("status"))
    )
    reason = (
        pl.when(status.is_not_null())
        .then(pl.when(pl.col("part").is_null()).then(status))
        # A panel's own row is kept (never listed): it stands for the resource in the second
        # pass, where a resource about no known patient is listed once.
        .when(panel)
        .then(pl.lit(PANEL))
        .when(unknown)
        .then(pl.lit("unknown_code"))
        .when(~pl.col("dated") | pl.col("day").is_null())
        .then(pl.lit("no_date"))
        .when(pl.col("day") > pl.lit(day))
        .then(pl.lit("future"))
        .when(pl.col("day") < pl.lit(day) - pl.duration(days=pl.col("window")))
        .then(pl.lit("too_old"))
        # Arrow's JSON reader lets NaN and Infinity through, which JSON does not have.
        .when(
            pl.col("dataAbsentReason").is_not_null()
            | pl.col("value").is_null()
            | ~pl.col("value").is_finite()
        )
        .then(pl.lit("no_value"))
        .when(pl.col("comparator").is_not_null())
        .then(pl.lit("no_value"))
        .when(pl.col("unit_system").is_not_null() & (pl.col("unit_system") != ucum))
        .then(pl.lit("unit"))
        .when(pl.col("field").is_null())
        .then(pl.lit("unit"))
        .when(pl.col("field").is_in(integer_fields) & (pl.col("value") != pl.col("value").floor()))
        .then(pl.lit("no_value"))
        .otherwise(pl.lit("ok"))
    )
    return (
        with_rules.with_columns(reason.alias("reason"))
        .filter(pl.col("reason").is_not_null())
        .select(
            "element", "id", "part", "patient", "code", "field", "day", "when", "value",
            "factor", "divide_by", "combine", "yields_to", "reason", "status", "window",
            *_WORDS_FROM,
        )
    )  # fmt: skip


# What the words of an observation refused for its code, unit or value are made from; read by
# `_worded` and then dropped.
_WORDS_FROM = (
    "coding", "input", "unit", "unit_text", "unit_system", "comparator", "absent",
    "integer_given",
)  # fmt: skip
_WORDED_HERE = ("unknown_code", "unit", "no_value")


def _worded(rows: pl.DataFrame) -> pl.DataFrame:
    """The classified rows with `detail`: why, in the Bundle reader's words, for a row refused
    for its code, unit or value (`_WORDED_HERE`), null for the others.

    The words are built for those rows only and put in place: text for every row would cost
    more than the rest of the classification, and an export of all of a hospital's
    observations is mostly codes sarcokit does not read.
    """
    refused = rows.select(pl.col("reason").is_in(_WORDED_HERE).arg_true()).to_series()
    detail = pl.repeat(None, rows.height, dtype=pl.String, eager=True).alias("detail")
    if refused.len():
        words = rows[refused].select(_observation_words()).to_series()
        detail = detail.scatter(refused, words)
    return rows.drop(_WORDS_FROM).hstack([detail])


def _observation_words() -> pl.Expr:
    """The words of `_worded`, as `inbound._value` and the unknown-code check say them."""
    mapping = fhir_mapping()
    field = pl.col("input").replace_strict(
        {item.name: item.field for item in mapping.inputs}, default=None, return_dtype=pl.String
    )
    accepted = pl.col("input").replace_strict(
        {item.name: ", ".join(item.units) for item in mapping.inputs},
        default=None,
        return_dtype=pl.String,
    )
    pairs = (
        pl.col("coding")
        .list.eval(
            pl.concat_str(
                pl.element().struct.field("system"), pl.lit("|"), pl.element().struct.field("code")
            )
        )
        .list.drop_nulls()
        .list.join(", ")
    )
    unknown = pl.concat_str(
        pl.lit("no mapping for "),
        pl.when(pairs != "").then(pairs).otherwise(pl.lit("an uncoded observation")),
    )
    value = pl.col("value")
    shown_value = (
        pl.when(value.is_nan())
        .then(pl.lit("NaN"))
        .when(value > 0)
        .then(pl.lit("Infinity"))
        .otherwise(pl.lit("-Infinity"))
    )
    no_value = (
        pl.when(pl.col("absent"))
        .then(pl.lit("dataAbsentReason given"))
        .when(value.is_null())
        .then(pl.lit("no numeric value"))
        .when(~value.is_finite())
        .then(pl.concat_str(pl.lit("value "), shown_value, pl.lit(" is not a number")))
        .when(pl.col("comparator").is_not_null())
        .then(
            pl.concat_str(
                pl.lit("value has comparator "),
                pl.col("comparator"),
                pl.lit("; only exact values are used"),
            )
        )
        .otherwise(
            pl.concat_str(
                field, pl.lit(": value "), value.cast(pl.String), pl.lit(" is not a whole number")
            )
        )
    )
    ucum = mapping.ucum
    not_ucum = pl.col("unit").is_null() | (
        pl.col("unit_system").is_not_null() & (pl.col("unit_system") != ucum)
    )
    unit = (
        pl.when(pl.col("integer_given"))
        .then(pl.concat_str(field, pl.lit(" needs a quantity with a UCUM unit, got an integer")))
        .when(not_ucum)
        .then(
            pl.concat_str(
                field,
                pl.lit(": unit "),
                _shown(pl.coalesce("unit_text", "unit")),
                pl.lit(" is not a UCUM code; accepted: "),
                accepted,
            )
        )
        .otherwise(
            pl.concat_str(
                field,
                pl.lit(": unit "),
                _shown(pl.col("unit")),
                pl.lit(" is not accepted; accepted: "),
                accepted,
            )
        )
    )
    said = pl.col("reason")
    return (
        pl.when(said == "unknown_code")
        .then(unknown)
        .when(said == "unit")
        .then(unit)
        .when(said == "no_value")
        .then(no_value)
        .alias("detail")
    )


def _refused_detail() -> pl.Expr:
    """Why, in the Bundle reader's words, where an observation's reason is its status, its
    date or its patient (built only for the rows left out: text for every row would cost more
    than the rest); the words `_worded` gave for the other reasons are kept."""
    window = pl.col("window").cast(pl.String)
    words = _reason_words(pl.col("when"), window, "final")
    return words.otherwise(pl.col("detail")).alias("detail")


def _reason_words(when: pl.Expr, window: pl.Expr, usable: str) -> ChainedThen:
    """The Bundle reader's words for a resource left out for its status, its date (`when` as
    written, `window` the look-back in days) or its patient; `usable` is the status it needs.
    A when/then chain, for the caller to extend or end."""
    said, status = pl.col("reason"), _shown(pl.col("status"))
    return (
        pl.when(said == "entered_in_error")
        .then(pl.lit("status entered-in-error"))
        .when(said == "status")
        .then(pl.concat_str(pl.lit("status "), status, pl.lit(f" is not {usable}")))
        .when(said == "no_date")
        .then(pl.concat_str(pl.lit("no full effective date ("), _shown(when), pl.lit(")")))
        .when(said == "future")
        .then(pl.concat_str(pl.lit("dated "), when, pl.lit(", after the assessment date")))
        .when(said == "too_old")
        .then(
            pl.concat_str(
                pl.lit("dated "),
                when,
                pl.lit(", older than the "),
                window,
                pl.lit("-day look-back window"),
            )
        )
        .when(said == "other_patient")
        .then(_other_patient_words())
        .when(said == "duplicate_patient")
        .then(_duplicate_patient_words())
    )


def _other_patient_words() -> pl.Expr:
    """Why a resource about a patient not in the export is left out; the reference as
    `_with_patient_ids` left it (an id where it named a patient, else as given)."""
    reference = (
        pl.when(pl.col("patient").str.contains(f"^{FHIR_ID}$"))
        .then(pl.concat_str(pl.lit("Patient/"), pl.col("patient")))
        .otherwise(pl.col("patient"))
    )
    return pl.concat_str(
        pl.lit("subject "), reference, pl.lit(" is not a Patient in the export")
    ).fill_null(pl.lit(NO_SUBJECT))


def _duplicate_patient_words() -> pl.Expr:
    """Why a resource of a patient whose Patient is in the export more than once is left out."""
    return pl.concat_str(
        pl.lit("Patient/"),
        pl.col("patient"),
        pl.lit(" is in the export more than once; none of its resources is used"),
    )


def _choose(rows: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Per patient the chosen value of each field, canonical units; and the rows left out."""
    rows = rows.collect().lazy()  # read twice below
    refused_out = _ignored(
        rows.filter(pl.col("reason") != "ok"), pl.col("reason"), _refused_detail()
    )
    good = rows.filter(pl.col("reason") == "ok").with_columns(
        pl.when(pl.col("divide_by").is_not_null())
        .then(pl.col("value") / pl.col("divide_by"))
        .otherwise(pl.col("value") * pl.col("factor"))
        .alias("canonical")
    )
    # A field that yields to another (walk trials to gait speed) is dropped where that other
    # field was observed within its window. Only the few rows that may yield are joined; the
    # order of `good` does not matter, the sort below decides it.
    targets = list(dict.fromkeys(i.yields_to for i in fhir_mapping().inputs if i.yields_to))
    may_yield = pl.col("yields_to").is_not_null()
    present = (
        good.filter(pl.col("field").is_in(targets))
        .select("patient", pl.col("field").alias("yields_to"))
        .unique()
    )
    yielding = good.filter(may_yield)
    yielded = yielding.join(present, on=["patient", "yields_to"], how="semi", maintain_order="left")
    good = pl.concat(
        [
            good.filter(~may_yield),
            yielding.join(present, on=["patient", "yields_to"], how="anti", maintain_order="left"),
        ]
    )
    # One sort instead of window functions: per patient and field the newest day first, on that
    # day the best trial (max), the fastest (min) or the newest time (latest), and among equals
    # the first in the export, as a Bundle is read. The first row of each group is chosen and
    # the others are superseded, both read from the one sorted frame.
    order = (
        pl.when(pl.col("combine") == "max")
        .then(-pl.col("canonical"))
        .when(pl.col("combine") == "min")
        .then(pl.col("canonical"))
        .alias("order")
    )
    newest_time = pl.when(pl.col("combine") == "latest").then(pl.col("when")).alias("newest_time")
    first = pl.col("patient").ne_missing(pl.col("patient").shift(1)) | pl.col("field").ne_missing(
        pl.col("field").shift(1)
    )
    # Sorted in memory: the streaming engine's sort took about twice as long here.
    ranked = (
        good.with_columns(order, newest_time)
        .collect()
        .sort(
            ["patient", "field", "day", "order", "newest_time", "element"],
            descending=[False, False, True, False, True, False],
            nulls_last=True,
        )
        .with_columns(first.alias("chosen"))
        .lazy()
    )
    chosen = ranked.filter(pl.col("chosen"))
    # Why each other row is not used, in the Bundle reader's words: each group starts with its
    # chosen row, so a forward fill carries that row's name and day down the group. (Text is
    # joined with concat_str: pl.format in both branches of a when panics in Polars 2.1.)
    picked = pl.col("chosen")
    trial = pl.when(pl.col("combine") == "max").then(pl.lit("better")).otherwise(pl.lit("faster"))
    beaten = (
        ranked.with_columns(
            pl.when(picked).then(pl.col("day")).forward_fill().alias("chosen_day"),
            pl.when(picked).then(_RESOURCE).forward_fill().alias("chosen_name"),
        )
        .filter(~picked)
        .with_columns(
            pl.when((pl.col("day") == pl.col("chosen_day")) & (pl.col("combine") != "latest"))
            .then(pl.concat_str(pl.lit("a "), trial, pl.lit(" trial that day is used")))
            .otherwise(
                pl.concat_str(
                    pl.lit("a later observation ("), pl.col("chosen_name"), pl.lit(") is used")
                )
            )
            .alias("detail")
        )
    )
    given_way = yielded.with_columns(
        pl.format("{} was observed and is used instead", "yields_to").alias("detail")
    )
    superseded = pl.concat([beaten, given_way], how="diagonal_relaxed")
    fields = list(dict.fromkeys(item.field for item in fhir_mapping().inputs))
    values = chosen.pivot(
        "field", on_columns=fields, index="patient", values="canonical", aggregate_function="first"
    )
    integer_fields = [n for n, s in field_specs().items() if s.kind == "integer"]
    values = values.with_columns(
        pl.col(name).round(0).cast(pl.Int64) for name in integer_fields if name in fields
    ).rename({"patient": "id"})
    ignored = pl.concat(
        [refused_out, _ignored(superseded, pl.lit("superseded"), pl.col("detail"))],
        how="diagonal_relaxed",
    ).select("resource", "patient", "code", "reason", "detail")
    return values, ignored


def _response_rows(responses: pl.LazyFrame, day: date, questionnaire: str) -> pl.LazyFrame:
    """One narrow row per QuestionnaireResponse: patient, date, why it is left out (or "ok"),
    and its SARC-F item scores; subject references as `_with_patient_ids` leaves them."""
    window = fhir_mapping().sarc_f_lookback_days
    rows = responses.with_row_index("row").with_columns(
        pl.col("subject").struct.field("reference").alias("patient"),
        pl.col("questionnaire").str.split("|").list.first().alias("canonical"),
        pl.col("authored").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).alias("day"),
    )
    reason = (
        # A response that names no questionnaire is not known to be a SARC-F either.
        pl.when(pl.col("canonical").ne_missing(pl.lit(questionnaire)))
        .then(pl.lit("unknown_code"))
        .when(pl.col("status") == "entered-in-error")
        .then(pl.lit("entered_in_error"))
        .when(~pl.col("status").is_in(["completed", "amended"]).fill_null(False))
        .then(pl.lit("status"))
        .when(pl.col("day").is_null())
        .then(pl.lit("no_date"))
        .when(pl.col("day") > pl.lit(day))
        .then(pl.lit("future"))
        .when(pl.col("day") < pl.lit(day) - pl.duration(days=window))
        .then(pl.lit("too_old"))
        .otherwise(pl.lit("ok"))
    )
    rows = rows.with_columns(reason.alias("reason"))
    items = (
        rows.select("row", "item")
        .explode("item")
        .select(
            "row",
            pl.col("item").struct.field("linkId").alias("link"),
            pl.col("item").struct.field("answer").list.first().alias("answer"),
        )
        .with_columns(
            pl.coalesce(
                pl.col("answer").struct.field("valueInteger"),
                pl.col("answer")
                .struct.field("valueCoding")
                .struct.field("code")
                .cast(pl.Int64, strict=False),
            ).alias("score")
        )
    )
    scores = items.group_by("row").agg(
        pl.col("score").filter(pl.col("link") == name).first().alias(name)
        for name in sarc_f_items()
    )
    return (
        rows.join(scores, on="row", how="left")
        .sort("row")
        .select("id", "patient", "authored", "canonical", "status", "reason", *sarc_f_items())
    )


def _choose_responses(rows: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Per patient the SARC-F item scores of the newest usable response; and the responses
    left out."""
    rows = rows.with_row_index("row").collect().lazy()  # read twice below: one numbering
    good = rows.filter(pl.col("reason") == "ok")
    newest = pl.col("authored").max().over("patient")
    chosen = good.filter(pl.col("authored") == newest).unique("patient", keep="first")
    used = chosen.select("patient", pl.col("id").alias("used"))
    superseded = (
        good.join(chosen.select("row"), on="row", how="anti", maintain_order="left")
        .join(used, on="patient", how="left", maintain_order="left")
        .with_columns(
            pl.lit("superseded").alias("reason"),
            pl.concat_str(
                pl.lit(f"a later SARC-F ({RESPONSE}/"), pl.col("used"), pl.lit(") is used")
            ).alias("detail"),
        )
    )
    answers = chosen.select(pl.col("patient").alias("id"), *sarc_f_items())
    refused = rows.filter(pl.col("reason") != "ok").with_columns(_response_words())
    left_out = pl.concat([refused, superseded], how="diagonal_relaxed").select(
        pl.concat_str(pl.lit(f"{RESPONSE}/"), pl.col("id")).alias("resource"),
        "patient",
        # As the Bundle reader shows it: the questionnaire a response of another one names.
        pl.when(pl.col("reason") == "unknown_code")
        .then(pl.when(pl.col("canonical") != "").then(pl.col("canonical")))
        .otherwise(pl.lit("sarc-f"))
        .alias("code"),
        "reason",
        "detail",
    )
    return answers, left_out


def _response_words() -> pl.Expr:
    """Why a QuestionnaireResponse is left out, in the Bundle reader's words."""
    mapping = fhir_mapping()
    named = pl.when(pl.col("canonical") != "").then(pl.col("canonical"))
    window = pl.lit(str(mapping.sarc_f_lookback_days))
    return (
        _reason_words(pl.col("authored"), window, "completed")
        .when(pl.col("reason") == "unknown_code")
        .then(
            pl.concat_str(
                pl.lit("questionnaire "),
                _shown(named),
                pl.lit(f" is not {mapping.questionnaire_url}"),
            )
        )
        .alias("detail")
    )


def write_bulk(inputs: Sequence[Path], records: Path, ignored: Path, as_of: date | None) -> None:
    """Read the export; write its subject records and what was left out to these Parquet files."""
    try:
        read = read_bulk(inputs, as_of)
        found, left_out = pl.collect_all([read.records, read.ignored])
        found.write_parquet(records)
        left_out.write_parquet(ignored)
    except pl.exceptions.PolarsError as error:
        raise ValueError(f"Bulk Data export {inputs[0]}: {error}") from None


def bulk_to_parquet(
    inputs: Sequence[Path], output: Path, as_of: date | None = None
) -> tuple[Path, Path]:
    """Write the export's subject records next to `output` (<stem>.fhir-records.parquet) and
    what was left out (<stem>.fhir-ignored.parquet); return both paths."""
    records = output.with_name(output.stem + ".fhir-records.parquet")
    ignored = output.with_name(output.stem + ".fhir-ignored.parquet")
    write_bulk(inputs, records, ignored, as_of)
    return records, ignored


def left_out_by_reason(ignored: Path) -> list[tuple[str, int]]:
    """How many resources (or malformed lines) an ignored file lists, by reason."""
    counts = pl.scan_parquet(ignored).group_by("reason").len().sort("reason").collect()
    return [(str(reason), int(n)) for reason, n in counts.iter_rows()]
