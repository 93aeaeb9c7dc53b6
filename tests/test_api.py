"""The prediction API against a real gunicorn server: every endpoint, every validation case, the inference log.

Length: one server per module is costly to start, so every endpoint's tests share it in this file.

Hostile input, the key, refused starts and a changed model file: tests/test_api_security.py.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import re
import sqlite3

import numpy as np
import polars as pl
import pytest
import requests

from creditscore.config import ROOT
from creditscore.data.raw import read_table
from creditscore.data.schema import TABLES
from creditscore.decision.calibration import calibrate
from creditscore.monitoring.inference_log import COLUMNS, TABLE, read_features
from tests.conftest import SAMPLE_DIR, needs_sample
from tests.server import MODELS, VALID

pytestmark = pytest.mark.slow

RAW = ROOT / "data" / "synthetic"


def _client_raw(client: int) -> tuple[dict, dict]:
    """A test client's raw Kaggle rows, as a caller of the API would send them."""
    def rows(table: str, column: str, ids) -> list[dict]:
        frame = read_table(RAW, TABLES[table]).filter(pl.col(column).is_in(list(ids)))
        return [{k: v for k, v in r.items() if v is not None} for r in frame.to_dicts()]
    app = rows("application_test", "SK_ID_CURR", [client])[0]
    history = {t: rows(t, "SK_ID_CURR", [client]) for t in
               ("bureau", "previous_application", "POS_CASH_balance", "installments_payments", "credit_card_balance")}
    history["bureau_balance"] = rows("bureau_balance", "SK_ID_BUREAU", [b["SK_ID_BUREAU"] for b in history["bureau"]])
    return app, history


def _stage_probability(bundle, client: int) -> float:
    test = pl.read_parquet(ROOT / "data" / "predictions" / "test.parquet").filter(pl.col("SK_ID_CURR") == client)
    return float(calibrate(test["proba"].to_numpy(), bundle.calibration)[0])


def _rich_test_client() -> int:
    bureau = set(read_table(RAW, TABLES["bureau"])["SK_ID_CURR"].to_list())
    cards = set(read_table(RAW, TABLES["credit_card_balance"])["SK_ID_CURR"].to_list())
    ids = pl.read_parquet(ROOT / "data" / "predictions" / "test.parquet")["SK_ID_CURR"].to_list()
    return next(c for c in ids if c in bureau and c in cards)


def test_health_and_model(server, bundle):
    health = requests.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["model_loaded"] is True
    info = requests.get(server.url + "/model").json()
    assert info["threshold"] == bundle.threshold and info["n_features"] == len(bundle.features)
    assert info["cost"] == {"fn_cost": 10, "fp_cost": 1} and info["model_version"] == health["model_version"]
    digest = (MODELS / "bundle.joblib.sha256").read_text().strip()
    assert digest.startswith(info["model_version"])
    written = dt.datetime.fromtimestamp((MODELS / "bundle.joblib").stat().st_mtime, dt.UTC)
    assert info["trained_at"] == written.isoformat(timespec="seconds")  # the file's time, not the served copy's


@pytest.mark.skipif(not RAW.is_dir(), reason="data/synthetic is absent (data.source is kaggle)")
def test_predict_from_raw_rows_equals_the_pipeline_output(server, bundle):
    """One code path: raw fields + history through the API give the test prediction of the train stage."""
    client = _rich_test_client()
    app, history = _client_raw(client)
    answer = requests.post(server.url + "/predict", json={"application": app, "history": history}).json()
    expected = _stage_probability(bundle, client)
    assert answer["SK_ID_CURR"] == client
    assert answer["probability"] == pytest.approx(expected, abs=2e-6)
    assert answer["decision"] == ("refused" if expected >= bundle.threshold else "granted")
    assert answer["distance_to_threshold"] == pytest.approx(expected - bundle.threshold, abs=2e-6)
    scale = bundle.points  # PDO: base points at the base odds (good:bad), pdo more points for twice the odds
    odds = (1 - expected) / expected
    assert answer["points"] == pytest.approx(scale["base_points"] + scale["pdo"] * math.log2(odds / scale["base_odds"]),
                                             abs=0.06)
    known = requests.get(f"{server.url}/clients/{client}").json()
    assert known["probability"] == pytest.approx(expected, abs=2e-6)
    assert known["client"]["SK_ID_CURR"] == client and "AMT_INCOME_TOTAL" in known["key_values"]


