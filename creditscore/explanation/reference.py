"""The serving reference: what the API and the dashboard show beside a score, built from the pipeline's outputs.

The `reference` stage builds it from the features, the predictions, the prepared applications, the bundle and
the explain stage's complete global importance; the explain stage shares the readers below. The reference is
its own stage so that a change to an explanation figure does not rebuild what the API serves.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from creditscore.decision.calibration import calibrate
from creditscore.errors import DataError
from creditscore.explanation import groups, reasons
from creditscore.explanation.contributions import labels_from_manifest, typical_values
from creditscore.features.serving import serving_plan
from creditscore.serving.blocks import arrow_blocks
from creditscore.serving.bundle import CLIENT_FIELDS, QUANTILES, Bundle, KnownClients, Reference

POPULATION_ATTRIBUTES = ("NAME_CONTRACT_TYPE", "CODE_GENDER", "NAME_FAMILY_STATUS", "DAYS_BIRTH", "AMT_INCOME_TOTAL")


def load_matrix(folder: Path, split: str, names: list[str], extra: list[str] = ()) -> tuple[pl.DataFrame, np.ndarray]:
    """One split's clients (SK_ID_CURR and the `extra` columns) and its float64 matrix of `names`."""
    columns = list(dict.fromkeys(["SK_ID_CURR", *extra, *names]))
    frame = pl.read_parquet(folder / f"{split}.parquet", columns=columns)
    return frame, frame.select(names).to_numpy().astype(np.float64)


def aligned(keys: pl.DataFrame, path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """The rows of `path` for the clients of `keys` (SK_ID_CURR and any columns to keep), in their order."""
    return keys.join(pl.read_parquet(path, columns=columns), on="SK_ID_CURR", how="left", maintain_order="left")


def granted_training(features: Path, predictions: Path, bundle: Bundle,
                     extra: list[str]) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The training clients, their matrix, and whether the model grants them (their out-of-fold scores, so no
    client is scored by a model that saw it)."""
    frame, x = load_matrix(features, "train", bundle.features, extra)
    oof = aligned(frame.select("SK_ID_CURR"), predictions / "oof.parquet")
    return frame, x, calibrate(oof["proba"].to_numpy(), bundle.calibration) < float(bundle.threshold)


def distributions(frame: pl.DataFrame, granted: np.ndarray, fields: list[str]) -> dict:
    """Quantiles of key fields among granted and refused training clients, for the dashboard."""
    out = {}
    for field in fields:
        values = frame[field].to_numpy().astype(np.float64)
        out[field] = {}
        for group, mask in (("granted", granted), ("refused", ~granted)):
            v = values[mask & ~np.isnan(values)]
            out[field][group] = [round(float(q), 6) for q in np.quantile(v, QUANTILES)] if len(v) else []
    return out


def reason_fields(bundle: Bundle) -> list[str]:
    """The application fields the reasons speak of (history features are said from their own rows)."""
    sources = reasons.sources_of(bundle.spec, bundle.manifest, bundle.features)
    return sorted({f for fs in sources.values() for f in fs if not f.startswith("history:")})


def build_reference(features: Path, predictions: Path, prepared: Path, bundle: Bundle, importance: dict,
                    key_fields: list[str], age_edges: list[int]) -> Reference:
    """The reference the API loads beside the bundle: aggregates of the training clients, no row of any."""
    names = bundle.features
    built = set(bundle.spec["features"])
    unknown = [f for f in key_fields if f not in built]
    if unknown:  # e.g. a feature of a protected field, which is never built
        raise DataError(f"params.yaml: explain.key_fields: {unknown[0]} is not a feature of {features / 'spec.json'}")
    labels = labels_from_manifest(bundle.manifest)
    train_frame, x_train, granted = granted_training(features, predictions, bundle, key_fields)
    train_app = aligned(train_frame.select("SK_ID_CURR"), prepared / "application_train.parquet")
    # similar clients: aggregates of the training clients per combination of filters (no client's row)
    compared = list(dict.fromkeys([*names, *key_fields]))
    population = groups.summarise(groups.attributes({c: train_app[c].to_list() for c in POPULATION_ATTRIBUTES},
                                                    age_edges),
                                  compared, train_frame.select(compared).to_numpy().astype(np.float32), granted,
                                  key_fields)
    return Reference(typical=typical_values(x_train[granted]),
                     typical_fields=reasons.typical_fields(train_app.filter(pl.Series(granted)), reason_fields(bundle)),
                     labels={n: labels.get(n, n) for n in compared}, ranking=importance["ranking"],
                     key_fields=key_fields, drivers=importance["drivers"], population=population,
                     distributions=distributions(train_frame, granted, key_fields))


def client_fields(bundle: Bundle, key_fields: list[str]) -> set[str]:
    """The application fields the API reads of a known client: those it shows (CLIENT_FIELDS), those the serving
    plan computes the what-if's features from, and those the reasons speak of. No other field is kept."""
    plan = serving_plan(bundle.spec, list(dict.fromkeys([*bundle.features, *key_fields])))
    computed_from = {r for e in plan["app_exprs"] for r in e.meta.root_names()}  # with the cleaner's flag columns
    return {*CLIENT_FIELDS, *plan["app_columns"], *computed_from, *reason_fields(bundle)}


def build_clients(features: Path, predictions: Path, prepared: Path, bundle: Bundle,
                  key_fields: list[str]) -> KnownClients:
    """The application_test clients the dashboard opens by id: their features, key fields, calibrated
    probability and the prepared application fields the API reads (`client_fields`)."""
    test_frame, x_test = load_matrix(features, "test", bundle.features, key_fields)
    test_pred = aligned(test_frame.select("SK_ID_CURR"), predictions / "test.parquet")
    path = prepared / "application_test.parquet"
    kept = client_fields(bundle, key_fields)
    application = aligned(test_frame.select("SK_ID_CURR"), path,
                          [c for c in pl.read_parquet_schema(path) if c in kept])
    return KnownClients(ids=test_frame["SK_ID_CURR"].to_numpy(), features=np.ascontiguousarray(x_test, dtype=np.float32),
                        key_values=test_frame.select(key_fields).to_numpy().astype(np.float64),
                        proba=calibrate(test_pred["proba"].to_numpy(), bundle.calibration),
                        application=arrow_blocks(application))
