"""The `sarcokit` command: assess subjects and read the criteria with their citations."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sarcokit.api import assess_many
from sarcokit.definitions import DEFINITION_IDS, definition, definitions
from sarcokit.docs import cutoff_text, definition_markdown, markdown
from sarcokit.engine import ASM_EQUATIONS
from sarcokit.fhir.cli import fhir_app
from sarcokit.i18n import LANGUAGES, Lang
from sarcokit.render import render
from sarcokit.web.cli import clinic_app

app = typer.Typer(no_args_is_help=True, help="Screen, diagnose and count sarcopenia.")
criteria_app = typer.Typer(
    no_args_is_help=True, help="The consensus definitions and their sources."
)
app.add_typer(criteria_app, name="criteria")
app.add_typer(clinic_app, name="clinic")
app.add_typer(fhir_app, name="fhir")


class Output(StrEnum):
    """How results are printed."""

    terminal = "terminal"
    json = "json"


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(2)


def _read_json(source: str) -> tuple[list[Any], str]:
    """Records from a file or stdin: one object, an array, or JSON Lines."""
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text("utf-8-sig")
    except OSError as error:
        raise _fail(f"cannot read {source}: {error.strerror}") from None
    stripped = raw.strip()
    if not stripped:
        raise _fail(f"{source} is empty; expected a JSON object, an array or JSON Lines")
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        records = []
        for number, line in enumerate(stripped.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise _fail(f"{source} line {number}: not JSON ({error.msg})") from None
        return records, "lines"
    if isinstance(data, list):
        return data, "array"
    return [data], "object"


def _parse_pairs(option: str, pairs: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _fail(f"{option} {pair!r}: expected name=value")
        parsed[key.strip()] = value.strip()
    return parsed


def _definition_ids(text: str | None, option: str = "--definitions") -> list[str] | None:
    """Comma-separated definition ids, each checked; None means all."""
    if not text:
        return None
    chosen = [d.strip() for d in text.split(",")]
    for definition_id in chosen:
        if definition_id not in DEFINITION_IDS:
            known = ", ".join(DEFINITION_IDS)
            raise _fail(f"{option} {definition_id!r}: expected ids among {known}")
    return chosen


def _sex_coding(text: str | None) -> dict[Any, str] | None:
    if not text:
        return None
    coding: dict[Any, str] = {}
    for code, label in _parse_pairs("--sex-coding", text.split(",")).items():
        if label not in ("male", "female"):
            raise _fail(f"--sex-coding {code}={label}: a code must map to male or female")
        coding[code] = label
        if code.lstrip("-").isdigit():
            coding[int(code)] = label
    return coding


@app.command()
def assess(
    json_input: Annotated[
        str | None,
        typer.Option(
            "--json",
            help="JSON file ('-' for stdin): an object, an array or JSON Lines.",
        ),
    ] = None,
    sex: Annotated[str | None, typer.Option(help="male or female (or a declared code).")] = None,
    age: Annotated[float | None, typer.Option(help="Age in years.")] = None,
    height_m: Annotated[float | None, typer.Option(help="Height in metres.")] = None,
    height_cm: Annotated[float | None, typer.Option(help="Height in centimetres.")] = None,
    weight_kg: Annotated[float | None, typer.Option(help="Body weight in kg.")] = None,
    grip_kg: Annotated[float | None, typer.Option(help="Best grip strength in kg.")] = None,
    gait_speed: Annotated[float | None, typer.Option(help="Usual gait speed in m/s.")] = None,
    chair_stand_s: Annotated[
        float | None, typer.Option(help="Time for 5 chair stands in s.")
    ] = None,
    sppb: Annotated[int | None, typer.Option(help="SPPB score 0-12.")] = None,
    asm_kg: Annotated[
        float | None, typer.Option(help="Appendicular skeletal muscle mass in kg.")
    ] = None,
    asm_method: Annotated[str | None, typer.Option(help="dxa, bia, ct or equation.")] = None,
    calf_cm: Annotated[float | None, typer.Option(help="Calf circumference in cm.")] = None,
    field: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any other field of the subject record, as name=value."),
    ] = None,
    definitions_option: Annotated[
        str | None,
        typer.Option(
            "--definitions",
            help=f"Comma-separated ids (default: all): {', '.join(DEFINITION_IDS)}.",
        ),
    ] = None,
    lang: Annotated[
        str, typer.Option(help="Language of reasons and the terminal view: en or zh.")
    ] = "en",
    output: Annotated[
        Output | None,
        typer.Option(help="terminal or json (default: json with --json, terminal otherwise)."),
    ] = None,
    estimate_asm: Annotated[
        str | None, typer.Option(help="Use an ASM equation where ASM was not measured: wen2011.")
    ] = None,
    sex_coding: Annotated[
        str | None, typer.Option(help="Declared sex codes, e.g. 1=male,2=female.")
    ] = None,
    fhir_input: Annotated[
        str | None,
        typer.Option("--fhir", help="FHIR R4 Bundle of one patient (JSON file, '-' for stdin)."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="With --fhir: assessment date YYYY-MM-DD (default today).")
    ] = None,
    fhir_out: Annotated[
        Path | None,
        typer.Option(help="With --fhir: write the result here as a FHIR transaction Bundle."),
    ] = None,
) -> None:
    """Assess one subject from options, or many from JSON; exit 1 if any record was rejected."""
    if fhir_input is not None:
        _assess_fhir(fhir_input, as_of, fhir_out, _definition_ids(definitions_option), lang, output)
        return
    if lang not in LANGUAGES:
        raise _fail(f"--lang {lang!r}: expected one of {', '.join(LANGUAGES)}")
    if estimate_asm is not None and estimate_asm not in ASM_EQUATIONS:
        raise _fail(f"--estimate-asm {estimate_asm!r}: expected one of {', '.join(ASM_EQUATIONS)}")
    chosen = _definition_ids(definitions_option)
    flags = {
        "sex": sex,
        "age": age,
        "height_m": height_m,
        "height_cm": height_cm,
        "weight_kg": weight_kg,
        "grip_kg": grip_kg,
        "gait_speed_m_s": gait_speed,
        "chair_stand_5x_s": chair_stand_s,
        "sppb": sppb,
        "asm_kg": asm_kg,
        "asm_method": asm_method,
        "calf_cm": calf_cm,
    }
    given: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    given.update(_parse_pairs("--set", field or []))
    shape = "object"
    if json_input is not None:
        if given:
            raise _fail("give either --json or measurement options, not both")
        records, shape = _read_json(json_input)
    elif given:
        records = [given]
    else:
        raise _fail("nothing to assess: give --json FILE or measurement options (see --help)")
    language: Lang = "zh" if lang == "zh" else "en"
    results = assess_many(
        records,
        definitions=chosen,
        lang=language,
        estimate_asm="wen2011" if estimate_asm else None,
        sex_coding=_sex_coding(sex_coding),
    )
    mode = output or (Output.json if json_input is not None else Output.terminal)
    if mode is Output.json:
        payloads = [r.to_dict() for r in results]
        if shape == "lines":
            for payload in payloads:
                typer.echo(json.dumps(payload, ensure_ascii=False))
        else:
            typer.echo(
                json.dumps(
                    payloads if shape == "array" else payloads[0], ensure_ascii=False, indent=2
                )
            )
    else:
        console = Console()
        for result in results:
            render(result, console, language)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _assess_fhir(
    source: str,
    as_of: str | None,
    fhir_out: Path | None,
    chosen: list[str] | None,
    lang: str,
    output: Output | None,
) -> None:
    """`assess --fhir`: a Bundle read through reference/fhir.toml, then assessed."""
    from datetime import date

    from sarcokit.fhir.render import render_sources
    from sarcokit.fhir.service import assess_bundle
    from sarcokit.fields import InputError

    if lang not in LANGUAGES:
        raise _fail(f"--lang {lang!r}: expected one of {', '.join(LANGUAGES)}")
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise _fail(f"--as-of {as_of!r}: expected a date YYYY-MM-DD") from None
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text("utf-8")
        bundle = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _fail(f"--fhir {source}: {error}") from None
    language: Lang = "zh" if lang == "zh" else "en"
    try:
        assessed = assess_bundle(bundle, definitions=chosen, lang=language, as_of=day)
    except InputError as error:
        raise _fail(f"--fhir {source}: {error.problems[0].message}") from None
    if (output or Output.json) is Output.json:
        typer.echo(json.dumps(assessed.to_dict(), ensure_ascii=False, indent=2))
    else:
        console = Console()
        render(assessed.result, console, language)
        render_sources(assessed.read, console)
    if fhir_out is not None and assessed.result.ok:
        fhir_out.write_text(json.dumps(assessed.write_back(), indent=2), "utf-8")
    if not assessed.result.ok:
        raise typer.Exit(1)


@criteria_app.command("list")
def criteria_list() -> None:
    """List the definitions with their sources."""
    table = Table("id", "name", "categories", "doi")
    table.columns[0].no_wrap = True
    for d in definitions():
        table.add_row(d.id, d.name, ", ".join(d.category_ids), d.doi or "")
    Console().print(table)


@criteria_app.command("show")
def criteria_show(definition_id: str) -> None:
    """Show one definition: every cut-off, its inequality, component and source."""
    try:
        chosen = definition(definition_id)
    except KeyError as error:
        raise _fail(str(error.args[0])) from None
    console = Console()
    console.print(f"[bold]{chosen.id}[/bold]: {chosen.title}")
    console.print(chosen.citation + (f" doi:{chosen.doi}" if chosen.doi else ""), highlight=False)
    for test in chosen.tests:
        t = test.threshold
        console.print(
            f"  {test.component:<24} {t.id:<12} {t.input:<18} {cutoff_text(t)}  [{t.source}]",
            highlight=False,
            soft_wrap=True,
        )
    for category in chosen.categories:
        console.print(
            f"  {category.id}: [cyan]{category.when}[/cyan]  [{category.source}]", highlight=False
        )
    for note in chosen.notes:
        console.print(f"  • {note}", highlight=False)


@criteria_app.command("markdown")
def criteria_markdown(definition_id: Annotated[str | None, typer.Argument()] = None) -> None:
    """Print the reference documentation (all definitions, or one) as Markdown."""
    if definition_id is None:
        typer.echo(markdown(), nl=False)
        return
    try:
        typer.echo("\n".join(definition_markdown(definition(definition_id))))
    except KeyError as error:
        raise _fail(str(error.args[0])) from None


@app.command()
def cohort(
    inputs: Annotated[
        list[Path], typer.Argument(help="Cohort file(s): CSV, Parquet, Excel, XPT, DTA, SAV.")
    ],
    output: Annotated[Path, typer.Option(help="Per-row results: .parquet or .csv.")] = Path(
        "results.parquet"
    ),
    mapping: Annotated[
        Path | None,
        typer.Option(help="Mapping file (TOML) from source columns to the subject record."),
    ] = None,
    key: Annotated[str | None, typer.Option(help="Column joining several input files.")] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding of CSV input, e.g. gb18030.")
    ] = None,
    definitions_option: Annotated[
        str | None,
        typer.Option("--definitions", help="Comma-separated definition ids (default: all)."),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="polars (default, streams), duckdb or spark.")
    ] = "polars",
    report: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML report here.")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Reference definition for screening accuracy, e.g. ewgsop2.")
    ] = None,
    by: Annotated[
        list[str] | None, typer.Option(help="Group prevalence by this column (repeatable).")
    ] = None,
    age_bands: Annotated[str, typer.Option(help="Lower bounds of age bands.")] = "60,70,80",
    weight: Annotated[str | None, typer.Option(help="Survey weight column.")] = None,
    strata: Annotated[str | None, typer.Option(help="Survey strata column.")] = None,
    psu: Annotated[str | None, typer.Option(help="Survey primary sampling unit column.")] = None,
    standard: Annotated[
        str | None, typer.Option(help="Age-standardise to us2000 or who2000.")
    ] = None,
    estimate_asm: Annotated[
        str | None, typer.Option(help="Use an ASM equation where ASM was not measured: wen2011.")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Fail when any row is rejected.")] = False,
) -> None:
    """Score a cohort under every definition; write results, rejects, summary tables, report."""
    from sarcokit.cohort.run import ENGINES, StrictError, run_cohort
    from sarcokit.cohort.summary import SurveyDesign

    if engine not in ENGINES:
        raise _fail(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    chosen = _definition_ids(definitions_option)
    if reference is not None:
        _definition_ids(reference, option="--reference")
    try:
        breaks = [int(b) for b in age_bands.split(",")]
    except ValueError:
        raise _fail(
            f"--age-bands {age_bands!r}: expected ascending whole numbers such as 60,70,80"
        ) from None
    if breaks != sorted(set(breaks)):
        raise _fail(f"--age-bands {age_bands!r}: expected ascending whole numbers such as 60,70,80")
    from sarcokit.fhir.bulk import bulk_to_parquet, is_bulk_export

    if is_bulk_export(inputs):
        # A FHIR Bulk Data export: read through reference/fhir.toml into subject records first.
        try:
            inputs = [bulk_to_parquet(inputs, output)]
        except (ValueError, OSError) as error:
            raise _fail(str(error)) from None
    errors = Console(stderr=True)
    try:
        with errors.status("sarcokit cohort") as status:
            run = run_cohort(
                inputs,
                output,
                key=key,
                mapping=mapping,
                encoding=encoding,
                definitions=chosen,
                engine=engine,
                estimate_asm="wen2011" if estimate_asm else None,
                strict=strict,
                by=by or ("sex", "age_band"),
                age_breaks=breaks,
                reference=reference,
                design=SurveyDesign(weight, strata, psu),
                standard=standard,
                report=report,
                step=lambda text: status.update(f"sarcokit cohort: {text}"),
            )
    except StrictError as error:
        raise _fail(str(error)) from None
    except (ValueError, OSError) as error:
        raise _fail(str(error)) from None
    console = Console()
    flow = run.flow
    console.print(
        f"rows read {flow.rows_read:,} = scored {flow.rows_scored:,}"
        f" + rejected {flow.rows_rejected:,}",
        highlight=False,
    )
    table = Table("definition", "evaluable", "sarcopenia", "prevalence (95% CI)")
    for row in run.summary.prevalence.iter_rows(named=True):
        estimate = row["estimate"]
        shown = (
            ""
            if estimate is None
            else f"{100 * estimate:.1f}% ({100 * row['ci_low']:.1f}–{100 * row['ci_high']:.1f})"
        )
        table.add_row(row["definition"], f"{row['n']:,}", f"{row['events']:,}", shown)
    console.print(table)
    console.print(
        f"results: {run.results}\nrejects: {run.rejects}\nsummary: {run.summary_folder}",
        highlight=False,
    )
    if run.report is not None:
        console.print(f"report:  {run.report}", highlight=False)


@app.command()
def conditions(lang: Annotated[str, typer.Option(help="en or zh.")] = "en") -> None:
    """List the chronic diseases recognised as causes of secondary sarcopenia."""
    from sarcokit.secondary.conditions import known_conditions

    if lang not in LANGUAGES:
        raise _fail(f"--lang {lang!r}: expected one of {', '.join(LANGUAGES)}")
    table = Table("id", "condition", "ICD-10", "names", "context and source")
    table.columns[0].no_wrap = True
    for condition in known_conditions().values():
        table.add_row(
            condition.id,
            condition.label[lang],
            ", ".join(condition.codes),
            ", ".join(condition.names),
            f"{condition.context[lang]} [{condition.source}]",
        )
    Console().print(table)
