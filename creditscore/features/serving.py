"""Features for clients given as raw Kaggle fields: the serving side of the one feature code path.

The API passes one or more raw application rows (the columns of application_test.csv) and, when it
has them, the clients' raw history rows. They are typed with the declared schema, cleaned by
`prepare`'s cleaning expressions and fed to `build_features`, exactly like the tables of the pipeline.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from creditscore.data.cleaning import cleaner
from creditscore.data.raw import column_type
from creditscore.data.schema import TABLES
from creditscore.errors import DataError
from creditscore.features.application import application_expressions
from creditscore.features.build import (
    HISTORY,
    add_target_encoding,
    build_features,
    feature_groups,
    finalize,
    numeric_columns,
    sort_history,
)
from creditscore.features.encoding import apply_encoding, encoding_key, key_columns, target_encoded_name


@cache
def _schema_and_cleaner(table: str) -> tuple[dict, list[pl.Expr]]:
    spec = TABLES[table]
    return {c: column_type(c, kind) for c, kind in spec.columns}, cleaner(spec)


def typed_frame(table: str, rows: list[dict], cleaning: list[pl.Expr] | None = None,
                columns: list[str] | None = None) -> pl.DataFrame:
    """Raw rows of a Kaggle table as a typed, cleaned frame; absent fields are missing.

    Cleaned by `prepare`'s expressions (`cleaner`, built once per table): the values `clean_table` gives;
    `cleaning` and `columns` (a serving plan's) limit the work to the columns the plan's features read.
    """
    spec = TABLES[table]
    unknown = sorted({k for row in rows for k in row} - set(spec.names))
    if unknown:
        raise DataError(f"{table}: unknown field {unknown[0]}")
    schema, expressions = _schema_and_cleaner(table)
    if columns is not None:
        schema = {c: schema[c] for c in columns}
    frame = pl.DataFrame(rows, schema=schema, strict=False) if rows else pl.DataFrame(schema=schema)
    return frame.with_columns(expressions if cleaning is None else cleaning)


def serving_plan(spec: dict, names: list[str]) -> dict:
    """What one scoring request must compute for `names`: computed once when the API starts.

    The feature groups holding none of `names` are skipped, and the application features are the
    engineer stage's expressions for `names` only, built here once. The values are those of the full
    computation (the parity tests check it).
    """
    groups = feature_groups(spec)
    encoded = {target_encoded_name(c) for c in spec.get("target_encoding") or {}}
    unknown = [n for n in names if n not in groups and n not in encoded]
    if unknown:
        raise KeyError(f"features not produced by the spec: {unknown[:5]}")
    needed = {groups[n] for n in names if n in groups}
    app_names = [n for n in names if groups.get(n) == "application"]
    app_exprs = application_expressions(spec["vocab"], numeric_columns("application_train"), spec["poly"],
                                        only=app_names, protected=spec.get("protected", ()))
    keys = {target_encoded_name(k): k for k in spec.get("target_encoding") or {}}
    encoded_names = [n for n in names if n in keys]
    roots = {r for e in app_exprs for r in e.meta.root_names()}
    roots |= {c for n in encoded_names for c in key_columns(keys[n])}  # what the encoded keys read
    app_cleaner = [e for e in _schema_and_cleaner("application_test")[1] if e.meta.output_name() in roots]
    roots |= {r for e in app_cleaner for r in e.meta.root_names()}  # a flag column reads its DAYS_ column
    return {"names": list(names), "app_names": app_names, "app_exprs": app_exprs, "app_cleaner": app_cleaner,
            "app_index": [names.index(n) for n in app_names],
            "encoded": [(names.index(n), keys[n]) for n in encoded_names],
            "app_columns": [c for c, _ in TABLES["application_test"].columns if c in roots or c == "SK_ID_CURR"],
            "spec": {**spec, "groups": [g for g in spec["groups"] if g in needed]}}


def client_features(applications: list[dict], history: dict[str, list[dict]] | None, spec: dict,
                    plan: dict | None = None) -> pl.DataFrame:
    """Feature rows (SK_ID_CURR + features, float32) for raw application rows and history.

    Without `plan`, every feature of the spec; with a `serving_plan`, only the plan's features.
    """
    history = _checked(history)
    names = plan["names"] if plan else spec["features"]
    spec = plan["spec"] if plan else spec
    app = typed_frame("application_test", [{k: v for k, v in row.items() if k != "TARGET"} for row in applications])
    if not any(history.values()):  # no history rows: every history aggregate is missing; skip their queries
        exprs = plan["app_exprs"] if plan else application_expressions(
            spec["vocab"], numeric_columns("application_train"), spec["poly"], protected=spec.get("protected", ()))
        features = app.select([pl.col("SK_ID_CURR"), *exprs])
        return finalize(add_target_encoding(features, app, spec), names, absent_are_missing=True)
    tables = sort_history({name: typed_frame(name, history.get(name, [])).lazy() for name in HISTORY})
    features = build_features(app.lazy(), tables, spec)
    return finalize(add_target_encoding(features, app, spec), names)


def model_values(frame: pl.DataFrame) -> np.ndarray:
    """Computed features as the model sees them: float32 as in the feature files, an overflow to infinity missing."""
    values = frame.to_numpy().astype(np.float32)
    values[np.isinf(values)] = np.nan
    return values


def client_matrix(applications: list[dict], history: dict[str, list[dict]] | None, plan: dict) -> np.ndarray:
    """The plan's features as a float64 matrix (rows in input order): `client_features` without the frame work.

    Without history, the application features go straight to NumPy and are rounded through float32
    like `finalize` (an overflow to infinity becomes missing), absent history aggregates are NaN. A
    parity test checks it equals `client_features` in both cases.
    """
    history = _checked(history)
    spec, names = plan["spec"], plan["names"]
    if any(history.values()):
        frame = client_features(applications, history, spec, plan)
        return frame.select(names).to_numpy().astype(np.float64)
    app = typed_frame("application_test", [{k: v for k, v in row.items() if k != "TARGET"} for row in applications],
                      plan["app_cleaner"], plan["app_columns"])
    computed = model_values(app.select(plan["app_exprs"]))
    out = np.full((len(applications), len(names)), np.nan)
    out[:, plan["app_index"]] = computed
    for index, key in plan["encoded"]:  # the stored mapping, through float32 like the feature files
        encoding = spec["target_encoding"][key]
        values = apply_encoding(encoding_key(app, key), encoding["mapping"], encoding["prior"])
        out[:, index] = values.astype(np.float32)
    return out


def _checked(history: dict | None) -> dict:
    history = history or {}
    unknown = sorted(set(history) - set(HISTORY))
    if unknown:
        raise DataError(f"history: unknown table {unknown[0]}")
    return history
