"""Session hooks shared by every test module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rreference import agreement_table


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With SARCOKIT_R_AGREEMENT=FILE, write the comparisons with R made in this run to FILE."""
    target = os.environ.get("SARCOKIT_R_AGREEMENT")
    if target:
        Path(target).write_text(agreement_table(), encoding="utf-8")
