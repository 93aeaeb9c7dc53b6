"""The app factory: blueprints, and apps built in-process from isolated configs that do not leak into each other.

The behaviour of every endpoint under gunicorn is tested in test_api.py and test_api_security.py; these
tests build the app itself, as flaskr's do, with Flask's test client.
"""
from __future__ import annotations

import pytest

from app import create_app
from app.http import COOKIE, session_token
from app.service import ModelNotReady
from creditscore.monitoring.inference_log import logged_rows


@pytest.fixture(scope="module")
def config(tiny_config, tmp_path_factory):
    """The tiny pipeline's models (tests/conftest.py), a private SQLite log."""
    log = tmp_path_factory.mktemp("factory") / "inference.sqlite"
    return {**tiny_config, "INFERENCE_LOG": log, "INFERENCE_LOG_KEY": "k"}


def test_two_blueprints_and_every_route_in_one_of_them(config):
    app = create_app(config)
    assert sorted(app.blueprints) == ["api", "dashboard"]
    endpoints = {r.rule: r.endpoint for r in app.url_map.iter_rules() if r.endpoint != "static"}
    assert endpoints == {"/health": "api.health", "/model": "api.model_info", "/openapi.json": "api.openapi",
                         "/predict": "api.predict", "/clients": "api.clients", "/clients/<client_id:client>":
                         "api.client", "/clients/<client_id:client>/explain": "api.client_explain",
                         "/clients/<client_id:client>/whatif": "api.client_what_if", "/reference": "api.reference",
                         "/clients/<client_id:client>/compare": "api.client_compare",
                         "/": "dashboard.page"}


def test_isolated_configs_a_key_for_one_app_none_for_the_other(config, tmp_path):
    locked = create_app({**config, "API_KEY": "secret", "INFERENCE_LOG": "off"}).test_client()
    open_ = create_app({**config, "INFERENCE_LOG": tmp_path / "own.sqlite"}).test_client()
    assert locked.get("/health").status_code == 200  # health never needs the key
    answer = locked.get("/model")
    assert answer.status_code == 401 and answer.json == {"error": "missing or wrong API key: send it in the "
                                                                  "X-API-Key header"}
    assert locked.get("/model", headers={"X-API-Key": "secret"}).status_code == 200
    assert locked.get("/health").json["inference_log"] == {"backend": "off"}
    # the dashboard's one-time key sets the session cookie and leaves the address bar
    answer = locked.get("/?api_key=secret")
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    assert f"{COOKIE}={session_token('secret')}" in answer.headers["Set-Cookie"]
    assert locked.get("/").status_code == 200  # the cookie is sent back
    assert open_.get("/model").status_code == 200  # no key here: the other app's setting did not leak
    first = open_.get("/clients?limit=1").json["clients"][0]["SK_ID_CURR"]
    assert open_.get(f"/clients/{first}").status_code == 200
    assert logged_rows(tmp_path / "own.sqlite") == 0  # a dashboard view is logged, but not as an application
    assert open_.post("/predict", json={"application": {"AMT_INCOME_TOTAL": -5}}).status_code == 422


def test_errors_are_json_from_every_blueprint(config):
    client = create_app({**config, "INFERENCE_LOG": "off"}).test_client()
    assert client.get("/nope").json == {"error": "The requested URL was not found on the server. If you entered the "
                                                 "URL manually please check your spelling and try again."}
    answer = client.post("/predict", data="{", content_type="application/json")
    assert answer.status_code == 400 and answer.json == {"error": "malformed JSON body"}
    assert client.get("/").headers["X-Frame-Options"] == "DENY"


def test_a_missing_bundle_or_a_blank_key_refuses_to_start(config, tmp_path, capsys):
    with pytest.raises(ModelNotReady, match="absent.joblib is missing: run `dvc repro`"):
        create_app({**config, "MODEL_BUNDLE": tmp_path / "absent.joblib"})
    with pytest.raises(ValueError, match="API_KEY is set but empty"):
        create_app({**config, "API_KEY": " "})
    assert capsys.readouterr().err.count("credit-scoring API: cannot start: ") == 2


