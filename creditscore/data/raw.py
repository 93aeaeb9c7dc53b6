"""Read the Kaggle CSV files against the declared schema, with errors that name file and column."""
from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl

from creditscore.data.schema import Table
from creditscore.errors import DataError

POLARS_TYPE = {"int": pl.Float64, "float": pl.Float64, "str": pl.String}  # ints are checked, then narrowed
KEY_COLUMNS = ("SK_ID_CURR", "SK_ID_BUREAU", "SK_ID_PREV")


class MissingTableWarning(UserWarning):
    """An optional Kaggle file is absent and is treated as an empty table."""


def empty_table(table: Table) -> pl.DataFrame:
    """A zero-row frame with the table's prepared types."""
    return pl.DataFrame(schema={c: column_type(c, t) for c, t in table.columns})


def column_type(column: str, kind: str) -> pl.DataType:
    """The prepared (Parquet) type of a column of the declared kind."""
    if kind == "str":
        return pl.String
    if kind == "float":
        return pl.Float64
    return pl.Int64 if column in KEY_COLUMNS else pl.Int32


def read_header(path: Path) -> list[str]:
    """Column names of a CSV file, without a UTF-8 byte-order mark."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        line = handle.readline()
    if not line.strip():
        raise DataError(f"{path.name}: file is empty (no header line)")
    return [name.strip().strip('"') for name in line.rstrip("\r\n").split(",")]


def _diagnose(path: Path, table: Table, columns: list[str]) -> DataError:
    """Find the first column holding a value that is not a number, for a readable error."""
    raw = pl.read_csv(path, columns=columns, infer_schema=False)
    for c in columns:
        if table.dtype(c) == "str":
            continue
        bad = raw.filter(pl.col(c).is_not_null() & pl.col(c).cast(pl.Float64, strict=False).is_null())
        if bad.height:
            row = raw.with_row_index("_row").filter(
                pl.col(c).is_not_null() & pl.col(c).cast(pl.Float64, strict=False).is_null())["_row"][0]
            return DataError(f"{path.name}: column {c} has a non-numeric value {bad[c][0]!r} "
                             f"(line {row + 2}; {bad.height} such values)")
    return DataError(f"{path.name}: could not be parsed as CSV")


def _narrow_integers(frame: pl.DataFrame, table: Table, name: str) -> pl.DataFrame:
    """Cast integer columns read as floats, refusing fractional values."""
    casts = []
    for c, kind in table.columns:
        if kind != "int":
            continue
        fractional = frame.filter(pl.col(c).is_not_null() & (pl.col(c) != pl.col(c).round(0)))
        if fractional.height:
            raise DataError(f"{name}: column {c} must hold whole numbers, found {fractional[c][0]!r}")
        casts.append(pl.col(c).cast(column_type(c, kind)))
    return frame.with_columns(casts)


def read_table(raw_dir: Path, table: Table) -> pl.DataFrame:
    """Read one Kaggle file with the declared column types; absent optional files are empty."""
    path = raw_dir / table.file
    if not path.exists():
        if table.required:
            raise DataError(f"{table.file}: required file not found in {raw_dir}")
        warnings.warn(f"{table.file}: not found in {raw_dir}; treated as an empty table", MissingTableWarning,
                      stacklevel=2)
        return empty_table(table)
    header = read_header(path)
    missing = [c for c in table.names if c not in header]
    if missing:
        raise DataError(f"{table.file}: column {missing[0]} missing" +
                        (f" (and {len(missing) - 1} more: {', '.join(missing[1:4])})" if len(missing) > 1 else ""))
    try:
        frame = pl.read_csv(path, columns=table.names, schema_overrides={c: POLARS_TYPE[t] for c, t in table.columns},
                            infer_schema=False, null_values=[""])
    except pl.exceptions.ComputeError:
        raise _diagnose(path, table, table.names) from None
    if table.required and frame.height == 0:
        raise DataError(f"{table.file}: no data rows (header only)")
    return _narrow_integers(frame.select(table.names), table, table.file)
