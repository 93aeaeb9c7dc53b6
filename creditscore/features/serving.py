"""Features for clients given as raw Kaggle fields: the serving side of the one feature code path.

The API passes one or more raw application rows (the columns of application_test.csv) and, when it
has them, the clients' raw history rows. They are typed with the declared schema, cleaned by
`prepare.clean_table` and fed to `build_features`, exactly like the tables of the pipeline.
"""
from __future__ import annotations

import polars as pl

from creditscore.features.application import application_features
from creditscore.features.build import (HISTORY, add_target_encoding, build_features, finalize, numeric_columns,
                                        sort_history)
from creditscore.prepare import clean_table
from creditscore.rawdata import DataError, column_type
from creditscore.schema import TABLES


def typed_frame(table: str, rows: list[dict]) -> pl.DataFrame:
    """Raw rows of a Kaggle table as a typed, cleaned frame; absent fields are missing."""
    spec = TABLES[table]
    unknown = sorted({k for row in rows for k in row} - set(spec.names))
    if unknown:
        raise DataError(f"{table}: unknown field {unknown[0]}")
    schema = {c: column_type(c, kind) for c, kind in spec.columns}
    frame = pl.DataFrame(rows, schema=schema, strict=False) if rows else pl.DataFrame(schema=schema)
    return clean_table(frame, spec)[0]


def client_features(applications: list[dict], history: dict[str, list[dict]] | None, spec: dict) -> pl.DataFrame:
    """Feature rows (SK_ID_CURR + the spec's features, float32) for raw application rows and history."""
    history = history or {}
    unknown = sorted(set(history) - set(HISTORY))
    if unknown:
        raise DataError(f"history: unknown table {unknown[0]}")
    app = typed_frame("application_test", [{k: v for k, v in row.items() if k != "TARGET"} for row in applications])
    if not any(history.values()):  # no history rows: every history aggregate is missing; skip ~60 ms of queries
        features = application_features(app.lazy(), spec["vocab"], numeric_columns("application_train"),
                                        spec["poly"]).collect()
        return finalize(add_target_encoding(features, app, spec), spec["features"], absent_are_missing=True)
    tables = sort_history({name: typed_frame(name, history.get(name, [])).lazy() for name in HISTORY})
    features = build_features(app.lazy(), tables, spec)
    return finalize(add_target_encoding(features, app, spec), spec["features"])
