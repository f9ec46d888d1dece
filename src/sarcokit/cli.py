"""The `sarcokit` command: assess subjects and read the criteria with their citations."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

# Only what builds the command tree is imported here: Polars, the engine, Rich and each
# command's own modules load inside the command, so `sarcokit --help` starts fast.
from sarcokit.definition_ids import DEFINITION_IDS
from sarcokit.fhir.cli import as_of_date, fhir_app
from sarcokit.i18n import LANGUAGES, Lang
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
    # Never hard-wrapped (a long path split a message across lines) and never read as markup
    # (a message may quote "[...]" from the input).
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(
        f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True
    )
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
    from sarcokit.definitions import local_definitions

    if not text:
        return None
    chosen = [d.strip() for d in text.split(",")]
    known_ids = (*DEFINITION_IDS, *local_definitions())
    for definition_id in chosen:
        if definition_id not in known_ids:
            known = ", ".join(known_ids)
            raise _fail(f"{option} {definition_id!r}: expected ids among {known}")
    return chosen


def _load_criteria(paths: list[Path] | None) -> list[str]:
    """Load local definition files (--criteria); every problem of every file, then exit 2."""
    from sarcokit.definitions import DefinitionError, load_definition

    loaded: list[str] = []
    problems: list[str] = []
    for path in paths or []:
        try:
            loaded.append(load_definition(path).id)
        except DefinitionError as error:
            problems.append(str(error).split("\n", 1)[1])
    if problems:
        raise _fail("--criteria: the definition file has problems:\n" + "\n".join(problems))
    return loaded


def _with_local(chosen: list[str] | None, local: list[str]) -> list[str] | None:
    """The chosen ids (all built-in ones by default) followed by the local definitions."""
    if not local:
        return chosen
    return list(dict.fromkeys([*(chosen or DEFINITION_IDS), *local]))


CRITERIA_HELP = (
    "A local definition file (TOML, the schema of src/sarcokit/criteria/*.toml), checked whole "
    "on load and assessed beside the chosen definitions; repeatable."
)


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
    criteria: Annotated[list[Path] | None, typer.Option("--criteria", help=CRITERIA_HELP)] = None,
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
    from sarcokit.api import assess_many
    from sarcokit.engine import ASM_EQUATIONS

    if fhir_input is not None:
        _assess_fhir(fhir_input, as_of, fhir_out, _definition_ids(definitions_option), lang, output)
        return
    if lang not in LANGUAGES:
        raise _fail(f"--lang {lang!r}: expected one of {', '.join(LANGUAGES)}")
    if estimate_asm is not None and estimate_asm not in ASM_EQUATIONS:
        raise _fail(f"--estimate-asm {estimate_asm!r}: expected one of {', '.join(ASM_EQUATIONS)}")
    local = _load_criteria(criteria)
    chosen = _with_local(_definition_ids(definitions_option), local)
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
        from rich.console import Console

        from sarcokit.render import render

        console = Console()
        for result in results:
            render(result, console, language)
    if sex_coding is None and any(p.field == "sex" for r in results for p in r.problems):
        typer.echo("Declare a sex coding with --sex-coding 1=male,2=female.", err=True)
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
    from rich.console import Console

    from sarcokit.fhir.render import render_sources
    from sarcokit.fhir.service import assess_bundle
    from sarcokit.fields import InputError
    from sarcokit.render import render

    if lang not in LANGUAGES:
        raise _fail(f"--lang {lang!r}: expected one of {', '.join(LANGUAGES)}")
    day = as_of_date(as_of)
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
    from rich.console import Console
    from rich.table import Table

    from sarcokit.definitions import definitions

    table = Table("id", "name", "categories", "doi")
    table.columns[0].no_wrap = True
    for d in definitions():
        table.add_row(d.id, d.name, ", ".join(d.category_ids), d.doi or "")
    Console().print(table)


@criteria_app.command("show")
def criteria_show(definition_id: str) -> None:
    """Show one definition: every cut-off, its inequality, component and source."""
    from rich.console import Console

    from sarcokit.definitions import definition
    from sarcokit.docs import cutoff_text

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


@criteria_app.command("check")
def criteria_check(
    paths: Annotated[list[Path], typer.Argument(help="Definition file(s).")],
) -> None:
    """Check local definition files: every problem, with its line; exit 2 if any."""
    from sarcokit.definitions import load_definition

    _load_criteria(paths)
    for path in paths:
        loaded = load_definition(path)
        typer.echo(f"{path}: ok ({loaded.id}, sha256 {loaded.sha256})")


@criteria_app.command("markdown")
def criteria_markdown(definition_id: Annotated[str | None, typer.Argument()] = None) -> None:
    """Print the reference documentation (all definitions, or one) as Markdown."""
    from sarcokit.definitions import definition
    from sarcokit.docs import definition_markdown, markdown

    if definition_id is None:
        typer.echo(markdown(), nl=False)
        return
    try:
        typer.echo("\n".join(definition_markdown(definition(definition_id))))
    except KeyError as error:
        raise _fail(str(error.args[0])) from None


def _follow_up(time: str | None, event: str | None, covariates: str | None) -> Any:
    """The --time/--event/--covariates of `sarcokit cohort`, both or neither of time and event."""
    if time is None and event is None:
        if covariates:
            raise _fail("--covariates needs --time and --event")
        return None
    if time is None or event is None:
        raise _fail("give --time and --event together (follow-up time and event columns)")
    from sarcokit.cohort.outcomes import FollowUp

    names = tuple(c.strip() for c in (covariates or "").split(",") if c.strip())
    return FollowUp(time, event, names)


def _age_breaks(text: str) -> list[int] | str:
    """--age-breaks: ascending whole numbers, or the name of a set (nchs_adult, nchs_11)."""
    if text and not text[0].isdigit():
        from sarcokit.cohort.summary import AGE_BREAK_SETS

        if text not in AGE_BREAK_SETS:
            known = ", ".join(AGE_BREAK_SETS)
            raise _fail(
                f"--age-breaks {text!r}: expected numbers such as 60,70,80 or one of {known}"
            )
        return text
    try:
        breaks = [int(b) for b in text.split(",")]
    except ValueError:
        breaks = []
    if not breaks or breaks != sorted(set(breaks)):
        raise _fail(f"--age-breaks {text!r}: expected ascending whole numbers such as 60,70,80")
    return breaks


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
        str,
        typer.Option(
            help="polars (default, streams), duckdb or spark (local mode; a cluster's master "
            "URL in SARCOKIT_SPARK_MASTER, a folder its nodes share in SARCOKIT_SPARK_SHARED)."
        ),
    ] = "polars",
    report: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML report here.")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Reference definition for screening accuracy, e.g. ewgsop2.")
    ] = None,
    lead: Annotated[
        str | None,
        typer.Option(
            help="Definition that splits Table 1 (default: ewgsop2, else the first evaluable)."
        ),
    ] = None,
    by: Annotated[
        list[str] | None, typer.Option(help="Group prevalence by this column (repeatable).")
    ] = None,
    age_breaks: Annotated[
        str,
        typer.Option(
            "--age-breaks",
            "--age-bands",
            help="Lower bounds of age bands (60,70,80) or a named set: nchs_adult, nchs_11.",
        ),
    ] = "60,70,80",
    weight: Annotated[str | None, typer.Option(help="Survey weight column.")] = None,
    strata: Annotated[str | None, typer.Option(help="Survey strata column.")] = None,
    psu: Annotated[str | None, typer.Option(help="Survey primary sampling unit column.")] = None,
    standard: Annotated[
        str | None,
        typer.Option(help="Age-standardise to us2000 or who2000 (cut to the cohort's ages)."),
    ] = None,
    estimate_asm: Annotated[
        str | None, typer.Option(help="Use an ASM equation where ASM was not measured: wen2011.")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Fail when any row is rejected or any input column is unused.")
    ] = False,
    na: Annotated[
        str | None,
        typer.Option(help="Missing-value codes, comma-separated (default: NA,N/A,.,empty)."),
    ] = None,
    decimal_comma: Annotated[
        bool, typer.Option(help="Numbers are written with a comma decimal (17,5).")
    ] = False,
    delimiter: Annotated[
        str | None, typer.Option(help="Field delimiter of CSV input (default by extension).")
    ] = None,
    header_rows: Annotated[
        int | None, typer.Option(help="Header rows (2 for a merged spreadsheet header).")
    ] = None,
    visit: Annotated[
        str | None, typer.Option(help="Column telling repeated measurements of one id apart.")
    ] = None,
    keep_input: Annotated[
        bool, typer.Option(help="Copy the input's columns into the results file.")
    ] = True,
    age_min: Annotated[
        float | None, typer.Option(help="Study scope: youngest age included (default 18).")
    ] = 18,
    age_max: Annotated[
        float | None, typer.Option(help="Study scope: oldest age included (default none).")
    ] = None,
    time: Annotated[
        str | None, typer.Option(help="Follow-up time column (survival by category, Cox HR).")
    ] = None,
    event: Annotated[
        str | None, typer.Option(help="Event column (1 = event, 0 = censored).")
    ] = None,
    covariates: Annotated[
        str | None, typer.Option(help="Comma-separated covariates of the Cox models, e.g. age,sex.")
    ] = None,
    criteria: Annotated[list[Path] | None, typer.Option("--criteria", help=CRITERIA_HELP)] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="FHIR Bulk Data export: assessment date YYYY-MM-DD (default today)."),
    ] = None,
) -> None:
    """Score a cohort under every definition; write results, rejects, summary tables, report."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    from sarcokit.cohort.run import ENGINES, Scope, StrictError, run_cohort, unused_note
    from sarcokit.cohort.summary import SurveyDesign

    if engine not in ENGINES:
        raise _fail(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    local = _load_criteria(criteria)
    chosen = _with_local(_definition_ids(definitions_option), local)
    if reference is not None:
        _definition_ids(reference, option="--reference")
    if lead is not None:
        _definition_ids(lead, option="--lead")
    breaks = _age_breaks(age_breaks)
    if delimiter is not None:
        delimiter = {"tab": "\t", "\\t": "\t"}.get(delimiter, delimiter)
        if len(delimiter) != 1:
            raise _fail(f"--delimiter {delimiter!r}: expected one character (or 'tab')")
    if header_rows is not None and header_rows < 1:
        raise _fail(f"--header-rows {header_rows}: expected 1 or more")
    na_values = None if na is None else [v.strip() for v in na.split(",")]
    from sarcokit.fhir.bulk import bulk_to_parquet, is_bulk_export, left_out_by_reason

    fhir_ignored = None
    bulk = is_bulk_export(inputs)
    if as_of is not None and not bulk:
        raise _fail(f"--as-of {as_of!r}: applies to a FHIR Bulk Data export only")
    day = as_of_date(as_of)
    if bulk:
        # A FHIR Bulk Data export: read through reference/fhir.toml into subject records first.
        try:
            with Console(stderr=True).status("sarcokit cohort: reading the FHIR export"):
                records, fhir_ignored = bulk_to_parquet(inputs, output, day)
        except (ValueError, OSError) as error:
            raise _fail(str(error)) from None
        inputs = [records]
    errors = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=errors, transient=True) as bar:
            task = bar.add_task("sarcokit cohort: reading", total=None, rate="")

            def step(text: str) -> None:
                bar.update(task, description=f"sarcokit cohort: {text}")

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)
                speed = bar.tasks[0].speed
                if speed:
                    bar.update(task, rate=f"{speed:,.0f} rows/s")

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
                lead=lead,
                design=SurveyDesign(weight, strata, psu),
                standard=standard,
                report=report,
                step=step,
                progress=progress,
                na_values=na_values,
                decimal="," if decimal_comma else None,
                delimiter=delimiter,
                header_rows=header_rows,
                visit=visit,
                keep_input=keep_input,
                scope=Scope(age_min, age_max),
                follow_up=_follow_up(time, event, covariates),
            )
    except StrictError as error:
        raise _fail(str(error)) from None
    except (ValueError, OSError) as error:
        raise _fail(str(error)) from None
    console = Console()
    flow = run.flow
    console.print(
        f"rows read {flow.rows_read:,} = scored {flow.rows_scored:,}"
        f" + rejected {flow.rows_rejected:,} + excluded {flow.rows_excluded:,}",
        highlight=False,
    )
    for reason, rows in flow.excluded_by:
        console.print(f"  excluded: {reason}: {rows:,}", highlight=False)
    if flow.unused_columns:
        console.print(
            f"columns not used: {', '.join(unused_note(flow.unused_columns))}", highlight=False
        )
    weighted = run.summary.survey is not None and run.summary.survey.height > 0
    title = "prevalence, survey-weighted (95% CI)" if weighted else "prevalence (95% CI)"
    table = Table("definition", "evaluable", "sarcopenia", title)
    rows_by = {r["definition"]: r for r in run.summary.prevalence.iter_rows(named=True)}
    shown_by = run.summary.overall_estimates()
    for definition_id, row in rows_by.items():
        table.add_row(
            definition_id, f"{row['n']:,}", f"{row['events']:,}", shown_by.get(definition_id, "")
        )
    console.print(table)
    console.print(
        f"results: {run.results}\nrejects: {run.rejects}\nexcluded: {run.excluded}"
        f"\nsummary: {run.summary_folder}",
        highlight=False,
    )
    if run.report is not None:
        console.print(f"report:  {run.report}", highlight=False)
    if fhir_ignored is not None:
        console.print(f"FHIR resources left out: {fhir_ignored}", highlight=False, soft_wrap=True)
        for reason, n in left_out_by_reason(fhir_ignored):
            console.print(f"  {reason}: {n:,}", highlight=False)


