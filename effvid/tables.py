"""Render rows of text as an aligned terminal table, GitHub Markdown or CSV."""

import csv
import io
from collections.abc import Mapping, Sequence

from effvid.errors import InputError

TABLE_STYLES = ("table", "markdown", "csv")


def render_table(rows: Sequence[Mapping[str, str]], style: str = "table") -> str:
    """rows: dicts with the same keys (the column titles, in order) -> the table as text."""
    if style not in TABLE_STYLES:
        raise InputError(f"style must be one of {', '.join(TABLE_STYLES)}, got {style!r}")
    if not rows:
        return ""
    headers = list(rows[0])
    cells = [[str(row[header]) for header in headers] for row in rows]
    if style == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(cells)
        return buffer.getvalue()
    widths = [max(len(line[i]) for line in [headers, *cells]) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        padded = [value.ljust(width) for value, width in zip(values, widths, strict=True)]
        return (
            ("| " + " | ".join(padded) + " |")
            if style == "markdown"
            else "  ".join(padded).rstrip()
        )

    rule = ["-" * width for width in widths]
    separator = ("|-" + "-|-".join(rule) + "-|") if style == "markdown" else "  ".join(rule)
    return "\n".join([line(headers), separator, *map(line, cells)]) + "\n"
