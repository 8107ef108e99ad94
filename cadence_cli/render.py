"""How results reach the terminal: rich tables for people, one JSON document for scripts (`--json`)."""

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def console() -> Console:
    # Built per call, on the current sys.stdout, so in-process callers (tests) capture what it prints.
    # Piped output keeps whole ids on one line rather than wrapping at 80 columns.
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)


def emit_json(document: Any) -> None:
    print(json.dumps(document, indent=2, sort_keys=True, default=str))


def problem(message: str) -> None:
    """One line on stderr per problem."""
    print(message, file=sys.stderr)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(_cell(value) for value in row))
    console().print(grid)


def counts(title: str, values: Mapping[str, int], total: int | None = None) -> None:
    rows: list[Sequence[Any]] = [(name, count) for name, count in values.items()]
    if total is not None:
        rows.append(("total", total))
    table(title, ("", "count"), rows)


def line(text: str) -> None:
    console().print(text, highlight=False, markup=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={count}" for key, count in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)
