"""Does a population rank models as the real data does? Kernel features, the figures and their tolerances.

The same figures are computed on synthetic and on real application rows (kernel-style features:
every raw column, one-hot categories, DAYS_EMPLOYED 365243 as missing, five ratios): 5-fold AUC of
LightGBM, of additive LightGBM (depth-1 trees), of standardised logistic regression and of LightGBM on
the EXT_SOURCE columns alone, and the default rate by decile of the columns profiled in
`home-credit-model-profile.json`. `check_targets` compares them with the real figures.
Used by `benchmarks/bench_realism.py` and by `tests/test_generator.py`.
"""
from __future__ import annotations

import numpy as np
import polars as pl
from scipy.stats import spearmanr

from creditscore.data.schema import SENTINEL_DAYS
from creditscore.synthetic.shapes import RATIOS

EXT_SOURCES = ["EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"]
# LightGBM as in the kernel "LightGBM with simple features" (fewer trees, one thread: a benchmark, not a fit).
LGB = dict(n_estimators=600, learning_rate=0.03, num_leaves=20, colsample_bytree=0.5, subsample=0.87,
           subsample_freq=1, min_child_weight=80, reg_lambda=5.0, n_jobs=1, verbose=-1)
# Additive LightGBM: stumps only, so no interaction can be learnt; more trees to fit the shapes.
ADDITIVE = dict(LGB, n_estimators=1200, learning_rate=0.05, num_leaves=2, max_depth=1, colsample_bytree=1.0)

# Tolerances (docs: The synthetic population). AUC targets come from the real profiles and the real rows.
TARGETS = {"lgb_minus_lr": (0.015, 0.035), "lgb_auc": (0.74, 0.78), "additive_gap_max": 0.01,
           "history_gain": (0.02, 0.04)}
DECILE_MAX_ABS = 0.03  # largest |synthetic - real| default rate in any decile, at 20,000 clients
DECILE_CLIENTS = 20_000  # below this size the allowed deviation grows as 1/sqrt(clients) (sampling noise)
DECILE_SPEARMAN = 0.6  # rank agreement of the decile curves, for curves with a shape (range >= SHAPED)
SHAPED = 0.05
MISSING_MIN_GAP = 0.005  # the direction of the default rate when missing is checked when real |gap| exceeds this


def read_applications(path) -> pl.DataFrame:
    """application_train.csv as a DataFrame (a byte-order mark in the header is dropped)."""
    frame = pl.read_csv(path, infer_schema_length=None)
    return frame.rename({c: c.lstrip("\ufeff") for c in frame.columns})


