"""params.yaml is checked once, against one declaration, and every stage reports bad input the same way."""
from __future__ import annotations

import copy
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from creditscore.config import ROOT, load_params
from creditscore.errors import DataError, ParamsError
from creditscore.params import overridden, validate
from creditscore.stage import logger, run

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_the_repository_params_are_valid_and_typed_without_changing_a_value():
    params = load_params()
    assert params.model_dump(by_alias=True) == PARAMS  # a YAML 20 stays the int 20: outputs do not change
    assert type(params.cost.fn_cost) is int and type(params.threshold.pd_floor) is float
    assert params.train.folds == PARAMS["train"]["folds"] and params.register_.margin == PARAMS["register"]["margin"]
    assert validate(copy.deepcopy(PARAMS)) == params


def test_params_are_read_only_and_a_change_is_a_new_validated_object():
    params = load_params()
    with pytest.raises(ValidationError, match="frozen"):
        params.train.folds = 3
    changed = overridden(params, {"train": {"folds": 3, "ensemble": {"l2": 2.0}}, "register": {"margin": 0.01}})
    assert (changed.train.folds, changed.train.ensemble.l2, changed.register_.margin) == (3, 2.0, 0.01)
    assert changed.train.ensemble.min_weight == params.train.ensemble.min_weight  # merged, not replaced
    assert (params.train.folds, params.register_.margin) == (PARAMS["train"]["folds"], PARAMS["register"]["margin"])
    assert overridden(params, {"train": {"lightgbm": {"num_leaves": 7}}}).train.lightgbm == {"num_leaves": 7}
    with pytest.raises(ParamsError, match=r"^overridden Params settings: train\.folds: input should be greater than "
                                          r"or equal to 2, got 1$"):
        overridden(params, {"train": {"folds": 1}})
    with pytest.raises(ParamsError, match=r"^overridden Train settings: ensemble\.min_weight: .*got -1"):
        overridden(params.train, {"ensemble": {"min_weight": -1}})
    with pytest.raises(ParamsError, match=r"^overridden Params settings: train\.fold: unknown key$"):
        overridden(params, {"train": {"fold": 3}})
    with pytest.raises(ParamsError, match=r"ensemble\.sample_learning_rate sets .* may not search learning_rate"):
        overridden(params.train, {"ensemble": {"sample_learning_rate": 0.06},
                                  "search_space": {"learning_rate": [0.02, 0.05]}})
    assert overridden(params.train, {"ensemble": {"sample_learning_rate": 0.06}}).ensemble.sample_learning_rate == 0.06


@pytest.mark.parametrize("change,message", [
    (("train", "ensemble", "min_weight", -0.1),
     "train.ensemble.min_weight: input should be greater than or equal to 0, got -0.1"),
    (("train", "models", ["random_forest", "scorecard"]),
     "train.models: must include lightgbm or logistic_regression, the models the served ensemble is built from (the "
     "forest needs shap and the scorecard optbinning, which the API does not carry)"),
    (("train", "models", ["lightgbm"]),
     "train.models: must include scorecard, the challenger whose card and figures the threshold and register stages "
     "report"),
    (("threshold", "pd_floor", 0.0), "threshold.pd_floor: input should be greater than 0, got 0.0"),
    (("train", "foldz", 3), "train.foldz: unknown key"),
    (("probe", "guard_sample", 3200), "probe.guard_sample: input should be greater than or equal to 20000, got 3200"),
    (("cost", "fn_cost", "10"), "cost.fn_cost: input should be a valid number, got '10'"),
    (("drift", "fail_on_alert", "no"), "drift.fail_on_alert: input should be a valid boolean, got 'no'"),
    (("seed", 4.5), "seed: input should be a valid integer, got 4.5"),
    (("train", "models", ["lightgbm", "xgboost"]),
     "train.models[1]: input should be 'dummy', 'logistic_regression', 'random_forest', 'lightgbm' or 'scorecard', got 'xgboost'"),
    (("engineer", "groups", ["application", "bureaux"]),
     "engineer.groups: unknown group(s) ['bureaux']; expected some of ['application', 'bureau', "
     "'previous', 'pos_cash', 'installments', 'credit_card', 'recent_and_rates']"),
    (("threshold", "calibration", "beta"), "threshold.calibration: input should be 'isotonic' or 'sigmoid', got 'beta'"),
    (("protected", ["GENDER"]), "protected: 'GENDER' is not a field of application_train.csv"),
    (("protected", ["AMT_ANNUITY"]),
     "engineer.target_encoding.loan_terms_steps (they read AMT_CREDIT and AMT_ANNUITY): 'AMT_ANNUITY' is protected "
     "(params.yaml: protected): no feature may read it"),
    (("protected", ["CODE_GENDER", "DAYS_BIRTH"]),
     "engineer.poly.columns: 'DAYS_BIRTH' is protected (params.yaml: protected): no feature may read it"),
])
def test_a_bad_value_names_its_key(change, message):
    params = copy.deepcopy(PARAMS)
    *path, key, value = change
    target = params
    for part in path:
        target = target[part]
    target[key] = value
    with pytest.raises(ParamsError) as raised:
        validate(params)
    assert str(raised.value) == f"params.yaml: {message}"


def test_a_missing_key_and_several_problems_are_all_named():
    params = copy.deepcopy(PARAMS)
    del params["drift"]["log"]
    params["probe"]["folds"] = 1
    with pytest.raises(ParamsError) as raised:
        validate(params)
    assert str(raised.value) == ("params.yaml: probe.folds: input should be greater than or equal to 2, got 1 "
                                 "(and 1 more: drift.log: missing)")


def test_run_gives_one_line_and_exit_1_on_bad_input_and_keeps_tracebacks_for_defects(capsys):
    assert run("demo", lambda argv: None) == 0
    assert run("demo", lambda argv: 3) == 3

    def missing(argv):
        open("/nonexistent/input.parquet")

    assert run("demo", missing) == 1
    assert capsys.readouterr().err == "demo: error: /nonexistent/input.parquet: file not found\n"
    assert run("demo", lambda argv: validate({})) == 1
    assert capsys.readouterr().err.startswith("demo: error: params.yaml: seed: missing (and 14 more: protected: missing; "
                                              "compute: missing; data: missing;")
    with pytest.raises(ZeroDivisionError):  # a defect is not bad input: it keeps its traceback
        run("demo", lambda argv: 1 / 0)

    def library_defect(argv):
        np.zeros(3).reshape(2, 2)  # a ValueError raised inside NumPy: a defect, not a user's bad input

    with pytest.raises(ValueError, match="cannot reshape"):
        run("demo", library_defect)
    assert capsys.readouterr().err == ""

    def bad_data(argv):
        raise DataError("x.csv: column A: not a number")

    assert run("demo", bad_data) == 1
    assert capsys.readouterr().err == "demo: error: x.csv: column A: not a number\n"
    logger("demo")("hello")
    assert capsys.readouterr().err == "demo: hello\n"


def test_a_stage_with_bad_params_exits_1_with_one_line_and_writes_nothing(tmp_path):
    for part in ("creditscore", "stages"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    params = copy.deepcopy(PARAMS)
    params["data"]["n_clients"] = 5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run([sys.executable, "-m", "stages.generate", "--out", "data/synthetic"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr == "generate: error: params.yaml: data.n_clients: input should be greater than or equal to " \
                          "100, got 5\n"
    assert not (tmp_path / "data").exists()
