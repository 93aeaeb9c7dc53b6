"""Write the eight Kaggle CSV files of a synthetic Home Credit population, plus the planted signals."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from creditscore.data.schema import HISTORY_TABLES, TABLES
from creditscore.synthetic.application import EXTRA_EFFECTS, generate_applications
from creditscore.synthetic.history import generate_history
from creditscore.synthetic.latent import (
    APPLICATION_FACTORS,
    DRIFT_SHIFT,
    HISTORY_WEIGHTS,
    LATE_PAYMENT_STEP,
    draw_factors,
    shift_factors,
)
from creditscore.synthetic.marginals import load_marginals
from creditscore.synthetic.shapes import RATIOS, load_shapes

FULL = load_marginals()["full_scale"]["rows"]
TEST_RATIO = FULL["application_test"] / FULL["application_train"]
CHUNK_CLIENTS = 40_000  # history is generated and written per chunk of clients (bounded memory)
FIRST_SK_ID_CURR, FIRST_SK_ID_BUREAU, FIRST_SK_ID_PREV = 100_002, 5_000_000, 1_000_000
BOM = b"\xef\xbb\xbf"

# What carries each factor, for later tests of feature selection (see latent.py). An application
# factor sets the rank of its columns; its risk comes from the shape of the `shape` column (shapes.py).
SIGNALS = {
    "ext_source_1": {"table": "application_train", "columns": ["EXT_SOURCE_1"]},
    "ext_source_2": {"table": "application_train", "columns": ["EXT_SOURCE_2"]},
    "ext_source_3": {"table": "application_train", "columns": ["EXT_SOURCE_3"]},
    "age": {"table": "application_train", "columns": ["DAYS_BIRTH"]},
    "payment_rate": {"table": "application_train", "columns": ["AMT_ANNUITY", "AMT_CREDIT"],
                     "feature": "PAYMENT_RATE = AMT_ANNUITY / AMT_CREDIT (a jagged, non-monotone shape)"},
    "bureau_overdue": {"table": "bureau", "columns": ["AMT_CREDIT_SUM_DEBT", "AMT_CREDIT_SUM_OVERDUE",
                                                      "CREDIT_DAY_OVERDUE", "AMT_CREDIT_MAX_OVERDUE", "CREDIT_ACTIVE"],
                       "also": {"bureau_balance": ["STATUS"]},
                       "feature": "share of active debt, overdue amounts and late (1-5) monthly statuses"},
    "late_payment": {"table": "installments_payments", "columns": ["DAYS_ENTRY_PAYMENT", "DAYS_INSTALMENT",
                                                                  "AMT_PAYMENT", "AMT_INSTALMENT"],
                     "also": {"POS_CASH_balance": ["SK_DPD", "SK_DPD_DEF"], "credit_card_balance": ["SK_DPD"]},
                     "feature": "days past due (DAYS_ENTRY_PAYMENT - DAYS_INSTALMENT > 0) and short payments"},
    "refused_previous": {"table": "previous_application", "columns": ["NAME_CONTRACT_STATUS", "CODE_REJECT_REASON",
                                                                     "NAME_YIELD_GROUP"],
                         "feature": "share of refused previous applications, high-yield pricing"},
    "card_utilisation": {"table": "credit_card_balance", "columns": ["AMT_BALANCE", "AMT_CREDIT_LIMIT_ACTUAL"],
                         "feature": "AMT_BALANCE / AMT_CREDIT_LIMIT_ACTUAL"},
}
# Application columns tied to a signal column or to each other by construction (not pure noise).
LINKED = ["AMT_GOODS_PRICE", "AMT_INCOME_TOTAL", "DAYS_EMPLOYED", "NAME_INCOME_TYPE", "ORGANIZATION_TYPE",
          "OCCUPATION_TYPE", "FLAG_EMP_PHONE", "CNT_FAM_MEMBERS", "NAME_FAMILY_STATUS", "CNT_CHILDREN",
          "OWN_CAR_AGE", "FLAG_OWN_CAR", "REGION_RATING_CLIENT_W_CITY"]


SHAPE_OF = {"ext_source_1": "EXT_SOURCE_1", "ext_source_2": "EXT_SOURCE_2", "ext_source_3": "EXT_SOURCE_3",
            "age": "DAYS_BIRTH", "payment_rate": "PAYMENT_RATE"}


def _span(shape: dict) -> float:
    """Log-odds range of a numeric shape over its knots and the missing value."""
    values = [*shape["logodds"], shape["missing"]]
    return round(max(values) - min(values), 3)


def planted_signals(n_train: int, n_test: int, seed: int, drift: float, target_rate: float) -> dict:
    """Describe the planted default mechanism (shapes, weights, carrier columns, pure-noise columns).

    An application factor's `weight` is the log-odds range of its column's shape; a history factor's
    is its coefficient in the log-odds.
    """
    shapes = load_shapes()
    factors = {k: {**SIGNALS[k], "shape": SHAPE_OF[k], "weight": _span(shapes["numeric"][SHAPE_OF[k]])}
               for k in APPLICATION_FACTORS}
    factors.update({k: {**SIGNALS[k], "weight": w} for k, w in HISTORY_WEIGHTS.items()})
    shaped = {c for name in shapes["numeric"] for c in RATIOS.get(name, (name,))} | set(shapes["categories"])
    used = {c for k in APPLICATION_FACTORS for c in SIGNALS[k]["columns"]} | shaped | {c for c, _ in EXTRA_EFFECTS}
    noise = [c for c in TABLES["application_train"].names
             if c not in used | set(LINKED) | {"SK_ID_CURR", "TARGET"}]
    return {"seed": seed, "n_train": n_train, "n_test": n_test, "drift": drift, "target_rate": target_rate,
            "factors": factors, "late_payment_step": LATE_PAYMENT_STEP, "shapes": shapes,
            "weak_effects": [{"column": c, "coefficient": b} for c, b in EXTRA_EFFECTS],
            "drift_shift": DRIFT_SHIFT, "noise_columns": {"application_train": noise}}


def _log(message: str) -> None:
    print(f"generate: {message}", file=sys.stderr, flush=True)


def _write(frame: pl.DataFrame, handle, header: bool) -> None:
    frame.write_csv(handle, include_header=header)


OUTCOMES = "matured_outcomes.csv"  # not a Kaggle file: what a lender learns once the test clients' loans mature
MONTHS = 12


def matured_outcomes(outcomes: pl.DataFrame, seed: int) -> pl.DataFrame:
    """The test clients' outcomes with the month they applied in, spread over a year (a generator of its own, so
    that every other file stays as it was): SK_ID_CURR, APPLICATION_MONTH (YYYY-MM), TARGET."""
    months = np.random.default_rng([seed, 104729]).integers(0, MONTHS, size=outcomes.height)
    labels = np.array([f"2025-{m + 1:02d}" for m in range(MONTHS)])
    return outcomes.select("SK_ID_CURR", pl.Series("APPLICATION_MONTH", labels[months]), "TARGET")


def generate(out_dir: Path, n_clients: int, seed: int, drift: float = 0.0) -> dict:
    """Write the eight CSV files and planted_signals.json into out_dir; return row counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_test = round(n_clients * TEST_RATIO)
    n = n_clients + n_test
    ids = np.arange(FIRST_SK_ID_CURR, FIRST_SK_ID_CURR + n, dtype=np.int64)
    is_test = np.zeros(n, dtype=bool)
    is_test[rng.permutation(n)[:n_test]] = True
    factors = draw_factors(n, rng)
    if drift:
        shift_factors(factors, is_test, drift)
    target_rate = load_marginals()["full_scale"]["target_rate_train"]
    train, test, outcomes = generate_applications(factors, is_test, ids, target_rate, rng)
    rows = {"application_train": train.height, "application_test": test.height}
    train.write_csv(out_dir / "application_train.csv")
    test.write_csv(out_dir / "application_test.csv")
    matured_outcomes(outcomes, seed).write_csv(out_dir / OUTCOMES)
    _log(f"{n:,} applications in {time.perf_counter() - start:.1f}s")
    handles = {t: open(out_dir / TABLES[t].file, "wb") for t in HISTORY_TABLES}
    try:
        for t in HISTORY_TABLES:
            handles[t].write(BOM if TABLES[t].bom else b"")
        first_ids = {"bureau": FIRST_SK_ID_BUREAU, "previous": FIRST_SK_ID_PREV}
        for i, lo in enumerate(range(0, n, CHUNK_CLIENTS)):
            sl = slice(lo, min(lo + CHUNK_CLIENTS, n))
            chunk = generate_history(ids[sl], {k: v[sl] for k, v in factors.items()}, first_ids,
                                     np.random.default_rng([seed, i]))
            first_ids["bureau"] += chunk["bureau"].height
            first_ids["previous"] += chunk["previous_application"].height
            for t, frame in chunk.items():
                _write(frame, handles[t], header=i == 0)
                rows[t] = rows.get(t, 0) + frame.height
            _log(f"history for clients {sl.stop:,}/{n:,} ({time.perf_counter() - start:.1f}s)")
    finally:
        for h in handles.values():
            h.close()
    signals = planted_signals(n_clients, n_test, seed, drift, float(train["TARGET"].mean()))
    (out_dir / "planted_signals.json").write_text(json.dumps(signals, indent=1) + "\n")
    return rows