def test_batch_with_explanations(server, bundle):
    safe = {"EXT_SOURCE_1": 0.85, "EXT_SOURCE_2": 0.8, "EXT_SOURCE_3": 0.85}  # high external scores: a clear grant
    apps = [{**VALID, **safe, "SK_ID_CURR": 1}, {**VALID, "SK_ID_CURR": 2, "EXT_SOURCE_2": 0.05}]
    body = requests.post(server.url + "/predict", json={"applications": apps, "explain": True}).json()
    assert body["count"] == 2 and [p["SK_ID_CURR"] for p in body["predictions"]] == [1, 2]
    low, high = body["predictions"]
    assert high["probability"] > low["probability"]  # a much lower external score raises the risk
    for p in body["predictions"]:
        explanation = p["explanation"]
        assert len(explanation["contributions"]) == len(bundle.features)
        assert 0 < len(explanation["reasons"]) <= 4
        contribs = [r["contribution"] for r in explanation["reasons"]]
        refused = p["decision"] == "refused"  # a refusal's main reasons, a grant's main strengths
        assert contribs == sorted(contribs, reverse=refused) and all((c > 0) == refused for c in contribs)
        assert {r["direction"] for r in explanation["reasons"]} == {"towards refusal" if refused else "towards approval"}
        assert_speakable(explanation["reasons"], bundle.features)
    assert low["decision"] == "granted" and high["decision"] == "refused"  # both directions are said


def assert_speakable(reasons: list[dict], features: list[str]) -> None:
    """No reason names a derived feature or says a negative number (days are said as years)."""
    derived = [f for f in features if f.startswith("POLY_") or "_X_" in f or f.endswith(("_MEAN", "_RATIO", "_PERC"))]
    for r in reasons:
        assert not any(f in r["text"] for f in derived), r["text"]
        assert "negative" not in r["text"] and not re.search(r"-\s?\d", r["text"]), r["text"]


def test_single_without_id_and_no_history(server):
    answer = requests.post(server.url + "/predict", json={"application": VALID}).json()
    assert answer["SK_ID_CURR"] is None and 0 <= answer["probability"] <= 1
    assert answer["decision"] in ("granted", "refused") and "explanation" not in answer


def test_known_client_explain_and_what_if(server, bundle):
    clients = requests.get(server.url + "/clients?limit=5").json()
    assert clients["total"] > 0 and len(clients["clients"]) == 5
    client = clients["clients"][0]["SK_ID_CURR"]
    assert clients["clients"][0]["probability"] == pytest.approx(_stage_probability(bundle, client), abs=2e-6)
    explained = requests.get(f"{server.url}/clients/{client}/explain").json()
    assert_speakable(explained["explanation"]["reasons"], bundle.features)
    assert [r["rank"] for r in explained["explanation"]["reasons"]] == list(range(1, len(explained["explanation"]["reasons"]) + 1))
    before = requests.get(f"{server.url}/clients/{client}").json()
    income = before["client"]["AMT_INCOME_TOTAL"] * 2
    after = requests.post(f"{server.url}/clients/{client}/whatif", json={"AMT_INCOME_TOTAL": income}).json()
    income_reason = [r for r in after["explanation"]["reasons"] if r["feature"] == "AMT_INCOME_TOTAL"]
    assert all(r["value"] == pytest.approx(income) for r in income_reason)  # the changed field is the one said
    assert after["key_values"]["AMT_INCOME_TOTAL"] == pytest.approx(income, rel=1e-6)
    ratio = before["client"]["AMT_CREDIT"] / income
    assert after["key_values"]["CREDIT_INCOME_RATIO"] == pytest.approx(ratio, rel=1e-5)  # recomputed, not copied
    same = requests.post(f"{server.url}/clients/{client}/whatif", json={}).json()
    assert same["probability"] == before["probability"]  # no change: the client's own score
    reference = requests.get(server.url + "/reference").json()
    assert set(reference["distributions"]) == set(reference["key_fields"])