@app.command()
def conditions(lang: Annotated[str, typer.Option(help="en or zh.")] = "en") -> None:
    """List the chronic diseases recognised as causes of secondary sarcopenia."""
    from rich.console import Console
    from rich.table import Table

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


@app.command()
def meta(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="A table (CSV/Parquet: study, events, n or prevalence, ci_low, ci_high, "
            "moderators) or several `sarcokit cohort` .summary folders."
        ),
    ],
    measure: Annotated[str, typer.Option(help="logit, ft (double arcsine) or glmm.")] = "logit",
    method: Annotated[str, typer.Option(help="τ² estimator: REML, DL or PM.")] = "REML",
    hartung_knapp: Annotated[bool, typer.Option(help="Hartung–Knapp t-based intervals.")] = False,
    by: Annotated[
        str | None, typer.Option(help="Subgroup moderator column, e.g. definition.")
    ] = None,
    definition_option: Annotated[
        str | None, typer.Option("--definition", help="Keep only this definition's rows.")
    ] = None,
    output: Annotated[Path, typer.Option(help="Folder for meta.csv and the figures.")] = Path(
        "meta"
    ),
    figure_format: Annotated[str, typer.Option("--format", help="png or svg.")] = "png",
    regression: Annotated[
        str | None,
        typer.Option(help="Meta-regression on this continuous moderator, e.g. mean_age."),
    ] = None,
) -> None:
    """Pool prevalence across studies: random-effects meta-analysis with a forest plot."""
    import polars as pl
    from rich.console import Console
    from rich.table import Table

    from sarcokit.stats.meta import MEASURES, TAU_METHODS, read_studies, studies_from_cohorts
    from sarcokit.stats.meta_report import analyse, forest_plot, funnel_plot, result_table

    if measure not in MEASURES:
        raise _fail(f"--measure {measure!r}: expected one of {', '.join(MEASURES)}")
    if method not in TAU_METHODS:
        raise _fail(f"--method {method!r}: expected one of {', '.join(TAU_METHODS)}")
    if figure_format not in ("png", "svg"):
        raise _fail(f"--format {figure_format!r}: expected png or svg")
    try:
        if all(p.is_dir() for p in inputs):
            studies = studies_from_cohorts(inputs)
        elif len(inputs) == 1:
            studies = read_studies(inputs[0])
        else:
            raise ValueError("give one table, or several cohort .summary folders")
        if definition_option is not None:
            if "definition" not in studies.moderators.columns:
                raise ValueError("--definition: the studies have no definition column")
            keep = studies.moderators["definition"].cast(pl.String) == definition_option
            studies = studies.subset(keep.to_numpy())
        columns = studies.moderators.columns
        if (
            by is None
            and "definition" in columns
            and studies.moderators["definition"].n_unique() > 1
        ):
            by = "definition"  # prevalence under different definitions is never pooled
        analysis = analyse(
            studies,
            measure=measure,  # type: ignore[arg-type]
            method=method,  # type: ignore[arg-type]
            hartung_knapp=hartung_knapp,
            by=by,
        )
        slope = None
        if regression is not None:
            from sarcokit.stats.meta import meta_regression

            scale: Literal["logit", "ft"] = "ft" if measure == "ft" else "logit"
            slope = meta_regression(
                studies,
                regression,
                measure=scale,
                method=method,  # type: ignore[arg-type]
                hartung_knapp=hartung_knapp,
            )
    except (ValueError, OSError, ArithmeticError) as error:
        raise _fail(str(error)) from None
    output.mkdir(parents=True, exist_ok=True)
    if slope is not None:
        pl.DataFrame([slope.__dict__]).write_csv(output / "meta_regression.csv")
    table = result_table(analysis)
    table.write_csv(output / "meta.csv")
    forest = output / f"forest.{figure_format}"
    funnel = output / f"funnel.{figure_format}"
    forest_plot(analysis).savefig(forest, dpi=130, bbox_inches="tight")
    funnel_plot(analysis).savefig(funnel, dpi=130, bbox_inches="tight")
    console = Console(width=max(Console().width, 110))
    summary = Table("pool", "k", "pooled % (95% CI)", "95% PI", "I² % (95% CI)", "τ²", "Q (p)")
    for row in table.filter(pl.col("row") == "pooled").iter_rows(named=True):
        ci = f"{100 * row['proportion']:.1f} ({100 * row['ci_low']:.1f}–{100 * row['ci_high']:.1f})"
        pi = f"{100 * row['pi_low']:.1f}–{100 * row['pi_high']:.1f}"
        i2 = f"{row['i2_percent']:.0f}"
        if row["i2_ci_low"] is not None:
            i2 += f" ({row['i2_ci_low']:.0f}–{row['i2_ci_high']:.0f})"
        q = "" if row["q"] is None else f"{row['q']:.1f} ({row['q_p']:.3g})"
        summary.add_row(
            row["subgroup"] or "all studies", str(row["k"]), ci, pi, i2, f"{row['tau2']:.4f}", q
        )
    console.print(summary)
    method_text = analysis.method + (" + Hartung–Knapp" if analysis.hartung_knapp else "")
    console.print(f"measure {analysis.measure}, τ² by {method_text}", highlight=False)
    if analysis.q_between is not None:
        console.print(
            f"between {analysis.by} subgroups: Q = {analysis.q_between:.2f}, "
            f"df = {analysis.df_between}, p = {analysis.p_between:.3g}",
            highlight=False,
        )
    if analysis.egger is not None:
        console.print(
            f"Egger's test: t = {analysis.egger.t:.2f}, p = {analysis.egger.p:.3g}",
            highlight=False,
        )
    if slope is not None:
        console.print(
            f"meta-regression on {slope.moderator} ({scale} scale): slope {slope.slope:.4f}"
            f" (SE {slope.slope_se:.4f}), p = {slope.qm_p:.3g}; "
            f"residual τ² = {slope.tau2:.4f}",
            highlight=False,
        )
    if analysis.note:
        console.print(f"note: {analysis.note}", highlight=False)
    console.print(
        f"table: {output / 'meta.csv'}\nforest: {forest}\nfunnel: {funnel}", highlight=False
    )


