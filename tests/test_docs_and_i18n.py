"""Generated documentation and message catalogues stay complete and current."""

from __future__ import annotations

from pathlib import Path

from sarcokit.definitions import definitions
from sarcokit.docs import markdown
from sarcokit.i18n import LANGUAGES, catalogue

ROOT = Path(__file__).resolve().parents[1]


def test_docs_definitions_md_is_current() -> None:
    committed = (ROOT / "docs" / "definitions.md").read_text("utf-8")
    assert committed == markdown(), "docs/definitions.md is stale: run `make docs`"


def test_catalogues_have_the_same_keys() -> None:
    english, chinese = (set(catalogue(lang)) for lang in LANGUAGES)
    assert english == chinese


def test_every_category_component_input_and_step_has_a_message() -> None:
    for lang in LANGUAGES:
        messages = catalogue(lang)
        for definition in definitions():
            for category in definition.category_ids:
                assert f"category.{category}" in messages
            for component in definition.components:
                assert f"component.{component.id}" in messages
                assert f"next.{component.next_step}" in messages
                for state in component.states:
                    assert f"state.{state}" in messages
            for category_rule in definition.categories:
                for step in category_rule.next_steps:
                    assert f"next.{step}" in messages
            for test in definition.tests:
                assert f"input.{test.threshold.input}" in messages