def test_a_deployment_without_known_clients_says_so_and_still_scores(config, tiny_models, tmp_path):
    client = create_app({**config, "INFERENCE_LOG": "off", "MODEL_CLIENTS": "off"}).test_client()
    answer = client.get("/clients/100001")
    assert answer.status_code == 404 and "serves no known clients" in answer.get_json()["error"]
    assert client.get("/clients").get_json()["total"] == 0 and client.get("/model").get_json()["known_clients"] == 0
    known = create_app({**config, "INFERENCE_LOG": "off"}).test_client()
    first = known.get("/clients?limit=1").get_json()["clients"][0]["SK_ID_CURR"]
    assert known.get(f"/clients/{first}").status_code == 200
    assert client.get(f"/clients/{first}").status_code == 404  # the same id: this deployment has no such file
    with pytest.raises(ModelNotReady, match="absent.joblib is missing"):  # named but absent: refused, not ignored
        create_app({**config, "MODEL_CLIENTS": tmp_path / "absent.joblib"})


def test_the_reference_holds_no_row_of_any_training_client(tiny_models):
    """Loaded with the project's own classes, no array, frame, list or mapping in the reference has an entry per
    training client."""
    import numpy as np
    import polars as pl

    from creditscore.serving.bundle import Reference, load

    reference = load(tiny_models.reference, Reference)
    n_train = pl.read_parquet(tiny_models.folder / "features" / "train.parquet", columns=["SK_ID_CURR"]).height
    seen = []

    def walk(value, where):
        if isinstance(value, (np.ndarray, pl.DataFrame, pl.Series)):
            seen.append(where)
            assert n_train not in value.shape, where
        elif isinstance(value, dict):
            assert len(value) != n_train, where
            for key, item in value.items():
                walk(item, f"{where}.{key}")
        elif isinstance(value, (list, tuple)):
            assert len(value) != n_train, where
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")

    for field in Reference.__dataclass_fields__:
        walk(getattr(reference, field), field)
    assert "population.quantiles" in seen  # the aggregates were walked


def test_the_app_runs_on_the_serving_requirements_alone(tiny_config):
    """The host installs requirements-serving.txt only. With every package that only requirements.txt names made
    unimportable, the app still starts, loads the model and answers: scores, known clients, explanations,
    comparisons and the dashboard."""
    import json
    import re
    import subprocess
    import sys
    from importlib.metadata import packages_distributions

    from creditscore.config import ROOT

    def names(path):
        lines = (re.split(r"[\[=<>;\s#]", line.strip())[0].lower() for line in (ROOT / path).read_text().splitlines())
        return {n.replace("_", "-") for n in lines if n}

    extra = names("requirements.txt") - names("requirements-serving.txt")
    blocked = sorted(m for m, dists in packages_distributions().items()
                     if {d.lower().replace("_", "-") for d in dists} & extra and m.isidentifier() and m[0] != "_")
    assert {"pandas", "shap", "mlflow", "dask"} <= set(blocked)
    code = """
import importlib.abc, json, sys
BLOCKED = set(json.loads(sys.argv[1]))
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not in requirements-serving.txt)")
sys.meta_path.insert(0, Refuse())
from app import create_app
client = create_app(json.loads(sys.argv[2])).test_client()
known = client.get("/clients?limit=1").get_json()["clients"][0]["SK_ID_CURR"]
reference = client.get("/reference").get_json()
first, second = reference["grid_features"][:2]
for path in ("/", f"/clients/{known}", f"/clients/{known}/explain", f"/clients/{known}/compare?feature={first}&versus={second}"):
    assert client.get(path).status_code == 200, path
assert client.post("/predict", json={"application": json.loads(sys.argv[3])}).status_code == 200
print(sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
"""
    from tests.server import VALID

    config = {k: str(v) for k, v in tiny_config.items() if v is not None}
    done = subprocess.run([sys.executable, "-c", code, json.dumps(blocked), json.dumps(config), json.dumps(VALID)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"
