"""docs/install.md's table of condition reasons names exactly the reasons operator/tmk_operator/conditions.py
writes: a new reason needs its row, and the table names no reason the operator never writes."""

import re
from pathlib import Path

from tmk_operator import conditions

INSTALL_DOC = Path(__file__).resolve().parents[2] / "docs" / "install.md"


def table_reasons() -> list[str]:
    section = INSTALL_DOC.read_text().split("### Condition reasons", 1)[1]
    return re.findall(r"^\| `([A-Za-z]+)` \|", section, re.MULTILINE)


def test_every_reason_has_a_row_and_every_row_is_a_reason():
    rows = table_reasons()
    assert len(rows) == len(set(rows)), "a reason has two rows"
    assert set(rows) == set(conditions.REASONS)


def test_every_reason_constant_is_in_the_reasons_list():
    """REASONS is what the table is checked against: a constant written as a reason but left out of it would slip
    past. Reasons are the constants declared between `# Reasons` and REASONS."""
    source = Path(conditions.__file__).read_text()
    block = source.split("# Reasons", 1)[1].split("REASONS = ", 1)[0]
    declared = set(re.findall(r'^[A-Z_]+ = "([A-Za-z]+)"', block, re.MULTILINE))
    assert declared == set(conditions.REASONS)
