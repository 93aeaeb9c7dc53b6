"""Reason codes a relationship manager can say aloud: source fields in human units, never derived features.

A derived feature (a ratio, a polynomial term, a one-hot level, an aggregate) is attributed to the fields
it is built from: an application feature to the raw application columns its expression reads (Polars
knows them: `meta.root_names()`), shared equally between them; a history aggregate to its history table.
The contributions of a field are summed, and the `TOP_REASONS` fields with the largest sum are the reasons:
towards refusal for a refused client (its main reasons), towards approval for a granted one (its main
strengths). Only fields the model used (a non-zero contribution) can appear. Each is said in human units:
an age and durations in years (never negative day counts), amounts with thousands separators, shares as
percentages, a category by its level. The explain stage, the API and the dashboard use `reasons`.
"""
from __future__ import annotations

import math
import re

import numpy as np

from creditscore.data.schema import TABLES
from creditscore.features.application import application_expressions
from creditscore.features.build import numeric_columns
from creditscore.features.encoding import key_columns

TOP_REASONS = 4
HISTORY = {"bureau": "Credit-bureau record", "bureau_balance": "Credit-bureau record",
           "previous_application": "Previous applications with us", "POS_CASH_balance": "Point-of-sale and cash loans",
           "installments_payments": "Instalment payment record", "credit_card_balance": "Credit-card use"}
LABELS = {  # what a person calls an application field
    "DAYS_BIRTH": "Age", "DAYS_EMPLOYED": "Time in the current job", "DAYS_REGISTRATION": "Registration last changed",
    "DAYS_ID_PUBLISH": "Identity document last changed", "DAYS_LAST_PHONE_CHANGE": "Phone number last changed",
    "AMT_INCOME_TOTAL": "Yearly income", "AMT_CREDIT": "Credit amount", "AMT_ANNUITY": "Yearly annuity",
    "AMT_GOODS_PRICE": "Price of the goods financed",
    **{f"EXT_SOURCE_{k}": f"External credit score {k} (0 to 1, higher is safer)" for k in (1, 2, 3)},
    "OWN_CAR_AGE": "Car age",
    "CNT_CHILDREN": "Children", "CNT_FAM_MEMBERS": "Family members", "CODE_GENDER": "Gender",
    "REGION_POPULATION_RELATIVE": "Population of the client's region (normalised)",
    "REGION_RATING_CLIENT": "Rating of the client's region", "HOUR_APPR_PROCESS_START": "Hour the application started",
    "NAME_INCOME_TYPE": "Income type", "NAME_EDUCATION_TYPE": "Education", "NAME_FAMILY_STATUS": "Family status",
    "NAME_CONTRACT_TYPE": "Contract type", "NAME_HOUSING_TYPE": "Housing", "OCCUPATION_TYPE": "Occupation",
    "ORGANIZATION_TYPE": "Employer's sector", "FLAG_OWN_CAR": "Owns a car", "FLAG_OWN_REALTY": "Owns real estate",
}
TEXT_COLUMNS = {c for c, kind in TABLES["application_test"].columns if kind == "str"}


def sources_of(spec: dict, manifest: list[dict], features: list[str]) -> dict[str, tuple[str, ...]]:
    """Each feature's source fields: raw application columns, or `history:<table>` for an aggregate."""
    tables = {row["name"]: row["table"] for row in manifest}
    encoded = {row["name"] for row in manifest if row.get("group") == "target_encoding"}
    app = [f for f in features if tables.get(f) == "application" and f not in encoded]
    roots = {}
    for e in application_expressions(spec["vocab"], numeric_columns("application_train"), spec["poly"], only=app,
                                     protected=spec.get("protected", ())):
        roots[e.meta.output_name()] = tuple(sorted(set(e.meta.root_names()) - {"SK_ID_CURR"}))
    out = {}
    for f in features:
        if f in roots and roots[f]:
            out[f] = roots[f]
        elif tables.get(f, "application") != "application":
            out[f] = (f"history:{tables[f]}",)
        else:  # a target-encoded key: the columns it reads (a category, or the loan's amounts)
            out[f] = key_columns(re.sub(r"_TARGET_ENC$", "", f))
    return out


def typical_fields(applications, fields: list[str]) -> dict:
    """Median of each numeric field over the given (cleaned) application rows, for "typical granted client"."""
    out = {}
    for field in fields:
        if field in applications.columns and field not in TEXT_COLUMNS:
            values = applications[field].cast(float).drop_nulls().drop_nans().to_numpy()
            if len(values):
                out[field] = float(np.median(values))
    return out


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def field_label(field: str) -> str:
    """What a person calls a source field (an application column or a history table)."""
    if field.startswith("history:"):
        return HISTORY.get(field.split(":", 1)[1], "Credit history")
    return LABELS.get(field, field.replace("_", " ").capitalize())


