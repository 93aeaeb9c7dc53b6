"""Features for clients given as raw Kaggle fields: the serving side of the one feature code path.

The API passes one or more raw application rows (the columns of application_test.csv) and, when it
has them, the clients' raw history rows. They are typed with the declared schema, cleaned by
`prepare.clean_table` and fed to `build_features`, exactly like the tables of the pipeline.
"""
from __future__ import annotations

import polars as pl

from creditscore.features.application import application_features
from creditscore.features.encoding import target_encoded_name
from creditscore.features.build import (HISTORY, add_target_encoding, build_features, feature_groups, finalize,
                                        numeric_columns, sort_history)
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


def serving_plan(spec: dict, names: list[str]) -> dict:
    """What one scoring request must compute for `names`: computed once when the API starts.

    The feature groups holding none of `names` are skipped, and only `names` are selected from the
    application features, so Polars prunes every expression the model does not use. The values are
    those of the full computation (the parity tests check it).
    """
    groups = feature_groups(spec)
    encoded = {target_encoded_name(c) for c in spec.get("target_encoding") or {}}
    unknown = [n for n in names if n not in groups and n not in encoded]
    if unknown:
        raise KeyError(f"features not produced by the spec: {unknown[:5]}")
    needed = {groups[n] for n in names if n in groups}
    app_names = [n for n in names if groups.get(n) == "application"]
    return {"names": list(names), "app_names": app_names,
            "spec": {**spec, "groups": [g for g in spec["groups"] if g in needed]}}


def client_features(applications: list[dict], history: dict[str, list[dict]] | None, spec: dict,
                    plan: dict | None = None) -> pl.DataFrame:
    """Feature rows (SK_ID_CURR + features, float32) for raw application rows and history.

    Without `plan`, every feature of the spec; with a `serving_plan`, only the plan's features.
    """
    history = history or {}
    unknown = sorted(set(history) - set(HISTORY))
    if unknown:
        raise DataError(f"history: unknown table {unknown[0]}")
    names = plan["names"] if plan else spec["features"]
    spec = plan["spec"] if plan else spec
    app = typed_frame("application_test", [{k: v for k, v in row.items() if k != "TARGET"} for row in applications])
    if not any(history.values()):  # no history rows: every history aggregate is missing; skip their queries
        lazy = application_features(app.lazy(), spec["vocab"], numeric_columns("application_train"), spec["poly"])
        if plan:
            lazy = lazy.select(["SK_ID_CURR", *plan["app_names"]])
        return finalize(add_target_encoding(lazy.collect(), app, spec), names, absent_are_missing=True)
    tables = sort_history({name: typed_frame(name, history.get(name, [])).lazy() for name in HISTORY})
    features = build_features(app.lazy(), tables, spec)
    return finalize(add_target_encoding(features, app, spec), names)
