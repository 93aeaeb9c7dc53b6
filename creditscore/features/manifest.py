"""The feature manifest: name, source table, group, dtype and a one-line meaning for every feature.

Explanations and the dashboard show these meanings instead of raw names. Meanings are composed from
our own wording of each raw column, the aggregation and the subset of rows it covers.
"""
from __future__ import annotations

import re

from creditscore.data.schema import TABLES
from creditscore.features.application import BUSINESS

RAW = {c for t in TABLES.values() for c in t.names} | {"APP_CREDIT_PERC", "DPD", "DBD", "PAYMENT_PERC", "PAYMENT_DIFF"}
TEXT = sorted({c for t in TABLES.values() for c, kind in t.columns if kind == "str"}, key=len, reverse=True)

COLUMN_MEANINGS = {
    "EXT_SOURCE_1": "external credit score 1", "EXT_SOURCE_2": "external credit score 2",
    "EXT_SOURCE_3": "external credit score 3", "DAYS_BIRTH": "age in days (negative)",
    "DAYS_EMPLOYED": "days in the current job (negative)", "AMT_INCOME_TOTAL": "yearly income",
    "AMT_CREDIT": "credit amount", "AMT_ANNUITY": "loan annuity", "AMT_GOODS_PRICE": "price of the goods financed",
    "CODE_GENDER": "gender", "NAME_EDUCATION_TYPE": "education level", "REGION_RATING_CLIENT": "rating of the client's region",
    "DAYS_ID_PUBLISH": "days since the identity document changed", "DAYS_LAST_PHONE_CHANGE": "days since the phone changed",
    "DAYS_REGISTRATION": "days since the registration changed", "OWN_CAR_AGE": "age of the client's car",
    "CNT_FAM_MEMBERS": "family members", "CNT_CHILDREN": "children", "ORGANIZATION_TYPE": "employer's sector",
    "OCCUPATION_TYPE": "occupation", "NAME_INCOME_TYPE": "income type", "NAME_CONTRACT_TYPE": "contract type",
    "DAYS_CREDIT": "days since the bureau credit was granted", "CREDIT_DAY_OVERDUE": "days overdue on a bureau credit",
    "AMT_CREDIT_SUM": "amount of a bureau credit", "AMT_CREDIT_SUM_DEBT": "current debt on a bureau credit",
    "AMT_CREDIT_SUM_OVERDUE": "overdue amount on a bureau credit", "AMT_CREDIT_MAX_OVERDUE": "largest overdue amount so far",
    "AMT_CREDIT_SUM_LIMIT": "credit limit of a bureau credit card", "DAYS_CREDIT_ENDDATE": "days until a bureau credit ends",
    "CREDIT_ACTIVE": "status of a bureau credit", "STATUS": "monthly bureau status (0 on time, 1-5 months late, C closed)",
    "NAME_CONTRACT_STATUS": "status of the contract", "DAYS_DECISION": "days since the decision on a previous application",
    "AMT_APPLICATION": "amount asked on a previous application", "APP_CREDIT_PERC": "amount asked / amount granted",
    "CNT_PAYMENT": "term of a previous loan in months", "SK_DPD": "days past due", "SK_DPD_DEF": "days past due (tolerance applied)",
    "DPD": "days an instalment was paid late", "DBD": "days an instalment was paid early",
    "PAYMENT_PERC": "amount paid / instalment due", "PAYMENT_DIFF": "instalment due minus amount paid",
    "AMT_PAYMENT": "amount paid", "AMT_INSTALMENT": "instalment due", "AMT_BALANCE": "credit-card balance",
    "AMT_CREDIT_LIMIT_ACTUAL": "credit-card limit", "MONTHS_BALANCE": "month of the record (negative)",
}
AGG_WORDS = {"MIN": "lowest", "MAX": "highest", "MEAN": "average", "SUM": "total", "VAR": "variance of",
             "SIZE": "number of months of", "NUNIQUE": "number of distinct", "COUNT": "number of rows"}
