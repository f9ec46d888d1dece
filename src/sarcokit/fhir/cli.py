"""`sarcokit fhir`: publish the project's FHIR artefacts and read Bulk Data exports."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

fhir_app = typer.Typer(help="FHIR R4: the project CodeSystem, the SARC-F Questionnaire, Bulk Data.")


def as_of_date(text: str | None) -> date | None:
    """The --as-of option as a date (None: today); exits with status 2 naming the option."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        typer.echo(f"error: --as-of {text!r}: expected a date YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None


@fhir_app.command("codesystem")
def codesystem_command() -> None:
    """Print the project CodeSystem (codes without LOINC, definitions, categories)."""
    from sarcokit.fhir.codes import codesystem

    typer.echo(json.dumps(codesystem(), ensure_ascii=False, indent=2))


@fhir_app.command("questionnaire")
def questionnaire_command() -> None:
    """Print the SARC-F Questionnaire (answer scores as itemWeight)."""
    from sarcokit.fhir.codes import sarc_f_questionnaire

    typer.echo(json.dumps(sarc_f_questionnaire(), ensure_ascii=False, indent=2))


@fhir_app.command("mappings")
def mappings_command() -> None:
    """Print every code and unit mapping with its evidence as Markdown (docs/fhir-mappings.md)."""
    from sarcokit.fhir.mapping_doc import mappings_markdown

    typer.echo(mappings_markdown(), nl=False)


@fhir_app.command("bulk")
def bulk_command(
    export: Annotated[Path, typer.Argument(help="Bulk Data export folder (.ndjson files).")],
    output: Annotated[Path, typer.Option(help="Subject records (.parquet).")] = Path(
        "records.parquet"
    ),
    as_of: Annotated[
        str | None, typer.Option(help="Assessment date YYYY-MM-DD (default today).")
    ] = None,
) -> None:
    """Read a Bulk Data export into subject records (and the observations left out, with why)."""
    import polars as pl

    from sarcokit.fhir.bulk import left_out_by_reason, write_bulk

    day = as_of_date(as_of)
    ignored = output.with_name(output.stem + ".ignored.parquet")
    try:
        write_bulk([export], output, ignored, day)
    except (ValueError, OSError) as error:
        typer.echo(f"{export}: {error}", err=True)
        raise typer.Exit(2) from None
    rows = pl.scan_parquet(output).select(pl.len()).collect().item()
    typer.echo(f"patients {rows:,} → {output}; observations left out → {ignored}")
    for reason, n in left_out_by_reason(ignored):
        typer.echo(f"  {reason}: {n:,}")