def test_malformed_oversized_and_wrong_content(server):
    bad = requests.post(server.url + "/predict", data="{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"] == "malformed JSON body"
    text = requests.post(server.url + "/predict", data="AMT_CREDIT=1", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415 and "JSON" in text.json()["error"]
    array = requests.post(server.url + "/predict", json=[VALID])
    assert array.status_code == 400 and "object" in array.json()["error"]
    huge = requests.post(server.url + "/predict", data=b"{" + b" " * (6 * 1024 * 1024) + b"}",
                         headers={"Content-Type": "application/json"})
    assert huge.status_code == 413 and "too large" in huge.json()["error"]
    assert requests.get(server.url + "/clients/1").status_code == 404
    assert "not among" in requests.get(server.url + "/clients/1").json()["error"]
    assert requests.get(server.url + "/clients?limit=abc").status_code == 400
    assert requests.get(server.url + "/predict").status_code == 405
    what_if = requests.post(server.url + "/clients/1/whatif", json={"AMT_CREDIT": -1})
    assert what_if.status_code == 404
    first = requests.get(server.url + "/clients?limit=1").json()["clients"][0]["SK_ID_CURR"]
    negative = requests.post(f"{server.url}/clients/{first}/whatif", json={"AMT_CREDIT": -1}).json()
    assert negative["details"][0]["field"] == "AMT_CREDIT"


def test_scored_requests_are_logged_with_exactly_the_declared_columns(server, bundle):
    """A pseudonym for the id, coarse feature values, and dashboard views apart from new applications."""
    body = requests.post(server.url + "/predict", json={"application": {**VALID, "SK_ID_CURR": 777}}).json()
    known = requests.get(server.url + "/clients?limit=1").json()["clients"][0]["SK_ID_CURR"]
    assert requests.get(f"{server.url}/clients/{known}").status_code == 200
    ref = hmac.new(server.log_key.encode(), b"777", hashlib.sha256).hexdigest()[:20]
    with sqlite3.connect(server.log) as conn:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({TABLE})")]
        kind, score, text = conn.execute(f"SELECT kind, score, features FROM {TABLE} WHERE client_ref = ?",
                                         (ref,)).fetchone()
        view = conn.execute(f"SELECT kind FROM {TABLE} WHERE client_ref = ?",
                            (hmac.new(server.log_key.encode(), str(known).encode(), hashlib.sha256).hexdigest()[:20],)
                            ).fetchall()
    assert columns == list(COLUMNS) and kind == "application" and score == body["probability"]
    assert view and set(view) == {("view",)}  # every dashboard look, never as an application
    stored = json.loads(text)
    assert list(stored) == bundle.features  # the model's features and nothing else of the application
    assert all(v is None or v == float(f"{v:.2g}") for v in stored.values())  # 2 significant digits at most
    frame = read_features(server.log, bundle.features)  # the drift stage's reader: applications only
    assert frame.height >= 1 and set(bundle.features) <= set(frame.columns)
    assert requests.get(server.url + "/health").json()["inference_log"]["backend"] == "sqlite"


@needs_sample
def test_real_sample_rows_validate_and_score(server):
    """Real Kaggle rows pass validation: the ranges refuse impossible values, not real applicants."""
    frame = read_table(SAMPLE_DIR, TABLES["application_test"])
    apps = [{k: v for k, v in r.items() if v is not None} for r in frame.to_dicts()]
    body = requests.post(server.url + "/predict", json={"applications": apps})
    assert body.status_code == 200, body.text[:500]
    probabilities = np.array([p["probability"] for p in body.json()["predictions"]])
    assert len(probabilities) == frame.height and ((0 <= probabilities) & (probabilities <= 1)).all()
    def refuse(constant):  # Python's json writes NaN and Infinity, which no JSON parser outside Python reads
        raise AssertionError(f"the answer holds {constant}, which is not JSON")
    json.loads(body.text, parse_constant=refuse)


def _resolve(node, schemas: dict):
    """The schema with every #/components/schemas reference replaced by its target."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _resolve(schemas[node["$ref"].rsplit("/", 1)[1]], schemas)
        return {k: _resolve(v, schemas) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, schemas) for v in node]
    return node


def test_every_answer_matches_its_documented_schema(server):
    """The OpenAPI response schemas against real answers of every endpoint, known clients included (which
    schemathesis mostly reaches as 404s), and a wrong answer shape is caught."""
    import jsonschema_rs  # schemathesis's own validator (installed with it)

    document = requests.get(server.url + "/openapi.json").json()
    schemas = document["components"]["schemas"]
    known = requests.get(server.url + "/clients?limit=3").json()["clients"][0]["SK_ID_CURR"]
    calls = [("get", "/health", "/health", None), ("get", "/model", "/model", None),
             ("post", "/predict", "/predict", {"application": {**VALID, "SK_ID_CURR": 5}, "explain": True}),
             ("post", "/predict", "/predict", {"applications": [VALID, VALID]}),
             ("get", "/clients", "/clients?limit=3", None), ("get", "/clients/{client}", f"/clients/{known}", None),
             ("get", "/clients/{client}/explain", f"/clients/{known}/explain", None),
             ("post", "/clients/{client}/whatif", f"/clients/{known}/whatif", {"AMT_CREDIT": 250000.0}),
             ("get", "/reference", "/reference", None)]
    for method, template, path, body in calls:
        response = requests.request(method, server.url + path, json=body)
        assert response.status_code == 200, (path, response.text[:300])
        schema = _resolve(document["paths"][template][method]["responses"]["200"]["content"]["application/json"]
                          ["schema"], schemas)
        jsonschema_rs.validate(schema, response.json())
        errors = requests.request(method, server.url + path.replace(str(known), "999999999"), json={"x": [1]})
        if errors.status_code != 200:  # every error answer is the documented Error object
            jsonschema_rs.validate(_resolve({"$ref": "#/components/schemas/Error"}, schemas), errors.json())
    single = requests.post(server.url + "/predict", json={"application": VALID}).json()
    with pytest.raises(jsonschema_rs.ValidationError):  # the schema is strict enough to catch a changed answer
        jsonschema_rs.validate(_resolve(schemas["Prediction"], schemas), {**single, "decision": "maybe"})
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.validate(_resolve(schemas["Prediction"], schemas), {**single, "extra": 1})


def test_compare_with_similar_clients_answers_aggregates_only(server):
    client = requests.get(server.url + "/clients?limit=1").json()["clients"][0]["SK_ID_CURR"]
    reference = requests.get(server.url + "/reference").json()
    first, second = reference["key_fields"][:2]
    url = f"{server.url}/clients/{client}/compare"
    answer = requests.get(url, params={"feature": first, "versus": second})
    assert answer.status_code == 200
    body = answer.json()
    assert body["group"]["clients"] == body["everyone"]["clients"] > 1000  # no filter: everyone
    assert body["feature"]["name"] == first and len(body["feature"]["group"]["quantiles"]) == 5
    assert all(c is None or c >= 5 for row in body["grid"]["clients"] for c in row)
    assert len(answer.content) < 6000  # aggregates, not rows
    one = reference["filters"]["NAME_CONTRACT_TYPE"]["levels"][0]
    group = requests.get(url, params={"feature": first, "NAME_CONTRACT_TYPE": one}).json()
    assert group["group"]["filters"] == {"NAME_CONTRACT_TYPE": one} and group["group"]["clients"] < body["group"]["clients"]
    for params, status, field in (({}, 400, "feature"), ({"feature": "NOPE"}, 400, "feature"),
                                  ({"feature": first, "versus": "NOPE"}, 400, "versus"),
                                  ({"feature": first, "colour": "red"}, 400, "colour"),
                                  ({"feature": first, "NAME_CONTRACT_TYPE": "no such contract"}, 422, "filters")):
        refused = requests.get(url, params=params)
        assert refused.status_code == status and refused.json()["details"][0]["field"] == field, params


def test_what_if_on_every_editable_field_and_its_limits(server, bundle):
    from app.validation import WHAT_IF_FIELDS
    from creditscore.explanation.reasons import sources_of

    client = requests.get(server.url + "/clients?limit=1").json()["clients"][0]["SK_ID_CURR"]
    url = f"{server.url}/clients/{client}/whatif"
    reference = requests.get(server.url + "/reference").json()
    read = {f for fs in sources_of(bundle.spec, bundle.manifest, bundle.features).values() for f in fs}
    assert reference["what_if_fields"] == [f for f in WHAT_IF_FIELDS if f in read]  # the editable fields it reads
    assert "AMT_CREDIT" in reference["what_if_fields"]
    moved = requests.post(url, json={"DAYS_EMPLOYED": -3653, "CNT_CHILDREN": 2, "OWN_CAR_AGE": 3.0})
    assert moved.status_code == 200 and moved.json()["changes"] == {"DAYS_EMPLOYED": -3653, "CNT_CHILDREN": 2,
                                                                    "OWN_CAR_AGE": 3.0}
    if "DAYS_EMPLOYED" in reference["key_fields"]:
        assert moved.json()["key_values"]["DAYS_EMPLOYED"] == -3653
    for body, field in (({"DAYS_EMPLOYED": 5}, "DAYS_EMPLOYED"), ({"CNT_CHILDREN": 1.5}, "CNT_CHILDREN"),
                        ({"CNT_FAM_MEMBERS": 0}, "CNT_FAM_MEMBERS"), ({"DAYS_BIRTH": -20000}, "DAYS_BIRTH")):
        refused = requests.post(url, json=body)
        assert refused.status_code == 422 and refused.json()["details"][0]["field"] == field, body
