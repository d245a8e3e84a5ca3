"""docs/data-map.md names every table an environment has, with what of a person it may hold."""

from __future__ import annotations

from pathlib import Path

from local import naming
from shopstream import catalog

DATA_MAP = Path(__file__).resolve().parents[2] / "docs" / "data-map.md"


def _documented_tables() -> list[str]:
    """The first column of the data map's "Every table" section."""
    section = DATA_MAP.read_text().split("\n## Every table\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")]
    return rows[1:]  # after the header


def _row_for(table: str) -> str:
    name = table.removeprefix(f"{naming.PREFIX}-")
    if name == "customer-keys":
        return "customer key store `<prefix>-customer-keys`"
    if name.endswith("-idempotency"):
        return "each service's idempotency table `<prefix>-<service>-idempotency` (all nine)"
    return f"{name} table"


def test_the_data_map_names_every_table_of_an_environment(aws):
    tables = aws["dynamodb"].list_tables()["TableNames"]  # every table provisioning makes, as the stacks do
    assert len(tables) == 2 * len(catalog.SERVICES) + 1 and len(catalog.SERVICES) == 9  # "all nine"
    documented = _documented_tables()
    assert {_row_for(table) for table in tables} == set(documented), documented