SCOPES = [  # prefix, source table, words
    ("BURO_", "bureau", "over all credit-bureau credits"), ("ACTIVE_", "bureau", "over active credit-bureau credits"),
    ("CLOSED_", "bureau", "over closed credit-bureau credits"),
    ("PREV_", "previous_application", "over previous applications"),
    ("APPROVED_", "previous_application", "over approved previous applications"),
    ("REFUSED_", "previous_application", "over refused previous applications"),
    ("POS_", "POS_CASH_balance", "over monthly POS and cash loan balances"),
    ("INSTAL_", "installments_payments", "over past instalments"),
    ("CC_", "credit_card_balance", "over monthly credit-card balances"),
]
DERIVED = {
    "EXT_SOURCE_MEAN": "average of the external credit scores present",
    "EXT_SOURCE_STD": "spread of the external credit scores present",
    "EXT_SOURCE_PROD": "product of the three external credit scores",
    "EXT_SOURCE_MIN": "lowest external credit score", "EXT_SOURCE_MAX": "highest external credit score",
    "DOCUMENT_COUNT": "number of documents provided", "BUREAU_REQUEST_COUNT": "credit-bureau enquiries in the last year",
}
WORDS = {"AMT": "amount", "CNT": "count of", "DAYS": "days", "REQ": "requests", "FLAG": "flag", "NUM": "number",
         "AVG": "average", "MEDI": "median", "MODE": "mode", "REG": "registered", "OBS": "observed",
         "DEF": "defaulted", "ANOM": "was the 'no date' placeholder"}


def humanize(column: str) -> str:
    """Our wording of a raw column, or its name spelled out."""
    if column in COLUMN_MEANINGS:
        return COLUMN_MEANINGS[column]
    return " ".join(WORDS.get(t, t.lower()) for t in column.split("_") if t)


def _split_agg(rest: str) -> tuple[str, str]:
    match = re.match(r"(.+)_(MIN|MAX|MEAN|SUM|VAR|SIZE|NUNIQUE)$", rest)
    return (match.group(1), match.group(2)) if match else (rest, "")


def _indicator(column: str) -> str | None:
    text = next((t for t in TEXT if column.startswith(t + "_")), None)
    return f"({humanize(text)} is {column[len(text) + 1:].replace('_', ' ')})" if text else None


def _phrase(column: str) -> str:
    """Words for a column, a category indicator (COLUMN_level) or a per-credit aggregate (COLUMN_AGG)."""
    if column in RAW or column.endswith("_ANOM"):
        return humanize(column)
    inner, agg = _split_agg(column)
    if agg == "SIZE":
        return "number of monthly records per credit"
    if agg and (inner in RAW or _indicator(inner)):
        return f"{AGG_WORDS[agg]} {_phrase(inner)} per credit"
    return _indicator(column) or humanize(column)


def _power(part: str) -> str:
    base, _, power = part.partition("_POW")
    return humanize(base) + {"2": " squared", "3": " cubed"}.get(power, f" to the power {power}" if power else "")


def describe(name: str, extra: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """(source table, one-line meaning) of a feature name."""
    if name in extra:
        return extra[name]
    if name in BUSINESS:
        return "application", BUSINESS[name][1]
    if name in DERIVED:
        return "application", DERIVED[name]
    if name.startswith("POLY_"):
        return "application", "product of " + " and ".join(_power(p) for p in name[5:].split("_X_"))
    for prefix, table, scope in SCOPES:
        if name.startswith(prefix):
            rest = name[len(prefix):]
            if rest == "COUNT" or rest.endswith("_SIZE"):
                return table, f"number of {'rows' if rest == 'COUNT' else 'monthly records'} {scope}"
            column, agg = _split_agg(rest)
            return table, f"{AGG_WORDS.get(agg, '')} {_phrase(column)} {scope}".strip()
    return "application", _phrase(name)


def build_manifest(names: list[str], groups: dict[str, str], extra: dict[str, tuple[str, str]]) -> list[dict]:
    """One entry per feature: name, table, group, dtype and meaning."""
    entries = []
    for name in names:
        table, meaning = describe(name, extra)
        entries.append({"name": name, "table": table, "group": groups.get(name, "application"),
                        "dtype": "float32", "meaning": meaning})
    return entries
