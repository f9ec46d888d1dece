"""sarcokit: screen, diagnose and count sarcopenia under every consensus definition."""

from sarcokit.api import assess, assess_many
from sarcokit.definitions import (
    DEFINITION_IDS,
    Definition,
    DefinitionError,
    definition,
    definitions,
    load_definition,
)
from sarcokit.engine import evaluate
from sarcokit.fields import InputError, Problem
from sarcokit.result import DefinitionResult, Result

__all__ = [
    "DEFINITION_IDS",
    "Definition",
    "DefinitionError",
    "DefinitionResult",
    "InputError",
    "Problem",
    "Result",
    "assess",
    "assess_many",
    "definition",
    "definitions",
    "evaluate",
    "load_definition",
]
__version__ = "0.1.0"
