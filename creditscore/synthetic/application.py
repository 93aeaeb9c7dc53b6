"""Generate application_train / application_test rows in the Kaggle format."""
from __future__ import annotations

import numpy as np
import polars as pl
from scipy.special import ndtr

from creditscore.data.schema import SENTINEL_DAYS, TABLES
from creditscore.synthetic.latent import draw_target, risk_score, solve_intercept
from creditscore.synthetic.marginals import (
    column_stats,
    numeric_series,
    quantile_curve,
    sample_series,
    without_sentinel,
)
from creditscore.synthetic.shapes import shape_score

T = "application_train"
# Payment rate AMT_ANNUITY / AMT_CREDIT of real loans (probability, value).
PAYMENT_RATE_Q = [[0, 0.0225], [0.05, 0.029], [0.25, 0.037], [0.5, 0.05], [0.75, 0.064],
                  [0.95, 0.09], [1, 0.124]]
BUILDING_SUFFIXES = ("_AVG", "_MODE", "_MEDI")
BLOCKS = {  # columns recorded together: one uniform per client drives their missingness
    "building": lambda c: c.endswith(BUILDING_SUFFIXES) or c in (
        "FONDKAPREMONT_MODE", "HOUSETYPE_MODE", "TOTALAREA_MODE", "WALLSMATERIAL_MODE", "EMERGENCYSTATE_MODE"),
    "bureau_requests": lambda c: c.startswith("AMT_REQ_CREDIT_BUREAU_"),
    "social_circle": lambda c: c.endswith("_SOCIAL_CIRCLE"),
}
# Weak linear effects of binary flags on the default log-odds: (column, coefficient).
EXTRA_EFFECTS = [("FLAG_DOCUMENT_3", 0.18), ("REG_CITY_NOT_WORK_CITY", 0.2)]


def _phi(x: np.ndarray) -> np.ndarray:
    return np.clip(ndtr(x), 1e-9, 1 - 1e-9)


def _integer(column: str) -> bool:
    return TABLES[T].dtype(column) == "int"


def _signal_columns(f: dict, rng: np.random.Generator, n: int) -> dict[str, pl.Series]:
    """Columns that carry the application factors (rank set by the factor)."""
    cols = {f"EXT_SOURCE_{k}": sample_series(T, f"EXT_SOURCE_{k}", n, rng, u=_phi(-f[f"ext_source_{k}"]))
            for k in (1, 2, 3)}
    age_u = _phi(f["age"])  # higher DAYS_BIRTH (younger) is riskier
    birth = np.rint(quantile_curve(column_stats(T, "DAYS_BIRTH")["quantiles"], age_u))
    cols["DAYS_BIRTH"] = numeric_series("DAYS_BIRTH", birth, True)
    income_z = rng.standard_normal(n)
    cols["AMT_INCOME_TOTAL"] = sample_series(T, "AMT_INCOME_TOTAL", n, rng, u=_phi(income_z))
    credit_u = _phi(0.45 * income_z + np.sqrt(1 - 0.45**2) * rng.standard_normal(n))
    credit = np.rint(quantile_curve(column_stats(T, "AMT_CREDIT")["quantiles"], credit_u) / 450) * 450
    rate = quantile_curve(PAYMENT_RATE_Q, _phi(-f["payment_rate"]))  # lower payment rate is riskier
    cols["AMT_CREDIT"] = numeric_series("AMT_CREDIT", credit, False)
    cols["AMT_ANNUITY"] = numeric_series("AMT_ANNUITY", np.round(credit * rate * 2) / 2, False)
    goods = np.rint(credit * rng.uniform(0.78, 1.0, n) / 4500) * 4500
    goods = np.where(rng.random(n) < column_stats(T, "AMT_GOODS_PRICE")["missing"], np.nan, np.maximum(goods, 4500))
    cols["AMT_GOODS_PRICE"] = numeric_series("AMT_GOODS_PRICE", goods, False)
    return cols


