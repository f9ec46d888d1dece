"""sarcokit: screen, diagnose and count sarcopenia under every consensus definition."""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# The public names and the module each comes from. They load on first use (PEP 562), so that
# `import sarcokit` and the command line do not pay for Polars before they need it.
_EXPORTS = {
    "DEFINITION_IDS": "sarcokit.definitions",
    "Definition": "sarcokit.definitions",
    "DefinitionError": "sarcokit.definitions",
    "DefinitionResult": "sarcokit.result",
    "InputError": "sarcokit.fields",
    "Problem": "sarcokit.fields",
    "Result": "sarcokit.result",
    "assess": "sarcokit.api",
    "assess_many": "sarcokit.api",
    "definition": "sarcokit.definitions",
    "definitions": "sarcokit.definitions",
    "evaluate": "sarcokit.engine",
    "load_definition": "sarcokit.definitions",
}

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


if not TYPE_CHECKING:
    # Hidden from mypy, which sees the imports above: a misspelt name stays a type error.

    def __getattr__(name: str) -> Any:
        """A public name, imported from its module the first time it is asked for."""
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module 'sarcokit' has no attribute {name!r}")
        value = getattr(import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        """The module's names, the not yet loaded public ones included."""
        return sorted({*globals(), *__all__})

    class _Package(ModuleType):
        """The package, which keeps public names from being hidden by submodules."""

        def __setattr__(self, name: str, value: object) -> None:
            # Importing a submodule binds it on the package: `sarcokit.definitions`, the module,
            # would hide `definitions()`, the public function, once anything imported it.
            if name in _EXPORTS and isinstance(value, ModuleType):
                return
            super().__setattr__(name, value)

    sys.modules[__name__].__class__ = _Package
