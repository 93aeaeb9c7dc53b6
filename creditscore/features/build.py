"""Assemble the feature matrix: the one code path used by the engineer stage and by the API."""
from __future__ import annotations

import polars as pl

from creditscore.data.cleaning import clean_table, sentinel_flags
from creditscore.data.raw import empty_table
from creditscore.data.schema import HISTORY_TABLES, KEY, TABLES
from creditscore.features import extras, history
from creditscore.features.application import application_features
from creditscore.features.core import Aggregation, grouped
from creditscore.features.encoding import apply_encoding, encoding_key, fit_levels, target_encoded_name

HISTORY = tuple(HISTORY_TABLES)  # the six history tables, in the schema's order


def text_columns(table: str) -> list[str]:
    """Text (category) columns of a Kaggle table."""
    return [c for c, kind in TABLES[table].columns if kind == "str"]


def numeric_columns(table: str) -> list[str]:
    """Numeric columns of a cleaned table, keys and TARGET excluded, sentinel flags included."""
    skip = {"SK_ID_CURR", "SK_ID_BUREAU", "TARGET"}
    return ([c for c, kind in TABLES[table].columns if kind != "str" and c not in skip]
            + sentinel_flags(TABLES[table]))


def link_column(table: str) -> str:
    """The column a history table is grouped by (and sorted by)."""
    return TABLES[table].parent[1]


def sort_history(tables: dict[str, pl.LazyFrame]) -> dict[str, pl.LazyFrame]:
    """History tables sorted (stably) by their link column, as build_features requires."""
    return {name: lf.sort(link_column(name), maintain_order=True) for name, lf in tables.items()}


def fit_vocabulary(app_train: pl.LazyFrame, tables: dict[str, pl.LazyFrame], max_levels: int,
                   min_count: int) -> dict[str, dict[str, list[str]]]:
    """Levels of every text column: application levels from training clients, history levels from all rows."""
    vocab = {"application": fit_levels(app_train, text_columns("application_train"), max_levels, min_count)}
    for name in HISTORY:
        columns = text_columns(name)
        if columns:
            vocab[name] = fit_levels(tables[name], columns, max_levels, min_count)
    return vocab


def _group_frames(tables: dict[str, pl.LazyFrame], vocab: dict, groups: list[str]) -> list[pl.LazyFrame]:
    """One query per history table for the requested groups; `recent_and_rates` joins each table's pass."""
    rows = {"bureau": history.bureau_credits(tables["bureau"], tables["bureau_balance"], vocab),
            "previous": history.previous_rows(tables["previous_application"]),
            "pos_cash": tables["POS_CASH_balance"],
            "installments": history.instalment_columns(tables["installments_payments"]),
            "credit_card": tables["credit_card_balance"]}
    card_numeric = numeric_columns("credit_card_balance")
    aggregators = {  # group: (aggregation of the table's rows with extra aggregations, the table's extras)
        "bureau": (lambda r, more: history.aggregate_bureau(r, vocab, more), extras.bureau_extras),
        "previous": (lambda r, more: history.aggregate_previous(r, vocab, more), extras.previous_extras),
        "pos_cash": (lambda r, more: history.aggregate_pos_cash(r, vocab, more), extras.pos_extras),
        "installments": (lambda r, more: history.aggregate_installments(r, more), extras.installment_extras),
        "credit_card": (lambda r, more: history.aggregate_credit_card(r, vocab, card_numeric, more), extras.card_extras),
    }
    frames = []
    for group, (aggregate, table_extras) in aggregators.items():
        more = table_extras() if "recent_and_rates" in groups else Aggregation()
        if group in groups:
            frames.append(aggregate(rows[group], more))
        elif more.outputs:
            frames.append(grouped(rows[group], KEY, more))
    return frames