def kernel_features(app: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Kernel-style application features: raw numeric columns, one-hot categories, five ratios."""
    app = app.with_columns(pl.when(pl.col("DAYS_EMPLOYED") == SENTINEL_DAYS).then(None)
                           .otherwise(pl.col("DAYS_EMPLOYED")).alias("DAYS_EMPLOYED"))
    skip = {"SK_ID_CURR", "TARGET"}
    numeric = [c for c, t in app.schema.items() if c not in skip and t != pl.String]
    text = [c for c, t in app.schema.items() if c not in skip and t == pl.String]
    exprs = [pl.col(c).cast(pl.Float64) for c in numeric]
    for c in text:
        levels = sorted(v for v in app[c].unique().to_list() if v is not None)
        exprs += [(pl.col(c) == v).fill_null(False).cast(pl.Float64).alias(f"{c}_{v}") for v in levels]
    exprs += [(pl.col(a).cast(pl.Float64) / pl.col(b).cast(pl.Float64)).alias(name)
              for name, (a, b) in RATIOS.items()]
    frame = app.select(exprs)
    x = frame.to_numpy().astype(np.float64)
    x[~np.isfinite(x)] = np.nan
    return x, frame.columns


def _folds(y: np.ndarray, folds: int, seed: int):
    from sklearn.model_selection import StratifiedKFold
    return StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)


def cv_auc(make_model, x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 42) -> float:
    """Out-of-fold AUC of a model built by make_model() on stratified folds."""
    from sklearn.metrics import roc_auc_score
    oof = np.zeros(len(y))
    for train, valid in _folds(y, folds, seed):
        model = make_model().fit(x[train], y[train])
        oof[valid] = model.predict_proba(x[valid])[:, 1]
    return float(roc_auc_score(y, oof))


def lightgbm(params: dict):
    from lightgbm import LGBMClassifier
    return lambda: LGBMClassifier(random_state=0, **params)


def logistic_regression():
    """Median imputation, standardisation, logistic regression (the profile's `logistic_regression_standardised`)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                         LogisticRegression(max_iter=2000, C=0.1))


def decile_tolerance(n_clients: int) -> float:
    """The allowed max |deviation| of a decile curve for a population of n_clients."""
    return round(DECILE_MAX_ABS * max(1.0, (DECILE_CLIENTS / n_clients) ** 0.5), 4)


def decile_curve(x: np.ndarray, y: np.ndarray) -> dict:
    """Default rate by decile of the present values (tied edges merged), missing share, rate when missing."""
    present = ~np.isnan(x)
    edges = np.unique(np.quantile(x[present], np.linspace(0, 1, 11)))
    bins = np.searchsorted(edges[1:-1], x[present], side="left")  # right-closed bins, as pandas.qcut
    rates = [float(y[present][bins == b].mean()) for b in range(len(edges) - 1) if (bins == b).any()]
    return {"default_rate_by_decile": [round(r, 4) for r in rates], "missing_share": round(float(1 - present.mean()), 4),
            "default_rate_when_missing": round(float(y[~present].mean()), 4) if (~present).any() else None}


def model_figures(app: pl.DataFrame, folds: int = 5, seed: int = 42, profile_columns=()) -> dict:
    """AUCs of the four models on kernel features, the LightGBM - LR gap, and the decile curves."""
    x, names = kernel_features(app)
    y = app["TARGET"].to_numpy()
    ext = [names.index(c) for c in EXT_SOURCES]
    auc = {"lightgbm": cv_auc(lightgbm(LGB), x, y, folds, seed),
           "lightgbm_additive": cv_auc(lightgbm(ADDITIVE), x, y, folds, seed),
           "logistic_regression": cv_auc(logistic_regression, x, y, folds, seed),
           "lightgbm_ext_sources_only": cv_auc(lightgbm(LGB), x[:, ext], y, folds, seed)}
    auc = {k: round(v, 4) for k, v in auc.items()}
    deciles = {c: decile_curve(x[:, names.index(c)], y) for c in profile_columns if c in names}
    return {"n_clients": int(len(y)), "default_rate": round(float(y.mean()), 4), "n_features": len(names),
            "cv_auc": auc, "lgb_minus_lr": round(auc["lightgbm"] - auc["logistic_regression"], 4),
            "additive_gap": round(auc["lightgbm"] - auc["lightgbm_additive"], 4), "deciles": deciles}


def compare_deciles(ours: dict, real: dict, base_rate: float, real_base_rate: float,
                    max_abs: float = DECILE_MAX_ABS) -> dict:
    """Per column: max |difference| of the decile curves, their Spearman, the direction when missing, pass/fail."""
    a = np.asarray(ours["default_rate_by_decile"])
    b = np.asarray(real["default_rate_by_decile"])
    if len(a) != len(b):  # tied edges merged differently: compare on the same positions
        a = np.interp(np.linspace(0, 1, len(b)), np.linspace(0, 1, len(a)), a)
    deviation = float(np.max(np.abs(a - b)))
    shaped = float(b.max() - b.min()) >= SHAPED
    rho = float(spearmanr(a, b).statistic)
    ok = deviation <= max_abs and (not shaped or rho >= DECILE_SPEARMAN)
    out = {"max_abs_deviation": round(deviation, 4), "spearman": round(rho, 3), "shaped": shaped}
    real_missing, our_missing = real.get("default_rate_when_missing"), ours.get("default_rate_when_missing")
    if real.get("missing_share", 0) >= 0.01 and real_missing is not None and abs(real_missing - real_base_rate) >= MISSING_MIN_GAP:
        right = our_missing is not None and np.sign(our_missing - base_rate) == np.sign(real_missing - real_base_rate)
        out["missing_direction_right"] = bool(right)
        ok = ok and right
    out["ok"] = bool(ok)
    return out


def check_targets(figures: dict, profile: dict, history_gain: float | None = None,
                  max_abs: float = DECILE_MAX_ABS) -> dict:
    """Each realism target: the value, the allowed range, met or not."""
    def within(value, low, high):
        return {"value": value, "range": [low, high], "ok": bool(low <= value <= high)}
    checks = {"lgb_minus_lr": within(figures["lgb_minus_lr"], *TARGETS["lgb_minus_lr"]),
              "lgb_auc": within(figures["cv_auc"]["lightgbm"], *TARGETS["lgb_auc"]),
              "additive_gap": within(abs(figures["additive_gap"]), 0.0, TARGETS["additive_gap_max"])}
    if history_gain is not None:
        checks["history_gain"] = within(round(history_gain, 4), *TARGETS["history_gain"])
    deciles = {c: compare_deciles(d, profile["deciles"][c], figures["default_rate"], profile["default_rate"], max_abs)
               for c, d in figures["deciles"].items()}
    checks["deciles"] = {"ok": all(d["ok"] for d in deciles.values()),
                         "failed": [c for c, d in deciles.items() if not d["ok"]], "columns": deciles}
    return checks
