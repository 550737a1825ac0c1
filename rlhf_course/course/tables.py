"""Tables a notebook shows: HTML in JupyterLab and in the book (aligned columns, numbers to a few digits), plain
text in a terminal. A cell that ends on a table shows it; a dict at the end of a cell would be a wall of text."""

from __future__ import annotations

import html
import math
from numbers import Number


def format_value(value, digits: int = 3) -> str:
    """A number to `digits` significant digits (whole numbers as they are), a bool as ✓/✗, anything else as text."""
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Number):
        value = float(value)
        if not math.isfinite(value) or value == 0:
            return str(value)
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"
    if value is None:
        return "—"
    return str(value)


class Table:
    """`rows` (a list of dicts, or of lists with `columns`) as a table; `caption` says what it shows."""

    def __init__(self, rows: list, columns: list[str] | None = None, caption: str = "", digits: int = 3):
        if rows and isinstance(rows[0], dict):
            columns = columns or list(dict.fromkeys(key for row in rows for key in row))
            rows = [[row.get(column) for column in columns] for row in rows]
        self.columns, self.rows = list(columns or []), [list(row) for row in rows]
        self.caption, self.digits = caption, digits

    def cells(self) -> list[list[str]]:
        return [[format_value(value, self.digits) for value in row] for row in self.rows]

    def numeric(self) -> list[bool]:
        """Which columns hold only numbers: those are aligned right."""
        return [all(isinstance(row[i], Number) or row[i] is None for row in self.rows)
                for i in range(len(self.columns))]

    def _repr_html_(self) -> str:
        align = ["right" if numeric else "left" for numeric in self.numeric()]
        cell = "style='text-align:{};padding:0.15em 0.8em'"
        head = "".join(f"<th {cell.format(a)}>{html.escape(c)}</th>" for c, a in zip(self.columns, align))
        body = "".join("<tr>" + "".join(f"<td {cell.format(a)}>{html.escape(text)}</td>"
                                        for text, a in zip(row, align)) + "</tr>" for row in self.cells())
        caption = f"<caption style='caption-side:top;text-align:left'>{html.escape(self.caption)}</caption>" \
            if self.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        cells = [self.columns] + self.cells()
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = ["  ".join(cell.rjust(width) if numeric else cell.ljust(width)
                           for cell, width, numeric in zip(row, widths, self.numeric())).rstrip() for row in cells]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return (self.caption + "\n" if self.caption else "") + "\n".join(lines)


def flatten(entry: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}: the numbers of a nested report entry, one per row (lists left out)."""
    flat = {}
    for key, value in entry.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, (Number, str, bool)) or value is None:
            flat[name] = value
    return flat