def say(field: str, value) -> str:
    """A field's value in human units (the value part of a reason)."""
    if _missing(value):
        return "not employed (pensioner) or not given" if field == "DAYS_EMPLOYED" else "not given"
    if field in TEXT_COLUMNS or isinstance(value, str):
        return str(value)
    value = float(value)
    if field == "DAYS_BIRTH":
        return f"{abs(value) / 365.25:.0f} years"
    if field == "DAYS_EMPLOYED":
        return f"{abs(value) / 365.25:.1f} years"
    if field.startswith("DAYS_"):
        return f"{abs(value) / 365.25:.1f} years ago"
    if field.startswith("AMT_"):
        return f"{value:,.0f}"
    if field.startswith("EXT_SOURCE_"):
        return f"{value:.2f}"
    if field == "OWN_CAR_AGE":
        return f"{value:.0f} years"
    if field.startswith(("CNT_", "REGION_RATING")):
        return f"{value:.0f}"
    if field.startswith("FLAG_"):
        return "yes" if value else "no"
    if field == "HOUR_APPR_PROCESS_START":
        return f"{value:.0f}:00"
    return f"{value:.3g}"


def _history_detail(feature: str, value: float, meaning: str) -> str:
    """The leading aggregate of a history factor, when it reads as a person would say it."""
    if _missing(value):
        return "none on file"
    if re.search(r"SHARE|UTILISATION|INTEREST_RATE", feature):
        return f"{meaning}: {value:.0%}"
    if re.search(r"_DPD_MEAN$|_DBD_MEAN$", feature) and value >= 0:
        return f"{meaning}: {value:.1f} days"
    return ""


def by_field(contrib: np.ndarray, features: list[str], sources: dict[str, tuple[str, ...]]
             ) -> tuple[dict[str, float], dict[str, int]]:
    """Contributions summed per source field (a feature's shared equally between its fields; zero ones left
    out), and each field's leading feature (the index of its largest contribution)."""
    totals: dict[str, float] = {}
    lead: dict[str, int] = {}
    for i, feature in enumerate(features):
        if contrib[i] == 0:
            continue
        fields = sources.get(feature, (feature,))
        for field in fields:
            totals[field] = totals.get(field, 0.0) + float(contrib[i]) / len(fields)
            if field not in lead or abs(contrib[i]) > abs(contrib[lead[field]]):
                lead[field] = i
    return totals, lead


def field_chart(contrib: np.ndarray, features: list[str], sources: dict[str, tuple[str, ...]]) -> list[dict]:
    """Every source field's summed contribution with its label, largest magnitude first (ties by name): the
    bars of the dashboard's explanation chart, grouped as the reasons are."""
    totals, _ = by_field(np.asarray(contrib, dtype=np.float64), features, sources)
    return [{"field": f, "label": field_label(f), "contribution": round(v, 6)}
            for f, v in sorted(totals.items(), key=lambda kv: (-abs(kv[1]), kv[0]))]


def drivers(values: np.ndarray, features: list[str], sources: dict[str, tuple[str, ...]]) -> list[dict]:
    """What drives the model overall: each source field's mean |summed contribution| over the rows of `values`
    (clients × features), shared between fields as `by_field` shares them; largest first."""
    fields = sorted({f for fs in sources.values() for f in fs})
    share = np.zeros((len(features), len(fields)))
    for i, feature in enumerate(features):
        for f in sources[feature]:
            share[i, fields.index(f)] = 1.0 / len(sources[feature])
    mean_abs = np.abs(np.asarray(values, dtype=np.float64) @ share).mean(axis=0)
    return [{"field": fields[j], "label": field_label(fields[j]), "mean_abs_contribution": round(float(mean_abs[j]), 6)}
            for j in np.argsort(-mean_abs, kind="stable")]


def reasons(contrib: np.ndarray, features: list[str], sources: dict[str, tuple[str, ...]], raw: dict,
            x_row: np.ndarray, refused: bool, typical: dict | None = None, meanings: dict | None = None,
            k: int = TOP_REASONS) -> list[dict]:
    """The client's `k` main reasons (refused) or strengths (granted), by source field.

    `raw` holds the client's cleaned application fields, `x_row` its feature values (for history details),
    `typical` a field's value for a typical granted client where known, `meanings` the manifest's meanings.
    """
    contrib = np.asarray(contrib, dtype=np.float64)
    totals, lead = by_field(contrib, features, sources)
    sign = 1.0 if refused else -1.0
    order = sorted((f for f, v in totals.items() if sign * v > 0), key=lambda f: (-sign * totals[f], f))[:k]
    out = []
    for rank, field in enumerate(order, start=1):
        label = field_label(field)
        if field.startswith("history:"):
            i = lead[field]
            detail = _history_detail(features[i], float(x_row[i]), (meanings or {}).get(features[i], ""))
            value, text = None, f"{label}" + (f" ({detail})" if detail else "")
        else:
            value = raw.get(field)
            text = f"{label}: {say(field, value)}"
            usual = (typical or {}).get(field)
            if not _missing(usual) and not _missing(value) and field not in TEXT_COLUMNS:
                text += f" (typical granted client: {say(field, usual)})"
        out.append({"rank": rank, "feature": field, "label": label,
                    "value": None if _missing(value) else (value if isinstance(value, str) else float(value)),
                    "contribution": round(float(totals[field]), 6),
                    "direction": "towards refusal" if refused else "towards approval", "text": text})
    return out
