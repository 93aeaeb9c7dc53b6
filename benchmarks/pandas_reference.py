"""A straightforward pandas implementation of the engineer stage's features, for the side-by-side benchmark.

Written the way a notebook would (groupby().agg() on each table, one-hot with ==, ratios with /),
with the same vocabulary and the same conventions (missing ratios on zero denominators, sample
variance, pandas' sum of nothing = 0). `benchmarks/bench_engineer.py` checks both give the same values.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from creditscore.features.application import polynomial_terms
from creditscore.features.core import NULL_LEVEL, clean_name
from creditscore.features.history import BUREAU_NUM, CARD_AGGS, INSTALMENT_NUM, POS_NUM, PREVIOUS_NUM

KEY = "SK_ID_CURR"


def _div(a: pd.Series, b: pd.Series) -> pd.Series:
    return a.astype(float) / b.where(b != 0)


def _indicators(df: pd.DataFrame, column: str, levels: list[str], prefix: str = "") -> pd.DataFrame:
    out = {}
    for level in levels:
        hit = df[column].isna() if level == NULL_LEVEL else df[column] == level
        out[clean_name(f"{prefix}{column}_{level}")] = hit.astype(float)
    return pd.DataFrame(out, index=df.index)


def _agg(df: pd.DataFrame, key: str, spec: dict, prefix: str) -> pd.DataFrame:
    renamed = {"size": "size", "nunique": "nunique", "var": "var"}
    out = df.groupby(key).agg({c: [renamed.get(a, a) for a in aggs] for c, aggs in spec.items()})
    out.columns = [f"{prefix}{c}_{a.upper()}" for c, a in out.columns]
    return out


def _with_shares(df: pd.DataFrame, vocab: dict, table: str, key: str, spec: dict, prefix: str) -> pd.DataFrame:
    ind = pd.concat([_indicators(df, c, lv) for c, lv in vocab.get(table, {}).items()], axis=1)
    num = _agg(df, key, spec, prefix)
    shares = pd.concat([df[[key]], ind], axis=1).groupby(key).mean()
    shares.columns = [f"{prefix}{c}_MEAN" for c in shares.columns]
    return num.join(shares)


def bureau(b: pd.DataFrame, bb: pd.DataFrame, vocab: dict) -> pd.DataFrame:
    status = vocab["bureau_balance"]["STATUS"]
    bb_ind = pd.concat([bb[["SK_ID_BUREAU"]], _indicators(bb, "STATUS", status)], axis=1)
    bb_agg = _agg(bb, "SK_ID_BUREAU", {"MONTHS_BALANCE": ["min", "max", "size"]}, "")
    bb_shares = bb_ind.groupby("SK_ID_BUREAU").mean()
    bb_shares.columns = [f"{c}_MEAN" for c in bb_shares.columns]
    credits = b.join(bb_agg.join(bb_shares), on="SK_ID_BUREAU")
    every = _with_shares(credits, vocab, "bureau", KEY, BUREAU_NUM, "BURO_")
    every = every.join(_agg(credits, KEY, {c: ["mean"] for c in bb_shares.columns}, "BURO_"))
    active = _agg(credits[credits["CREDIT_ACTIVE"] == "Active"], KEY, BUREAU_NUM, "ACTIVE_")
    closed = _agg(credits[credits["CREDIT_ACTIVE"] == "Closed"], KEY, BUREAU_NUM, "CLOSED_")
    return every.join(active).join(closed)


def previous(p: pd.DataFrame, vocab: dict) -> pd.DataFrame:
    p = p.assign(APP_CREDIT_PERC=_div(p["AMT_APPLICATION"], p["AMT_CREDIT"]))
    every = _with_shares(p, vocab, "previous_application", KEY, PREVIOUS_NUM, "PREV_")
    approved = _agg(p[p["NAME_CONTRACT_STATUS"] == "Approved"], KEY, PREVIOUS_NUM, "APPROVED_")
    refused = _agg(p[p["NAME_CONTRACT_STATUS"] == "Refused"], KEY, PREVIOUS_NUM, "REFUSED_")
    return every.join(approved).join(refused)


def pos_cash(pos: pd.DataFrame, vocab: dict) -> pd.DataFrame:
    out = _with_shares(pos, vocab, "POS_CASH_balance", KEY, POS_NUM, "POS_")
    return out.join(pos.groupby(KEY).size().rename("POS_COUNT"))


def _instalment_columns(ins: pd.DataFrame) -> pd.DataFrame:
    late = ins["DAYS_ENTRY_PAYMENT"] - ins["DAYS_INSTALMENT"]
    return ins.assign(PAYMENT_PERC=_div(ins["AMT_PAYMENT"], ins["AMT_INSTALMENT"]),
                      PAYMENT_DIFF=ins["AMT_INSTALMENT"] - ins["AMT_PAYMENT"],
                      DPD=late.clip(lower=0), DBD=(-late).clip(lower=0))


def installments(ins: pd.DataFrame) -> pd.DataFrame:
    ins = _instalment_columns(ins)
    return _agg(ins, KEY, INSTALMENT_NUM, "INSTAL_").join(ins.groupby(KEY).size().rename("INSTAL_COUNT"))


def credit_card(cc: pd.DataFrame, vocab: dict, numeric: list[str]) -> pd.DataFrame:
    ind = pd.concat([_indicators(cc, c, lv) for c, lv in vocab.get("credit_card_balance", {}).items()], axis=1)
    cc = pd.concat([cc, ind], axis=1)
    cols = [c for c in numeric if c not in ("SK_ID_PREV", KEY)] + list(ind.columns)
    return _agg(cc, KEY, {c: CARD_AGGS for c in cols}, "CC_").join(cc.groupby(KEY).size().rename("CC_COUNT"))


def _masked_mean(values: pd.Series, keep: pd.Series, keys: pd.Series) -> pd.Series:
    return values.where(keep).groupby(keys).mean()


def extras(b, bb, p, ins, pos, cc) -> pd.DataFrame:
    late_months = bb.assign(late=bb["STATUS"].isin(["1", "2", "3", "4", "5"])).groupby("SK_ID_BUREAU").agg(
        _late_months=("late", "sum"), _months=("late", "size"))
    credits = b.join(late_months, on="SK_ID_BUREAU")
    active = credits["CREDIT_ACTIVE"] == "Active"
    g = credits.groupby(KEY)
    out = pd.DataFrame({
        "BURO_ACTIVE_DEBT_CREDIT_RATIO": _div(credits["AMT_CREDIT_SUM_DEBT"].where(active).groupby(credits[KEY]).sum(),
                                              credits["AMT_CREDIT_SUM"].where(active).groupby(credits[KEY]).sum()),
        "BURO_OVERDUE_SHARE": (credits["AMT_CREDIT_SUM_OVERDUE"] > 0).groupby(credits[KEY]).mean(),
        "BURO_RECENT_COUNT": (credits["DAYS_CREDIT"] >= -365).groupby(credits[KEY]).sum().astype(float),
        "BURO_LATE_MONTH_SHARE": _div(g["_late_months"].sum(), g["_months"].sum()),
    })
    rate = _div(_div(p["AMT_ANNUITY"] * p["CNT_PAYMENT"], p["AMT_CREDIT"]) - 1, p["CNT_PAYMENT"] / 12)
    refused = p["NAME_CONTRACT_STATUS"] == "Refused"
    recent = p["DAYS_DECISION"] >= -365
    prev = pd.DataFrame({
        "PREV_INTEREST_RATE_MIN": rate.groupby(p[KEY]).min(), "PREV_INTEREST_RATE_MAX": rate.groupby(p[KEY]).max(),
        "PREV_INTEREST_RATE_MEAN": rate.groupby(p[KEY]).mean(),
        "PREV_REFUSED_COUNT": refused.groupby(p[KEY]).sum().astype(float),
        "PREV_RECENT_REFUSED_SHARE": _masked_mean(refused.astype(float), recent, p[KEY]),
        "PREV_RECENT_COUNT": recent.groupby(p[KEY]).sum().astype(float),
    })
    ins = _instalment_columns(ins)
    late = (ins["DPD"] > 0).astype(float).where(ins["DPD"].notna())
    short = (ins["PAYMENT_DIFF"] > 0).astype(float).where(ins["PAYMENT_DIFF"].notna())
    rec = ins["DAYS_INSTALMENT"] >= -365
    inst = pd.DataFrame({
        "INSTAL_LATE_SHARE": late.groupby(ins[KEY]).mean(), "INSTAL_SHORT_SHARE": short.groupby(ins[KEY]).mean(),
        "INSTAL_RECENT_LATE_SHARE": _masked_mean(late, rec, ins[KEY]),
        "INSTAL_RECENT_DPD_MEAN": _masked_mean(ins["DPD"], rec, ins[KEY]),
        "INSTAL_RECENT_DPD_MAX": ins["DPD"].where(rec).groupby(ins[KEY]).max(),
        "INSTAL_RECENT_PAYMENT_PERC_MEAN": _masked_mean(ins["PAYMENT_PERC"], rec, ins[KEY]),
    })
    prec = pos["MONTHS_BALANCE"] >= -12
    pos_out = pd.DataFrame({"POS_RECENT_SK_DPD_MEAN": _masked_mean(pos["SK_DPD"].astype(float), prec, pos[KEY]),
                            "POS_RECENT_LATE_SHARE": _masked_mean((pos["SK_DPD"] > 0).astype(float), prec, pos[KEY])})
    util = _div(cc["AMT_BALANCE"], cc["AMT_CREDIT_LIMIT_ACTUAL"])
    crec = cc["MONTHS_BALANCE"] >= -12
    cards = pd.DataFrame({"CC_UTILISATION_MEAN": util.groupby(cc[KEY]).mean(),
                          "CC_UTILISATION_MAX": util.groupby(cc[KEY]).max(),
                          "CC_RECENT_UTILISATION_MEAN": _masked_mean(util, crec, cc[KEY])})
    return out, prev, inst, pos_out, cards


def application(app: pd.DataFrame, vocab: dict, numeric: list[str], poly: dict) -> pd.DataFrame:
    c = app
    out = {n: c[n].astype(float) for n in numeric}
    for column, levels in vocab["application"].items():
        out.update(_indicators(c, column, levels).to_dict("series"))
    out.update({
        "CREDIT_INCOME_RATIO": _div(c["AMT_CREDIT"], c["AMT_INCOME_TOTAL"]),
        "ANNUITY_INCOME_RATIO": _div(c["AMT_ANNUITY"], c["AMT_INCOME_TOTAL"]),
        "PAYMENT_RATE": _div(c["AMT_ANNUITY"], c["AMT_CREDIT"]), "CREDIT_TERM_YEARS": _div(c["AMT_CREDIT"], c["AMT_ANNUITY"]),
        "INCOME_PER_PERSON": _div(c["AMT_INCOME_TOTAL"], c["CNT_FAM_MEMBERS"]),
        "DAYS_EMPLOYED_PERC": _div(c["DAYS_EMPLOYED"], c["DAYS_BIRTH"]),
        "GOODS_CREDIT_RATIO": _div(c["AMT_GOODS_PRICE"], c["AMT_CREDIT"]),
        "CREDIT_GOODS_DIFF": c["AMT_CREDIT"] - c["AMT_GOODS_PRICE"],
        "CHILDREN_RATIO": _div(c["CNT_CHILDREN"], c["CNT_FAM_MEMBERS"]),
        "CAR_AGE_BIRTH_RATIO": _div(c["OWN_CAR_AGE"], c["DAYS_BIRTH"]),
        "PHONE_CHANGE_BIRTH_RATIO": _div(c["DAYS_LAST_PHONE_CHANGE"], c["DAYS_BIRTH"]),
        "AGE_YEARS": -c["DAYS_BIRTH"] / 365.25,
        "DOCUMENT_COUNT": c[[f"FLAG_DOCUMENT_{k}" for k in range(2, 22)]].sum(axis=1).astype(float),
        "BUREAU_REQUEST_COUNT": c[[f"AMT_REQ_CREDIT_BUREAU_{p}" for p in ("HOUR", "DAY", "WEEK", "MON", "QRT",
                                                                         "YEAR")]].sum(axis=1),
    })
    ext = c[["EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"]]
    out.update({"EXT_SOURCE_MEAN": ext.mean(axis=1), "EXT_SOURCE_STD": ext.std(axis=1),
                "EXT_SOURCE_PROD": ext.prod(axis=1, min_count=3), "EXT_SOURCE_MIN": ext.min(axis=1),
                "EXT_SOURCE_MAX": ext.max(axis=1)})
    for name, combo in polynomial_terms(poly["columns"], int(poly["degree"])):
        out[name] = np.prod([c[x].astype(float) for x in combo], axis=0)
    return pd.DataFrame(out, index=app.index).set_index(app[KEY])


def build(app: pd.DataFrame, t: dict[str, pd.DataFrame], spec: dict, app_numeric: list[str],
          card_numeric: list[str]) -> pd.DataFrame:
    """Every feature of the spec's groups, one row per application, in input order."""
    frame = application(app, spec["vocab"], app_numeric, spec["poly"])
    parts = [bureau(t["bureau"], t["bureau_balance"], spec["vocab"]), previous(t["previous_application"], spec["vocab"]),
             pos_cash(t["POS_CASH_balance"], spec["vocab"]), installments(t["installments_payments"]),
             credit_card(t["credit_card_balance"], spec["vocab"], card_numeric),
             *extras(t["bureau"], t["bureau_balance"], t["previous_application"], t["installments_payments"],
                     t["POS_CASH_balance"], t["credit_card_balance"])]
    for part in parts:
        frame = frame.join(part)
    return frame