def build_features(app: pl.LazyFrame, tables: dict[str, pl.LazyFrame], spec: dict) -> pl.DataFrame:
    """Features for every application row, in input order: application features beside history aggregates.

    `app` holds cleaned application rows (any number); `tables` the cleaned history rows of those
    clients (or of everyone); `spec` the vocabulary, groups and polynomial settings fitted by the stage.
    Clients without history rows get missing aggregates (counts are missing too, as in the kernel).

    History tables must be sorted by their link column (SK_ID_BUREAU for bureau_balance, SK_ID_CURR
    otherwise), as prepare writes them: Polars then aggregates contiguous slices, so float sums are
    the same from run to run (a hash group-by adds them in a varying order). The groups are computed
    in parallel as float32 and placed side by side, aligned on the application rows.
    """
    frames = [application_features(app, spec["vocab"], numeric_columns("application_train"), spec["poly"],
                                   protected=spec.get("protected", ()))]
    frames += _group_frames(tables, spec["vocab"], spec["groups"])
    frames = pl.collect_all([f.with_columns(pl.exclude(KEY).cast(pl.Float32)) for f in frames])
    keys = frames[0].select(KEY)
    aligned = [keys.join(g, on=KEY, how="left", maintain_order="left").drop(KEY) for g in frames[1:]]
    features = pl.concat([frames[0], *aligned], how="horizontal")
    return features.select(_ordered(features.columns))


EXTRAS = (extras.bureau_extras, extras.previous_extras, extras.installment_extras, extras.pos_extras,
          extras.card_extras)


def _ordered(names: list[str]) -> list[str]:
    """The `recent_and_rates` features last, as the features have always been ordered (a model's columns)."""
    present = set(names)
    late = [n for make in EXTRAS for n in (e.meta.output_name() for e in make().outputs) if n in present]
    moved = set(late)
    return [n for n in names if n not in moved] + late


def empty_tables() -> dict[str, pl.LazyFrame]:
    """Zero-row cleaned tables: enough to learn every feature name from the spec alone."""
    return {name: clean_table(empty_table(TABLES[name]), TABLES[name])[0].lazy()
            for name in ("application_train", *HISTORY)}


def feature_groups(spec: dict) -> dict[str, str]:
    """Feature name -> group, in the order build_features produces them (no data needed)."""
    tables = empty_tables()
    app = application_features(tables["application_train"], spec["vocab"], numeric_columns("application_train"),
                               spec["poly"], protected=spec.get("protected", ()))
    names = {n: "application" for n in app.collect_schema().names() if n != KEY}
    for group in spec["groups"]:
        if group != "application":
            for frame in _group_frames(tables, spec["vocab"], [group]):
                names.update({n: group for n in frame.collect_schema().names() if n != KEY})
    return {n: names[n] for n in _ordered(list(names))}


def add_target_encoding(features: pl.DataFrame, app: pl.DataFrame, spec: dict) -> pl.DataFrame:
    """Target-encoded columns for rows outside the training folds, from the mapping stored in the spec."""
    encoding = spec.get("target_encoding") or {}
    columns = [pl.Series(target_encoded_name(c), apply_encoding(encoding_key(app, c), m["mapping"], m["prior"]))
               for c, m in encoding.items()]
    return features.with_columns(columns) if columns else features


def finalize(features: pl.DataFrame, names: list[str], absent_are_missing: bool = False) -> pl.DataFrame:
    """The feature columns in the spec's order as float32 (missing stays missing, never infinite).

    A feature absent from the frame is an error, unless `absent_are_missing` (history aggregates of a
    client known to have no history rows, which are missing by definition).
    """
    absent = [n for n in names if n not in features.columns]
    if absent and not absent_are_missing:
        raise KeyError(f"features missing from the frame: {absent[:5]}")
    out = features.select([pl.col(KEY)] + [pl.col(n).cast(pl.Float32) if n not in absent
                                           else pl.lit(None, dtype=pl.Float32).alias(n) for n in names])
    infinite = [n for n, count in zip(names, out.select(pl.col(names).is_infinite().sum()).row(0)) if count]
    if infinite:  # float32 overflow of an extreme product or sum
        out = out.with_columns([pl.when(pl.col(n).is_infinite()).then(None).otherwise(pl.col(n)).alias(n)
                                for n in infinite])
    return out
