"""The one declaration of params.yaml: every section, key and type, checked once when a stage loads it.

An unknown key, a missing key, a misspelt group or a wrong type stops the stage with one line naming the
key (`params.yaml: train.folds: input should be greater than or equal to 2, got 1`), before any
output is touched. Model hyper-parameters (`probe.model`, `train.lightgbm`, ...) are passed to the
library as they are: the library names a bad one itself.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from creditscore.errors import ParamsError

GROUPS = ("application", "bureau", "previous", "pos_cash", "installments", "credit_card", "recent_and_rates")
MODELS = ("dummy", "logistic_regression", "random_forest", "lightgbm", "scorecard")
STRATEGIES = ("none", "class_weight", "undersample", "smote")
TRENDS = ("auto", "auto_heuristic", "auto_asc_desc", "ascending", "descending", "convex", "concave", "peak", "valley")

# a YAML number keeps its type (20 stays an int, as the stages and their outputs always saw it)
Real = int | float
Count = Annotated[int, Field(ge=1)]
Share = Annotated[Real, Field(ge=0.0, le=1.0)]


def check_groups(groups) -> list[str]:
    """The feature groups of `engineer.groups`, or a ValueError naming the problem (a typo must not drop a group)."""
    groups = list(groups)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown group(s) {unknown}; expected some of {list(GROUPS)}")
    if "application" not in groups:
        raise ValueError("must include 'application' (the application row's features "
                         "are always built: every other group joins onto them)")
    if len(set(groups)) != len(groups):
        raise ValueError(f"a group is listed twice: {groups}")
    return groups


class Section(BaseModel):
    """A params.yaml section: strict types, no unknown key, read-only (a setting derived from one is a new object)."""
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Data(Section):
    source: Literal["synthetic", "kaggle"]
    raw_dir: str
    n_clients: int = Field(ge=100)
    holdout_size: Real = Field(gt=0.0, lt=1.0)
    drift: Real


class Poly(Section):
    columns: list[str]
    degree: int = Field(ge=1, le=5)


class TargetEncoding(Section):
    enabled: bool
    columns: list[str]
    loan_terms_steps: list[Annotated[Real, Field(gt=0.0, le=10.0)]]
    folds: int = Field(ge=2)
    smoothing: Real = Field(ge=0.0)
    min_count: Count


class Engineer(Section):
    groups: list[str]
    max_levels: Count
    min_count: Count
    poly: Poly
    target_encoding: TargetEncoding
    chunk_clients: Count

    @field_validator("groups")
    @classmethod
    def _groups(cls, groups: list[str]) -> list[str]:
        return check_groups(groups)


class Probe(Section):
    probes_per_kind: Count
    seeds: list[int] = Field(min_length=1)
    folds: int = Field(ge=2)
    rule: Literal["max", "mean3sd", "quantile"]
    quantile: Share
    min_share: Share
    validation_folds: int = Field(ge=2)
    tolerance: Real = Field(ge=0.0)
    sample: Count | None  # None: every training client
    # None: the guard selects on every client of each outer training part. At least 20,000: on 3,200 clients per
    # part the guard could no longer tell a poor selection from every feature (docs/decisions/0021-*)
    guard_sample: Annotated[int, Field(ge=20_000)] | None
    model: dict[str, Any]


class Cost(Section):
    fn_cost: Real = Field(gt=0.0)
    fp_cost: Real = Field(gt=0.0)
    basis: Literal["count", "amount"]  # the served threshold's cost: errors counted, or weighted by credit amount

    def matrix(self) -> dict:
        """fn_cost and fp_cost as the plain mapping the train stage and the served bundle carry."""
        return self.model_dump(include={"fn_cost", "fp_cost"})


class Ensemble(Section):
    min_weight: Real = Field(ge=0.0, lt=0.5)
    l2: Real = Field(ge=0.0)
    refit_lightgbm: int | None = Field(ge=1)
    refit_logistic_regression: bool  # false: above the benchmark sample they keep the sample's fold models
    refit_learning_rate: Real | None = Field(gt=0.0, le=1.0)  # null: the member's own learning rate
    sample_learning_rate: Real | None = Field(gt=0.0, le=1.0)  # null: the LightGBM candidates' own rate on the sample


class Scorecard(Section):
    max_features: Count
    min_iv: Real = Field(ge=0.0)
    max_correlation: Real = Field(gt=0.0, le=1.0)
    max_n_prebins: int = Field(ge=2)
    min_bin_size: Real = Field(gt=0.0, lt=0.5)
    C: Real = Field(gt=0.0)
    trends: dict[str, Literal[TRENDS]]  # type: ignore[valid-type]


class Points(Section):
    base_points: Real
    base_odds: Real = Field(gt=0.0)
    pdo: Real = Field(gt=0.0)


class Mlflow(Section):
    experiment: str


class Train(Section):
    folds: int = Field(ge=2)
    benchmark_sample: Count
    early_stopping_rounds: Count
    fbeta: Real = Field(gt=0.0)
    models: list[Literal[MODELS]] = Field(min_length=1)  # type: ignore[valid-type]
    strategies: list[Literal[STRATEGIES]] = Field(min_length=1)  # type: ignore[valid-type]
    logistic_regression: dict[str, Any]
    random_forest: dict[str, Any]
    lightgbm: dict[str, Any]
    ensemble: Ensemble
    monotone: dict[str, Literal[-1, 1]]
    scorecard: Scorecard
    search_budget: int = Field(ge=0)
    search_space: dict[str, list]
    mlflow: Mlflow

    @field_validator("models")
    @classmethod
    def _servable_and_challenger(cls, models: list[str]) -> list[str]:
        if not {"lightgbm", "logistic_regression"} & set(models):
            raise ValueError("must include lightgbm or logistic_regression, the models the served ensemble is built "
                             "from (the forest needs shap and the scorecard optbinning, which the API does not carry)")
        if "scorecard" not in models:
            raise ValueError("must include scorecard, the challenger whose card and figures the threshold and "
                             "register stages report")
        return models

    @model_validator(mode="after")
    def _one_sample_rate(self) -> Train:
        if self.ensemble.sample_learning_rate is not None and "learning_rate" in self.search_space:
            raise ValueError("ensemble.sample_learning_rate sets every LightGBM candidate's rate on the benchmark "
                             "sample: search_space may not search learning_rate as well")
        return self


class Threshold(Section):
    calibration: Literal["isotonic", "sigmoid"]
    pd_floor: Real = Field(gt=0.0, lt=0.5)
    pd_ceiling: Real = Field(gt=0.5, lt=1.0)


class Clients(Section):
    highest: int = Field(ge=0)
    lowest: int = Field(ge=0)
    closest: int = Field(ge=0)


class Explain(Section):
    clients: Clients
    top_k: Count
    lime_samples: Count
    sample: Count
    global_sample: Count
    top_features: Count
    age_bands: list[int] = Field(min_length=1)
    key_fields: list[str] = Field(min_length=1)


class Portfolio(Section):
    lgd: Real = Field(gt=0.0, le=1.0)  # loss given default: the share of the credit amount lost on a default
    segment_min_defaults: Count  # a segment with fewer defaulters (or good clients) is flagged too small to judge


class Performance(Section):
    outcomes: str  # matured outcomes CSV (SK_ID_CURR, APPLICATION_MONTH, TARGET); "": the synthetic generator's
    min_cohort_clients: Count


class Gates(Section):
    min_holdout_auc: Share
    max_ece: Share
    max_fairness_gap: Share
    fairness_attributes: list[Literal["gender", "age_band"]]


class Register(Section):
    registered_model: str = Field(min_length=1)
    gates: Gates
    margin: Real = Field(ge=0.0)


class Drift(Section):
    top_features: Count
    reference_sample: Count
    current_sample: Count
    share_alert: Share
    psi_alert: Real = Field(ge=0.0)
    fail_on_alert: bool
    log: str


class Compute(Section):
    scheduler: str = Field(min_length=1)  # "local", or a Dask scheduler's address (tcp://host:8786)


class Params(Section):
    seed: int
    protected: list[str]  # application fields no feature is built from (the fairness checks still read them)
    compute: Compute
    data: Data
    engineer: Engineer
    probe: Probe
    cost: Cost
    points: Points
    train: Train
    threshold: Threshold
    explain: Explain
    portfolio: Portfolio
    performance: Performance
    register_: Register = Field(alias="register")  # "register" itself would shadow BaseModel.register (ABC)
    drift: Drift

    @field_validator("protected")
    @classmethod
    def _application_fields(cls, protected: list[str]) -> list[str]:
        from creditscore.data.schema import TABLES

        fields = {c for c, _ in TABLES["application_train"].columns} - {"SK_ID_CURR", "TARGET"}
        unknown = [c for c in protected if c not in fields]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a field of application_train.csv")
        return protected

    @model_validator(mode="after")
    def _protected_stay_out(self) -> Params:
        encoding = self.engineer.target_encoding
        loan_terms = ["AMT_CREDIT", "AMT_ANNUITY"] if encoding.enabled and encoding.loan_terms_steps else []
        for where, columns in (("engineer.poly.columns", self.engineer.poly.columns),
                               ("engineer.target_encoding.columns", encoding.columns if encoding.enabled else []),
                               ("engineer.target_encoding.loan_terms_steps (they read AMT_CREDIT and AMT_ANNUITY)",
                                loan_terms)):
            both = [c for c in columns if c in self.protected]
            if both:
                raise ValueError(f"{where}: {both[0]!r} is protected (params.yaml: protected): no feature may read it")
        return self


S = TypeVar("S", bound=BaseModel)


def overridden(section: S, changes: dict) -> S:
    """A new, validated section: `section` with `changes` laid over it. A change to a nested section is merged
    key by key; a library's settings (a plain mapping such as `train.lightgbm`) are replaced as given. A change that
    does not validate raises ParamsError naming its key, as for params.yaml."""
    try:
        return type(section).model_validate(_merged(section, changes))
    except ValidationError as error:
        raise ParamsError(f"overridden {type(section).__name__} settings: {_problems(error)}") from None


def _merged(section: BaseModel, changes: dict) -> dict:
    values, fields = section.model_dump(by_alias=True), type(section).model_fields
    for key, value in changes.items():  # `key` as params.yaml spells it (`register`, not `register_`)
        name = next((n for n, f in fields.items() if f.alias == key), key)
        current = getattr(section, name, None) if name in fields else None
        values[key] = (_merged(current, value)
                       if isinstance(current, BaseModel) and isinstance(value, dict) else value)
    return values


def _problem(error: dict) -> str:
    loc = [part for part in error["loc"] if part not in ("int", "float")]  # a Real's union member
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:] or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if error["type"] == "missing":
        return f"{where}: missing"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    if error["type"] == "value_error":
        return f"{where}: {message}" if loc else message  # a check across sections names its keys itself
    return f"{where}: {message}, got {error['input']!r}"


def validate(params: Any) -> Params:
    """params as loaded from YAML, as the typed, read-only `Params`; else ParamsError naming the key."""
    try:
        return Params.model_validate(params)
    except ValidationError as error:
        raise ParamsError(f"params.yaml: {_problems(error)}") from None


def _problems(error: ValidationError) -> str:
    """The first problem of a validation error, then how many more and which, each naming its key."""
    errors = error.errors(include_url=False)
    floats = {e["loc"][:-1] for e in errors if e["loc"][-1:] == ("float",)}
    # a Real that is neither: report it once, as a number
    problems = [_problem(e) for e in errors if not (e["loc"][-1:] == ("int",) and e["loc"][:-1] in floats)]
    more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"