def _employment_columns(cols: dict, birth: np.ndarray, rng: np.random.Generator, n: int) -> None:
    """Pensioners (mostly the oldest) have DAYS_EMPLOYED = 365243 and organisation XNA."""
    share = column_stats(T, "DAYS_EMPLOYED")["share_365243"]
    age_rank = np.argsort(np.argsort(birth)) / max(n - 1, 1)  # 0 = oldest
    pensioner = rng.random(n) < np.where(age_rank < 0.3, share / 0.3 * 0.85, share * 0.15 / 0.7)
    stats = column_stats(T, "DAYS_EMPLOYED")
    employed = np.rint(quantile_curve(without_sentinel(stats), rng.random(n)))
    employed = np.maximum(employed, birth + 18 * 365)
    cols["DAYS_EMPLOYED"] = numeric_series("DAYS_EMPLOYED", np.where(pensioner, SENTINEL_DAYS, employed), True)
    income_type = cols["NAME_INCOME_TYPE"].to_numpy().astype(object)
    income_type[(income_type == "Pensioner") & ~pensioner] = "Working"
    income_type[pensioner] = "Pensioner"
    cols["NAME_INCOME_TYPE"] = pl.Series("NAME_INCOME_TYPE", income_type, dtype=pl.String)
    cols["ORGANIZATION_TYPE"] = _fix_organisation(cols["ORGANIZATION_TYPE"], pensioner)
    # pensioners have no occupation; the rest of the real missing share falls on the others
    other_missing = (column_stats(T, "OCCUPATION_TYPE")["missing"] - share) / (1 - share)
    occupation = sample_series(T, "OCCUPATION_TYPE", n, rng, missing_u=np.ones(n))
    cols["OCCUPATION_TYPE"] = occupation.set(pl.Series(pensioner | (rng.random(n) < other_missing)), None)
    cols["FLAG_EMP_PHONE"] = numeric_series("FLAG_EMP_PHONE", (~pensioner).astype(float), True)


def _fix_organisation(org: pl.Series, pensioner: np.ndarray) -> pl.Series:
    """XNA organisation only for pensioners; other clients keep a drawn organisation."""
    values = org.to_numpy().astype(object)
    non_pension_xna = (values == "XNA") & ~pensioner
    values[non_pension_xna] = "Business Entity Type 3"
    values[pensioner] = "XNA"
    return pl.Series(org.name, values, dtype=pl.String)


def _consistency(cols: dict, rng: np.random.Generator, n: int) -> None:
    """Make linked columns agree: car age needs a car, family size counts children and spouse."""
    no_car = (cols["FLAG_OWN_CAR"] == "N").to_numpy()
    car_age = sample_series(T, "OWN_CAR_AGE", n, rng, missing_u=np.ones(n), integer=True)
    cols["OWN_CAR_AGE"] = car_age.set(pl.Series(no_car), None)
    married = cols["NAME_FAMILY_STATUS"].is_in(["Married", "Civil marriage"]).to_numpy()
    fam = cols["CNT_CHILDREN"].to_numpy().astype(float) + 1 + married
    cols["CNT_FAM_MEMBERS"] = numeric_series("CNT_FAM_MEMBERS", fam, True)
    cols["FLAG_MOBIL"] = numeric_series("FLAG_MOBIL", np.ones(n), True)


def application_score(frame: pl.DataFrame, shapes: dict | None = None) -> np.ndarray:
    """The application part of the default log-odds: single-feature shapes and weak flag effects."""
    total = shape_score(frame, shapes)
    for column, coef in EXTRA_EFFECTS:
        x = frame[column].cast(pl.Float64).to_numpy()
        total += coef * np.nan_to_num(x - np.nanmean(x))
    return total


def application_rows(factors: dict, ids: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """Application rows of every client, without TARGET."""
    n = ids.shape[0]
    names = TABLES[T].names
    block_u = {b: rng.random(n) for b in BLOCKS}
    rank_u = {}  # _AVG/_MODE/_MEDI of one building measure share a rank
    cols = _signal_columns(factors, rng, n)
    for c in names:
        if c in cols or c in ("SK_ID_CURR", "TARGET"):
            continue
        block = next((b for b, test in BLOCKS.items() if test(c)), None)
        base = c.rsplit("_", 1)[0] if c.endswith(BUILDING_SUFFIXES) else c
        u = rank_u.setdefault(base, rng.random(n))
        cols[c] = sample_series(T, c, n, rng, u=u, missing_u=block_u.get(block), integer=_integer(c))
    _employment_columns(cols, cols["DAYS_BIRTH"].to_numpy(), rng, n)
    _consistency(cols, rng, n)
    cols["SK_ID_CURR"] = pl.Series("SK_ID_CURR", ids, dtype=pl.Int64)
    return pl.DataFrame([cols[c] for c in names if c != "TARGET"])


def generate_applications(factors: dict, is_test: np.ndarray, ids: np.ndarray, target_rate: float,
                          rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Application rows for every client, TARGET drawn from the risk: the train clients' rows with it, the test
    clients' without it, and the test clients' outcomes (SK_ID_CURR, TARGET), which mature after the decision."""
    names = TABLES[T].names
    frame = application_rows(factors, ids, rng)
    score = risk_score(factors, application_score(frame))
    intercept = solve_intercept(score[~is_test], target_rate)
    target = draw_target(score, intercept, rng)
    frame = frame.with_columns(pl.Series("TARGET", target)).select(names)
    test = frame.filter(pl.Series(is_test))
    return frame.filter(pl.Series(~is_test)), test.drop("TARGET"), test.select("SK_ID_CURR", "TARGET")