@app.command("sql")
def sql_command(
    dialect: Annotated[str, typer.Option(help="duckdb, postgres or spark.")] = "duckdb",
    definitions: Annotated[
        str | None, typer.Option(help="Comma-separated definition ids (default: all).")
    ] = None,
    criteria: Annotated[list[Path] | None, typer.Option("--criteria", help=CRITERIA_HELP)] = None,
    table: Annotated[str, typer.Option(help="The table of subject records to read.")] = "subjects",
    view: Annotated[
        str | None, typer.Option(help="Emit CREATE VIEW <name> AS … instead of a SELECT.")
    ] = None,
    fields: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated subject-record columns the table has (default: every field "
            "of fields.toml); the others are read as unknown. Include id to carry it through."
        ),
    ] = None,
    estimate_asm: Annotated[
        str | None, typer.Option(help="wen2011: estimate ASM where none was measured.")
    ] = None,
) -> None:
    """Print SQL that computes the result columns inside a database (no Python at query time)."""
    from sarcokit.fields import input_columns
    from sarcokit.sql import DIALECTS, SqlError, to_sql

    if dialect not in DIALECTS:
        raise _fail(f"--dialect {dialect!r}: expected one of {', '.join(DIALECTS)}")
    local = _load_criteria(criteria)
    chosen = _with_local(_definition_ids(definitions), local)
    present = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    unknown = [f for f in present or [] if f not in input_columns()]
    if unknown:
        raise _fail(
            f"--fields {', '.join(unknown)}: not subject-record fields; expected names from "
            "fields.toml such as sex, age, grip_kg, height_m"
        )
    try:
        text = to_sql(
            chosen,
            dialect,
            table=table,
            view=view,
            present=present,
            estimate_asm=estimate_asm,
        )
    except SqlError as error:
        raise _fail(str(error)) from None
    typer.echo(text + ";")
