"""Clean, validate, link and split the Kaggle tables (pure functions; I/O lives in stages/prepare.py)."""
from __future__ import annotations

import polars as pl

from creditscore.data.schema import MISSING_TOKENS, SENTINEL_DAYS, Table
from creditscore.errors import DataError

SENTINEL_SUFFIX = "_ANOM"  # flag column added next to a DAYS_* column that held 365243


def cleaning_expressions(table: Table) -> tuple[dict[str, pl.Expr], dict[str, pl.Expr], list[pl.Expr]]:
    """The sentinel tests, missing-token tests and flag columns of a table (expressions, no data)."""
    sentinel = {c: (pl.col(c) == SENTINEL_DAYS).fill_null(False) for c, kind in table.columns
                if kind == "int" and c.startswith("DAYS_")}
    token = {c: pl.col(c).is_in(MISSING_TOKENS) for c, kind in table.columns if kind == "str"}
    flags = [sentinel[c].cast(pl.Int8).alias(c + SENTINEL_SUFFIX) for c in sentinel if c in table.sentinel_columns]
    return sentinel, token, flags


def _to_missing(column: str, test: pl.Expr) -> pl.Expr:
    return pl.when(test).then(None).otherwise(pl.col(column)).alias(column)


def clean_table(frame: pl.DataFrame, table: Table) -> tuple[pl.DataFrame, dict]:
    """Turn the 365243 sentinel into missing (plus a flag for the declared columns) and XNA/Unknown into missing.

    The flag columns are always added for the table's declared sentinel columns, so one client's
    rows get the same columns as the full table. The report counts the values changed per column.
    """
    report: dict[str, dict[str, int]] = {"sentinel": {}, "missing_token": {}}
    sentinel, token, flags = cleaning_expressions(table)
    counts = [e.sum().alias(c) for c, e in (*sentinel.items(), *token.items())]
    hits = frame.select(counts).row(0, named=True) if counts else {}  # one pass over the table for every check
    exprs = list(flags)
    for kind, tests in (("sentinel", sentinel), ("missing_token", token)):
        for c, test in tests.items():
            if hits[c]:
                report[kind][c] = int(hits[c])
                exprs.append(_to_missing(c, test))
    return (frame.with_columns(exprs) if exprs else frame), report


def cleaner(table: Table) -> list[pl.Expr]:
    """clean_table's changes as one list of expressions, for a few rows at a time (the API).

    Every test column is rewritten, which leaves columns without a sentinel or token unchanged, so the
    result equals clean_table's without counting first; build it once per table and reuse it.
    """
    sentinel, token, flags = cleaning_expressions(table)
    return flags + [_to_missing(c, test) for tests in (sentinel, token) for c, test in tests.items()]


def sentinel_flags(table: Table) -> list[str]:
    """The flag columns clean_table adds to a table."""
    return [c + SENTINEL_SUFFIX for c in table.sentinel_columns]


def check_unique(frame: pl.DataFrame, column: str, name: str) -> None:
    """Stop on a null or repeated key."""
    nulls = frame[column].null_count()
    if nulls:
        raise DataError(f"{name}: column {column} has {nulls} missing values; it is a key")
    dup = frame[column].filter(frame[column].is_duplicated())
    if dup.len():
        raise DataError(f"{name}: column {column} has duplicate keys ({dup.n_unique()} values repeated, "
                        f"e.g. {dup[0]})")


def check_target(frame: pl.DataFrame, name: str) -> None:
    """TARGET must be 0 or 1 on every labelled row."""
    target = frame["TARGET"]
    if target.null_count():
        raise DataError(f"{name}: TARGET has {target.null_count()} missing values")
    bad = sorted(set(target.unique().to_list()) - {0, 1})
    if bad:
        raise DataError(f"{name}: TARGET has values {set(bad)}; expected 0 or 1")
    if target.n_unique() < 2:
        raise DataError(f"{name}: TARGET has a single class {set(target.unique().to_list())}; need both 0 and 1")


def check_disjoint(train: pl.DataFrame, test: pl.DataFrame) -> None:
    """A client cannot be both labelled and unlabelled."""
    both = train.join(test, on="SK_ID_CURR", how="semi")
    if both.height:
        raise DataError(f"application_test.csv: column SK_ID_CURR repeats {both.height} clients of "
                        f"application_train.csv (e.g. {both['SK_ID_CURR'][0]})")


def drop_orphans(frame: pl.DataFrame, column: str, parent_keys: pl.Series) -> tuple[pl.DataFrame, int]:
    """Keep rows whose link column points at a known parent; return them and the orphan count."""
    kept = frame.filter(pl.col(column).is_in(parent_keys.implode()) & pl.col(column).is_not_null())
    return kept, frame.height - kept.height


def split_holdout(train: pl.DataFrame, holdout_size: float, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Stratified, seeded hold-out of labelled clients that no later stage trains on."""
    if not 0 < holdout_size < 1:
        raise DataError(f"params.yaml: data.holdout_size must be between 0 and 1, got {holdout_size}")
    from sklearn.model_selection import train_test_split  # here: the serving and engineer imports skip sklearn

    ordered = train.sort("SK_ID_CURR")
    idx_fit, idx_hold = train_test_split(range(ordered.height), test_size=holdout_size, random_state=seed,
                                         stratify=ordered["TARGET"].to_numpy())
    return ordered[sorted(idx_fit)], ordered[sorted(idx_hold)]
