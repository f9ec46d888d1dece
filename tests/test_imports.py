"""What `import sarcokit` and the command line load: heavy libraries wait until they are used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import sarcokit

# Libraries that cost start-up time or belong to an optional extra.
HEAVY = ("polars", "pyspark", "duckdb", "pydicom", "nibabel", "fastapi", "sqlalchemy", "pyarrow")
# Printed last by the probe: every loaded top-level package.
DUMP_MODULES = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"


def loaded_after(code: str) -> set[str]:
    """The HEAVY top-level packages in sys.modules after running code in a fresh interpreter."""
    probe = f"{code}\n{DUMP_MODULES}"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.splitlines()[-1])) & set(HEAVY)


def test_import_sarcokit_loads_no_heavy_library() -> None:
    assert loaded_after("import sarcokit") == set()


def test_command_line_help_loads_no_heavy_library() -> None:
    # Building the command tree and printing its help needs neither the engine nor the clinic.
    code = (
        "from sarcokit.cli import app\n"
        "try:\n    app(['assess', '--help'])\nexcept SystemExit as done:\n"
        "    assert done.code == 0, done.code"
    )
    assert loaded_after(code) == set()


def test_the_probe_sees_a_heavy_import() -> None:
    # The check above would pass vacuously if the probe could not see Polars being loaded.
    assert "polars" in loaded_after("from sarcokit import assess")


@pytest.mark.parametrize("name", sarcokit.__all__)
def test_every_public_name_resolves_to_its_module_object(name: str) -> None:
    module = sarcokit._EXPORTS[name]
    assert getattr(sarcokit, name) is getattr(sys.modules[module], name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'asses'"):
        _ = sarcokit.asses  # type: ignore[attr-defined]


def test_every_export_is_public_and_listed() -> None:
    assert set(sarcokit._EXPORTS) == set(sarcokit.__all__)
    assert set(sarcokit.__all__) <= set(dir(sarcokit))
