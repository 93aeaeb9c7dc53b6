"""Request validation with pydantic v2: the Kaggle fields with their types and plausible ranges.

Models are built from the declared schema (`creditscore.data.schema`), so a field the pipeline reads is a
field the API accepts, with the same type. Numbers are strict (a string or a boolean is refused, an
integer column takes whole numbers only); ranges refuse values no real applicant has (a negative
income, a birth 200 years ago). Every error names the field's path and the problem.
"""
from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from creditscore.data.schema import HISTORY_TABLES, SENTINEL_DAYS, TABLES

MAX_BATCH = 1000            # applications per request
MAX_HISTORY_ROWS = 20_000   # rows per history table per request
MAX_ID = 2**53 - 1          # ids (SK_ID_*) are whole numbers 0..MAX_ID, answered exactly as sent (JavaScript-safe)
YEAR = 365.25
REQUIRED = ("AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "DAYS_BIRTH")


def _bounds(column: str) -> dict:
    """Plausible range of a numeric application or history column (inclusive unless noted)."""
    if column == "DAYS_BIRTH":
        return {"ge": -round(100 * YEAR), "le": -round(18 * YEAR)}  # 18 to 100 years old
    if column.startswith("DAYS_"):
        return {"ge": -round(100 * YEAR), "le": SENTINEL_DAYS}  # past dates; 365243 is Kaggle's "no date"
    if column in ("AMT_INCOME_TOTAL", "AMT_CREDIT"):
        return {"gt": 0, "le": 1e10}
    if column.startswith("AMT_"):
        return {"ge": -1e10, "le": 1e10} if column.startswith(("AMT_BALANCE", "AMT_RECIVABLE",
                                                               "AMT_TOTAL_RECEIVABLE", "AMT_RECEIVABLE",
                                                               "AMT_INST", "AMT_DRAWINGS",
                                                               "AMT_CREDIT_SUM")) else {"ge": 0, "le": 1e10}
    if column.startswith("EXT_SOURCE_") or column.endswith(("_AVG", "_MODE", "_MEDI")):
        return {"ge": 0, "le": 1}
    if column.startswith(("FLAG_", "REG_", "LIVE_", "NFLAG_")):
        return {"ge": 0, "le": 1}
    if column in ("CNT_CHILDREN", "OWN_CAR_AGE"):
        return {"ge": 0, "le": 100}
    if column == "CNT_FAM_MEMBERS":
        return {"ge": 1, "le": 100}
    if column.startswith("REGION_RATING"):
        return {"ge": 1, "le": 3}
    if column == "HOUR_APPR_PROCESS_START":
        return {"ge": 0, "le": 23}
    if column.startswith(("SK_ID_", "CNT_", "SK_DPD", "OBS_", "DEF_", "NUM_")):
        return {"ge": 0}
    if column == "MONTHS_BALANCE":
        return {"ge": -1200, "le": 0}
    return {}


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _whole(value: float | None) -> float | None:
    if value is not None and value != int(value):
        raise ValueError("must be a whole number")
    return value


def _exact_id(value):
    """5.0 is the integer 5 in JSON; a float id is taken only where it is exact (2**53 at most)."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_ID else value


def _field_type(column: str, kind: str):
    if column.startswith("SK_ID_"):  # an int end to end: a float would round ids above 2**53
        return Annotated[int | None, Field(default=None, strict=True, ge=0, le=MAX_ID), BeforeValidator(_exact_id)]
    if kind == "str":
        return Annotated[str | None, Field(default=None, strict=True, min_length=1, max_length=100)]
    checks = [AfterValidator(_finite)] + ([AfterValidator(_whole)] if kind == "int" else [])
    whole = {"json_schema_extra": {"multipleOf": 1}} if kind == "int" else {}  # documents what _whole enforces
    return Annotated[float | None, Field(default=None, strict=True, **_bounds(column), **whole), *checks]


def _row_model(table: str, required: tuple[str, ...] = ()) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for column, kind in TABLES[table].columns:
        if column == "TARGET":
            continue
        annotated = _field_type(column, kind)
        fields[column] = (annotated, ...) if column in required else (annotated, None)
    return create_model(f"{table}_row", __config__=ConfigDict(extra="forbid"), **fields)


Application = _row_model("application_test", REQUIRED)
HISTORY_MODELS = {t: _row_model(t, tuple(c for c, _ in TABLES[t].columns if c.startswith("SK_ID_")))
                  for t in HISTORY_TABLES}
History = create_model("History", __config__=ConfigDict(extra="forbid"),
                       **{t: (list[HISTORY_MODELS[t]] | None, Field(default=None, max_length=MAX_HISTORY_ROWS))
                          for t in HISTORY_TABLES})


class PredictRequest(BaseModel):
    """One application (`application`) or a batch (`applications`), raw Kaggle fields; optional history."""
    model_config = ConfigDict(extra="forbid")
    application: Application | None = None
    applications: list[Application] | None = Field(default=None, min_length=1, max_length=MAX_BATCH)
    history: History | None = None
    explain: bool = Field(default=False, strict=True)

    @model_validator(mode="after")
    def _one_shape(self):
        if (self.application is None) == (self.applications is None):
            raise ValueError("give exactly one of 'application' (one client) or 'applications' (a batch)")
        rows = self.rows()
        if self.history is not None:
            ids = [r.SK_ID_CURR for r in rows]
            if any(i is None for i in ids):
                raise ValueError("with history rows, every application needs its SK_ID_CURR")
            if len(set(ids)) != len(ids):
                raise ValueError("SK_ID_CURR is repeated in the batch")
        return self

    def rows(self) -> list:
        return [self.application] if self.application is not None else list(self.applications)


class WhatIfRequest(BaseModel):
    """New values for a known client's editable fields; the other fields and the history are the client's own."""
    model_config = ConfigDict(extra="forbid")
    AMT_INCOME_TOTAL: Annotated[float | None, Field(default=None, strict=True, gt=0, le=1e10), AfterValidator(_finite)]
    AMT_CREDIT: Annotated[float | None, Field(default=None, strict=True, gt=0, le=1e10), AfterValidator(_finite)]
    AMT_ANNUITY: Annotated[float | None, Field(default=None, strict=True, ge=0, le=1e10), AfterValidator(_finite)]
    AMT_GOODS_PRICE: Annotated[float | None, Field(default=None, strict=True, ge=0, le=1e10),
                               AfterValidator(_finite)]
    DAYS_EMPLOYED: Annotated[int | None, Field(default=None, strict=True, ge=-25000, le=0)]
    OWN_CAR_AGE: Annotated[float | None, Field(default=None, strict=True, ge=0, le=100), AfterValidator(_finite)]
    CNT_CHILDREN: Annotated[int | None, Field(default=None, strict=True, ge=0, le=20)]
    CNT_FAM_MEMBERS: Annotated[float | None, Field(default=None, strict=True, ge=1, le=21), AfterValidator(_finite)]


WHAT_IF_FIELDS = tuple(WhatIfRequest.model_fields)  # what a client can change (DAYS_EMPLOYED: days, negative)


def as_raw_rows(models: list[BaseModel], table: str) -> list[dict]:
    """Validated rows as the raw dicts the feature code reads (integers as int, absent fields left out)."""
    kinds = dict(TABLES[table].columns)
    out = []
    for model in models:
        row = {}
        for key, value in model.model_dump(exclude_none=True).items():
            row[key] = int(value) if kinds[key] == "int" else value
        out.append(row)
    return out


def error_details(error: ValidationError) -> list[dict]:
    """pydantic errors as [{field, problem}], the field a dotted path into the request body."""
    details = []
    for e in error.errors(include_url=False):
        field = ".".join(str(part) for part in e["loc"])
        problem = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            problem = "unknown field"
        elif e["type"] == "missing":
            problem = "required field is missing"
        details.append({"field": field or "(body)", "problem": problem})
    return details
