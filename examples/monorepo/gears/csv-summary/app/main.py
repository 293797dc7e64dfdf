"""Summarise the numeric columns of a delimited text file.

For every numeric column (or only those named in the ``columns`` config
option) the gear reports count, missing, mean, min, max and the *sample*
standard deviation, rounded to ``precision`` decimal places. Results are
written to ``output/summary.json`` and ``output/summary.md``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.context import GearContext, GearError

log = logging.getLogger("csv-summary")

#: Cell values treated as "no value" rather than as non-numeric text.
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})

#: Defaults, mirroring Gear.toml (Flywheel fills them in, local runs may not).
DEFAULT_DELIMITER = ","
DEFAULT_PRECISION = 3
MAX_PRECISION = 10


@dataclass(frozen=True)
class Options:
    """Validated gear configuration."""

    delimiter: str
    columns: list[str] | None
    precision: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Options":
        delimiter = config.get("delimiter", DEFAULT_DELIMITER)
        # Flywheel's UI makes typing a real tab awkward; accept "\t" and "tab".
        if delimiter in ("\\t", "tab"):
            delimiter = "\t"
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            raise GearError(f"config 'delimiter' must be a single character, got {delimiter!r}")

        columns = config.get("columns")
        if columns is not None:
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                raise GearError("config 'columns' must be an array of column names")
            columns = columns or None  # an empty list means "all columns"

        precision = config.get("precision", DEFAULT_PRECISION)
        if isinstance(precision, bool) or not isinstance(precision, int):
            raise GearError(f"config 'precision' must be an integer, got {precision!r}")
        if not 0 <= precision <= MAX_PRECISION:
            raise GearError(f"config 'precision' must be between 0 and {MAX_PRECISION}, got {precision}")

        return cls(delimiter=delimiter, columns=columns, precision=precision)


def parse_number(text: str) -> int | float | None:
    """Parse one cell: a number, None for a missing value, ValueError otherwise."""
    text = text.strip()
    if text.lower() in MISSING_TOKENS:
        return None
    try:
        return int(text)
    except ValueError:
        value = float(text)  # raises ValueError for non-numeric text
    if not math.isfinite(value):
        raise ValueError(f"non-finite value {text!r}")
    return value


def read_table(path: Path, delimiter: str) -> tuple[list[str], list[dict[str, str]]]:
    """Read the file into a header and a list of row dicts."""
    # utf-8-sig strips the byte-order mark that spreadsheet exports often add.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        if not reader.fieldnames:
            raise GearError(f"{path.name} is empty or has no header row")
        header = [name.strip() for name in reader.fieldnames]
        if len(set(header)) != len(header):
            raise GearError(f"{path.name} has duplicate column names: {header}")
        reader.fieldnames = header
        rows = list(reader)
    return header, rows


def numeric_values(rows: list[dict[str, str]], column: str) -> tuple[list[int | float], int] | None:
    """Return (values, missing) for ``column``, or None if it is not numeric."""
    values: list[int | float] = []
    missing = 0
    for row in rows:
        cell = row.get(column)
        try:
            value = parse_number(cell or "")
        except ValueError:
            return None
        if value is None:
            missing += 1
        else:
            values.append(value)
    return values, missing


def describe(values: list[int | float], missing: int, precision: int) -> dict[str, Any]:
    """Descriptive statistics for one column; None where undefined."""
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, precision)

    return {
        "count": len(values),
        "missing": missing,
        "mean": rounded(statistics.fmean(values)) if values else None,
        "min": rounded(min(values)) if values else None,
        "max": rounded(max(values)) if values else None,
        # Sample standard deviation needs at least two values.
        "stddev": rounded(statistics.stdev(values)) if len(values) >= 2 else None,
    }


def summarise(path: Path, options: Options) -> dict[str, Any]:
    """Build the summary document for the file at ``path``."""
    header, rows = read_table(path, options.delimiter)

    requested = options.columns or header
    unknown = [name for name in requested if name not in header]
    if unknown:
        raise GearError(f"column(s) not found in {path.name}: {', '.join(unknown)} (header: {', '.join(header)})")

    columns: dict[str, Any] = {}
    skipped: list[str] = []
    for name in requested:
        parsed = numeric_values(rows, name)
        if parsed is None:
            if options.columns:
                raise GearError(f"column {name!r} was requested but is not numeric")
            skipped.append(name)
            continue
        columns[name] = describe(*parsed, options.precision)

    return {
        "file": path.name,
        "rows": len(rows),
        "delimiter": options.delimiter,
        "precision": options.precision,
        "columns": columns,
        "skipped": skipped,
    }


def to_markdown(summary: dict[str, Any]) -> str:
    """Render the summary as a Markdown table."""
    def cell(value: Any) -> str:
        return "" if value is None else str(value)

    stats = ["count", "missing", "mean", "min", "max", "stddev"]
    lines = [
        f"# Summary of `{summary['file']}`",
        "",
        f"{summary['rows']} data rows; statistics rounded to {summary['precision']} decimal places "
        "(stddev is the sample standard deviation).",
        "",
        "| column | " + " | ".join(stats) + " |",
        "|---|" + "---:|" * len(stats),
    ]
    for name, values in summary["columns"].items():
        lines.append(f"| {name} | " + " | ".join(cell(values[s]) for s in stats) + " |")
    if summary["skipped"]:
        lines += ["", "Non-numeric columns (skipped): " + ", ".join(f"`{n}`" for n in summary["skipped"])]
    return "\n".join(lines) + "\n"


def run(context: GearContext) -> int:
    """Gear entry point: returns the process exit code."""
    options = Options.from_config(context.config)
    table = context.input_path("table")
    if table is None:
        raise GearError("required input 'table' is missing from config.json")
    log.info("summarising %s (delimiter %r, precision %d)", table, options.delimiter, options.precision)

    summary = summarise(table, options)
    if not summary["columns"]:
        log.warning("no numeric columns found in %s", table.name)

    context.output_dir.mkdir(parents=True, exist_ok=True)
    json_path = context.output_dir / "summary.json"
    json_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    md_path = context.output_dir / "summary.md"
    md_path.write_text(to_markdown(summary), encoding="utf-8")
    log.info("wrote %s and %s (%d numeric columns)", json_path, md_path, len(summary["columns"]))
    return 0
