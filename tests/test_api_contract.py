"""The API's contract in process (Flask's test client) on the tiny pipeline's models: validation names the field,
the OpenAPI document, a valid application scored at the bundle's threshold. Under gunicorn: test_api.py.
"""
from __future__ import annotations

import pytest

from app import create_app
from tests.server import VALID


@pytest.fixture(scope="module")
def client(tiny_config):
    return create_app(tiny_config).test_client()


def test_a_valid_application_is_scored_at_the_bundles_threshold(client, tiny_models):
    from creditscore.serving.bundle import Bundle, load

    bundle = load(tiny_models.bundle, Bundle)
    answer = client.post("/predict", json={"application": VALID})
    assert answer.status_code == 200, answer.text
    body = answer.json
    assert body["threshold"] == round(float(bundle.threshold), 6)
    assert body["decision"] == ("refused" if body["probability"] >= bundle.threshold else "granted")
    assert body["SK_ID_CURR"] is None


@pytest.mark.parametrize("body,status,field,problem", [
    ({"application": {**VALID, "FOO": 1}}, 422, "application.FOO", "unknown field"),
    ({"application": {**VALID, "AMT_CREDIT": "a lot"}}, 422, "application.AMT_CREDIT", "valid number"),
    ({"application": {**VALID, "AMT_INCOME_TOTAL": -10}}, 422, "application.AMT_INCOME_TOTAL", "greater than 0"),
    ({"application": {**VALID, "DAYS_BIRTH": -200 * 365}}, 422, "application.DAYS_BIRTH", "greater than or equal"),
    ({"application": {**VALID, "CNT_CHILDREN": 1.5}}, 422, "application.CNT_CHILDREN", "whole number"),
    ({"application": {**VALID, "EXT_SOURCE_2": 1.7}}, 422, "application.EXT_SOURCE_2", "less than or equal to 1"),
    ({"application": {**VALID, "CODE_GENDER": 1}}, 422, "application.CODE_GENDER", "valid string"),
    ({"application": {**VALID, "FLAG_MOBIL": True}}, 422, "application.FLAG_MOBIL", "valid number"),
    ({"application": {k: v for k, v in VALID.items() if k != "AMT_ANNUITY"}}, 422, "application.AMT_ANNUITY",
     "required field is missing"),
    ({"applications": [VALID] * 1001}, 422, "applications", "at most 1000"),
    ({"applications": []}, 422, "applications", "at least 1"),
    ({"application": VALID, "applications": [VALID]}, 422, "(body)", "exactly one of"),
    ({}, 422, "(body)", "exactly one of"),
    ({"application": VALID, "history": {"bureau": []}}, 422, "(body)", "needs its SK_ID_CURR"),
    ({"application": {**VALID, "SK_ID_CURR": 5}, "history": {"loans": []}}, 422, "history.loans", "unknown field"),
    ({"application": {**VALID, "SK_ID_CURR": 5}, "history": {"bureau": [{"SK_ID_CURR": 5, "SK_ID_BUREAU": 9,
                                                                         "DAYS_CREDIT": "yesterday"}]}},
     422, "history.bureau.0.DAYS_CREDIT", "valid number"),
    ({"application": VALID, "explain": "yes"}, 422, "explain", "valid boolean"),
])
def test_validation_errors_name_the_field(client, body, status, field, problem):
    response = client.post("/predict", json=body)
    assert response.status_code == status, response.text
    details = response.json["details"]
    assert any(d["field"] == field and problem in d["problem"] for d in details), details



def test_openapi_document(client):
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert {"/predict", "/clients/{client}/explain", "/model", "/health"} <= set(doc["paths"])
    application = doc["components"]["schemas"]["application_test_row"]
    assert application["properties"]["AMT_INCOME_TOTAL"]["anyOf"][0]["exclusiveMinimum"] == 0
    assert {"AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "DAYS_BIRTH"} <= set(application["required"])


def test_compare_answers_from_the_aggregates_and_names_a_feature_without_a_grid(client, tiny_models):
    reference = client.get("/reference").get_json()
    known = client.get("/clients?limit=1").get_json()["clients"][0]["SK_ID_CURR"]
    first, second = reference["grid_features"][:2]
    answer = client.get(f"/clients/{known}/compare", query_string={"feature": second, "versus": first})
    assert answer.status_code == 200, answer.get_json()
    flipped = client.get(f"/clients/{known}/compare", query_string={"feature": first, "versus": second}).get_json()
    if flipped["grid"] is not None:  # the same pair either way round: one grid, transposed
        assert answer.get_json()["grid"]["clients"] == [list(r) for r in zip(*flipped["grid"]["clients"])]
    other = next(f["name"] for f in reference["features"] if f["name"] not in reference["grid_features"])
    refused = client.get(f"/clients/{known}/compare", query_string={"feature": first, "versus": other})
    assert refused.status_code == 400
    assert refused.get_json()["details"] == [{"field": "versus", "problem": "no grid for this feature"}]
    alone = client.get(f"/clients/{known}/compare", query_string={"feature": other})
    assert alone.status_code == 200 and alone.get_json()["feature"]["everyone"]["clients"] > 0
