"""Generate the six history tables for a chunk of clients, linked by SK_ID_CURR/BUREAU/PREV.

Row counts per parent follow the profile's shape, rescaled so totals match the full
Kaggle release per client. The history factors of `latent.py` show only through rows:
overdue bureau credits and late bureau months, refused previous applications, late or
short instalment payments and days past due, and credit-card utilisation.
"""
from __future__ import annotations

import numpy as np
import polars as pl
from scipy.special import expit, logit

from creditscore.data.schema import SENTINEL_DAYS, TABLES
from creditscore.synthetic.marginals import (
    column_stats,
    load_marginals,
    numeric_series,
    quantile_curve,
    sample_codes,
    sample_series,
    scaled_counts,
)

FULL = load_marginals()["full_scale"]
N_FULL = FULL["rows"]["application_train"] + FULL["rows"]["application_test"]
HAS = {t: FULL["distinct_clients_with_rows"][t] / N_FULL for t in ("bureau", "previous_application")}
PER_CLIENT = {t: FULL["rows"][t] / N_FULL for t in FULL["rows"]}
BALANCE_SHARE = 0.476  # share of bureau credits with monthly balance rows in the real data
YEARLY_RATE = {"low_normal": 0.12, "middle": 0.2, "high": 0.32, "low_action": 0.1}


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parent index of each child row and the row's position within its parent."""
    parent = np.repeat(np.arange(counts.shape[0]), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return parent, np.arange(parent.shape[0]) - starts


def _fill(table: str, cols: dict, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """Complete a table from its marginals and order the columns as in the Kaggle file."""
    spec = TABLES[table]
    for c in spec.names:
        if c not in cols:
            cols[c] = sample_series(table, c, n, rng, integer=spec.dtype(c) == "int")
    return pl.DataFrame([cols[c].alias(c) if isinstance(cols[c], pl.Series)
                         else numeric_series(c, np.asarray(cols[c], dtype=float), spec.dtype(c) == "int")
                         for c in spec.names])


def _bernoulli(base: float, strength: float, factor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.random(factor.shape[0]) < expit(logit(base) + strength * factor)


def make_bureau(ids, f, first_id, rng):
    """bureau rows: active credits of risky clients carry more debt and overdue amounts."""
    n = ids.shape[0]
    has = rng.random(n) < HAS["bureau"]
    counts = np.where(has, scaled_counts(load_marginals()["bureau"]["rows_per_SK_ID_CURR"],
                                         PER_CLIENT["bureau"] / HAS["bureau"], rng.random(n)), 0)
    client, _ = _expand(counts)
    m = client.shape[0]
    risk = f["bureau_overdue"][client]
    active = rng.random(m) < np.where(risk > 1.0, 0.5, 0.36)
    status = np.where(active, "Active", np.where(rng.random(m) < 0.005, "Sold", "Closed"))
    days_credit = np.rint(quantile_curve(column_stats("bureau", "DAYS_CREDIT")["quantiles"], rng.random(m)))
    duration = np.rint(rng.gamma(1.5, 400.0, m)) + 30
    end = days_credit + duration
    fact = np.where(active, np.nan, np.minimum(days_credit + np.rint(duration * rng.uniform(0.6, 1.05, m)), -1))
    amount = sample_series("bureau", "AMT_CREDIT_SUM", m, rng).to_numpy()
    debt_share = np.clip(rng.beta(2, 2, m) + 0.18 * risk, 0, 1)
    debt = np.where(active, np.round(amount * debt_share, 2), 0.0)
    overdue = active & _bernoulli(0.01, 1.1, risk, rng)
    cols = {
        "SK_ID_CURR": ids[client], "SK_ID_BUREAU": first_id + np.arange(m),
        "CREDIT_ACTIVE": pl.Series(status), "DAYS_CREDIT": days_credit,
        "CREDIT_DAY_OVERDUE": np.where(overdue, rng.geometric(1 / 40, m), 0),
        "DAYS_CREDIT_ENDDATE": np.where(rng.random(m) < 0.06, np.nan, end), "DAYS_ENDDATE_FACT": fact,
        "AMT_CREDIT_MAX_OVERDUE": np.where(rng.random(m) < 0.64, np.nan,
                                           np.where(_bernoulli(0.15, 1.0, risk, rng), np.round(amount * rng.beta(1, 12, m), 2), 0.0)),
        "AMT_CREDIT_SUM": amount,
        "AMT_CREDIT_SUM_DEBT": np.where(rng.random(m) < 0.14, np.nan, debt),
        "AMT_CREDIT_SUM_OVERDUE": np.where(overdue, np.round(debt * rng.beta(1, 6, m), 2), 0.0),
        "DAYS_CREDIT_UPDATE": np.minimum(np.maximum(days_credit, -np.rint(rng.exponential(300, m))), 0),
    }
    return _fill("bureau", cols, m, rng), client


def make_bureau_balance(bureau: pl.DataFrame, client, f, rng):
    """Monthly status of bureau credits; late statuses 1-5 grow with the client's overdue factor."""
    n = bureau.height
    has = rng.random(n) < BALANCE_SHARE
    counts = np.where(has, scaled_counts(load_marginals()["bureau_balance"]["rows_per_SK_ID_BUREAU"],
                                         PER_CLIENT["bureau_balance"] / PER_CLIENT["bureau"] / BALANCE_SHARE,
                                         rng.random(n)), 0)
    credit, pos = _expand(counts)
    m = credit.shape[0]
    closed = (bureau["CREDIT_ACTIVE"] == "Closed").to_numpy()[credit]
    risk = f["bureau_overdue"][client[credit]]
    months = -pos - rng.integers(0, 3, n)[credit]
    late = _bernoulli(0.012, 1.2, risk, rng)
    codes, labels = sample_codes({"values": [["0", 0.45], ["X", 0.30], ["C", 0.25]]}, rng.random(m))
    status = np.asarray(labels, dtype=object)[codes]
    status[closed & (pos < counts[credit] * 0.4)] = "C"
    status[late] = np.asarray(["1", "2", "3", "4", "5"], dtype=object)[np.minimum(rng.geometric(0.55, m) - 1, 4)][late]
    cols = {"SK_ID_BUREAU": bureau["SK_ID_BUREAU"].to_numpy()[credit], "MONTHS_BALANCE": months,
            "STATUS": pl.Series("STATUS", status.astype(str))}
    return _fill("bureau_balance", cols, m, rng)


def make_previous(ids, f, first_id, rng):
    """previous_application rows: risky clients are refused more and priced higher."""
    n = ids.shape[0]
    has = rng.random(n) < HAS["previous_application"]
    counts = np.where(has, scaled_counts(load_marginals()["previous_application"]["rows_per_SK_ID_CURR"],
                                         PER_CLIENT["previous_application"] / HAS["previous_application"],
                                         rng.random(n)), 0)
    client, _ = _expand(counts)
    m = client.shape[0]
    refused = _bernoulli(0.15, 0.9, f["refused_previous"][client], rng)
    other, other_labels = sample_codes({"values": [["Approved", 0.75], ["Canceled", 0.225], ["Unused offer", 0.025]]},
                                       rng.random(m))
    status = np.where(refused, "Refused", np.asarray(other_labels, dtype=object)[other])
    approved = status == "Approved"
    portfolio = sample_series("previous_application", "NAME_PORTFOLIO", m, rng).to_numpy().astype(object)
    portfolio[(portfolio == "XNA") & approved] = "POS"
    yield_group = np.where(f["refused_previous"][client] + rng.standard_normal(m) > 0.8, "high",
                           np.where(rng.random(m) < 0.5, "middle", "low_normal"))
    term = np.asarray([6, 10, 12, 18, 24, 36, 48, 60])[rng.integers(0, 8, m)].astype(float)
    credit = sample_series("previous_application", "AMT_CREDIT", m, rng, missing_u=np.ones(m)).to_numpy()
    credit = np.where(credit <= 0, 45000.0, credit)
    r = np.vectorize(YEARLY_RATE.get)(yield_group) / 12
    annuity = np.round(credit * r / (1 - (1 + r) ** -term), 3)
    decision = np.rint(quantile_curve(column_stats("previous_application", "DAYS_DECISION")["quantiles"], rng.random(m)))
    first_due = np.where(approved, decision + 30, np.nan)
    last_1st = first_due + 30 * (term - 1)
    finished = approved & (last_1st < -30)
    cols = {
        "SK_ID_PREV": first_id + np.arange(m), "SK_ID_CURR": ids[client],
        "NAME_CONTRACT_STATUS": pl.Series(status.astype(str)), "NAME_PORTFOLIO": pl.Series(portfolio.astype(str)),
        "NAME_YIELD_GROUP": pl.Series(yield_group.astype(str)), "CNT_PAYMENT": term,
        "AMT_CREDIT": credit, "AMT_APPLICATION": np.round(credit * rng.uniform(0.85, 1.0, m), 1),
        "AMT_GOODS_PRICE": np.round(credit * rng.uniform(0.85, 1.0, m), 1), "AMT_ANNUITY": annuity,
        "DAYS_DECISION": decision,
        "CODE_REJECT_REASON": pl.Series(np.where(refused, np.asarray(["HC", "LIMIT", "SCO", "SCOFR"])[rng.integers(0, 4, m)], "XAP")),
        "DAYS_FIRST_DRAWING": np.where(approved, np.where(rng.random(m) < 0.94, SENTINEL_DAYS, decision + 5), np.nan),
        "DAYS_FIRST_DUE": first_due, "DAYS_LAST_DUE_1ST_VERSION": last_1st,
        "DAYS_LAST_DUE": np.where(finished, last_1st, np.where(approved, SENTINEL_DAYS, np.nan)),
        "DAYS_TERMINATION": np.where(finished, last_1st + 3, np.where(approved, SENTINEL_DAYS, np.nan)),
    }
    return _fill("previous_application", cols, m, rng), client


def _monthly_counts(parents: np.ndarray, rows_per_client: float, n_clients: int, table: str, rng) -> np.ndarray:
    mean = rows_per_client * n_clients / max(int(parents.sum()), 1)
    shape = load_marginals()[table]["rows_per_SK_ID_PREV"]
    return np.where(parents, scaled_counts(shape, mean, rng.random(parents.shape[0])), 0)


def make_pos_cash(prev: pl.DataFrame, client, f, n_clients, rng):
    """POS_CASH_balance months of approved non-card loans; days past due follow the late factor."""
    eligible = ((prev["NAME_CONTRACT_STATUS"] == "Approved") & (prev["NAME_PORTFOLIO"] != "Cards")).to_numpy()
    counts = _monthly_counts(eligible, PER_CLIENT["POS_CASH_balance"], n_clients, "POS_CASH_balance", rng)
    loan, pos = _expand(counts)
    m = loan.shape[0]
    term = prev["CNT_PAYMENT"].to_numpy()[loan]
    months = -1 - pos - rng.integers(0, 4, prev.height)[loan]
    future = np.maximum(term - (counts[loan] - pos), 0)
    late = _bernoulli(0.012, 1.3, f["late_payment"][client[loan]], rng)
    dpd = np.where(late, rng.geometric(1 / 12, m), 0)
    cols = {"SK_ID_PREV": prev["SK_ID_PREV"].to_numpy()[loan], "SK_ID_CURR": prev["SK_ID_CURR"].to_numpy()[loan],
            "MONTHS_BALANCE": months, "CNT_INSTALMENT": term, "CNT_INSTALMENT_FUTURE": future,
            "NAME_CONTRACT_STATUS": pl.Series(np.where(future == 0, "Completed", "Active")),
            "SK_DPD": dpd, "SK_DPD_DEF": np.where(dpd > 30, dpd - 30, 0)}
    return _fill("POS_CASH_balance", cols, m, rng)


def make_installments(prev: pl.DataFrame, client, f, n_clients, rng):
    """Instalments of approved loans; risky clients pay late and short more often."""
    eligible = (prev["NAME_CONTRACT_STATUS"] == "Approved").to_numpy()
    counts = _monthly_counts(eligible, PER_CLIENT["installments_payments"], n_clients, "installments_payments", rng)
    loan, pos = _expand(counts)
    m = loan.shape[0]
    risk = f["late_payment"][client[loan]]
    last_due = -1 - rng.integers(0, 60, prev.height)[loan]
    due = last_due - 30 * (counts[loan] - 1 - pos)
    late = _bernoulli(0.06, 1.1, risk, rng)
    entry = np.where(late, due + rng.geometric(1 / 9, m), due - rng.geometric(1 / 8, m) + 1)
    amount = np.round(np.nan_to_num(prev["AMT_ANNUITY"].to_numpy()[loan], nan=9000.0), 3)
    short = _bernoulli(0.04, 0.9, risk, rng)
    cols = {"SK_ID_PREV": prev["SK_ID_PREV"].to_numpy()[loan], "SK_ID_CURR": prev["SK_ID_CURR"].to_numpy()[loan],
            "NUM_INSTALMENT_VERSION": np.where(rng.random(m) < 0.1, 0, 1), "NUM_INSTALMENT_NUMBER": pos + 1,
            "DAYS_INSTALMENT": due, "DAYS_ENTRY_PAYMENT": np.minimum(entry, -1), "AMT_INSTALMENT": amount,
            "AMT_PAYMENT": np.where(short, np.round(amount * rng.uniform(0, 0.9, m), 3), amount)}
    return _fill("installments_payments", cols, m, rng)


def make_credit_card(prev: pl.DataFrame, client, f, n_clients, rng):
    """credit_card_balance months of approved card loans; utilisation follows the card factor."""
    eligible = ((prev["NAME_CONTRACT_STATUS"] == "Approved") & (prev["NAME_PORTFOLIO"] == "Cards")).to_numpy()
    counts = _monthly_counts(eligible, PER_CLIENT["credit_card_balance"], n_clients, "credit_card_balance", rng)
    card, pos = _expand(counts)
    m = card.shape[0]
    limit = np.asarray([45000, 67500, 90000, 135000, 180000, 225000, 270000, 450000])[
        rng.integers(0, 8, prev.height)][card].astype(float)
    util = np.clip(expit(-1.3 + 1.2 * f["card_utilisation"][client[card]] + 0.4 * rng.standard_normal(m)), 0, 1.05)
    balance = np.round(limit * util, 3)
    late = _bernoulli(0.02, 1.0, f["late_payment"][client[card]], rng)
    cols = {"SK_ID_PREV": prev["SK_ID_PREV"].to_numpy()[card], "SK_ID_CURR": prev["SK_ID_CURR"].to_numpy()[card],
            "MONTHS_BALANCE": -1 - pos, "AMT_BALANCE": balance, "AMT_CREDIT_LIMIT_ACTUAL": limit,
            "AMT_INST_MIN_REGULARITY": np.round(balance * 0.05, 3), "AMT_RECEIVABLE_PRINCIPAL": np.round(balance * 0.96, 3),
            "AMT_RECIVABLE": balance, "AMT_TOTAL_RECEIVABLE": balance,
            "NAME_CONTRACT_STATUS": pl.Series(np.full(m, "Active")),
            "SK_DPD": np.where(late, rng.geometric(1 / 10, m), 0), "SK_DPD_DEF": np.where(late & (rng.random(m) < 0.3), 1, 0)}
    return _fill("credit_card_balance", cols, m, rng)


def generate_history(ids: np.ndarray, f: dict, first_ids: dict, rng: np.random.Generator) -> dict[str, pl.DataFrame]:
    """All six history tables for one chunk of clients (ids with their factor slices)."""
    n = ids.shape[0]
    bureau, b_client = make_bureau(ids, f, first_ids["bureau"], rng)
    prev, p_client = make_previous(ids, f, first_ids["previous"], rng)
    return {"bureau": bureau, "bureau_balance": make_bureau_balance(bureau, b_client, f, rng),
            "previous_application": prev,
            "POS_CASH_balance": make_pos_cash(prev, p_client, f, n, rng),
            "installments_payments": make_installments(prev, p_client, f, n, rng),
            "credit_card_balance": make_credit_card(prev, p_client, f, n, rng)}
