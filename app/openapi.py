"""The OpenAPI 3.1 document, built from the same pydantic models that validate the requests."""
from __future__ import annotations

from functools import lru_cache

from app.validation import MAX_BATCH, MAX_ID, PredictRequest, WhatIfRequest
from creditscore.explanation import groups

REF = "#/components/schemas/{model}"


def _body(name: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": REF.format(model=name)}}}}


def _ok(description: str, model: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}}}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}


ERRORS = {"400": _error("malformed JSON: not JSON, a key given twice, or nested more than 10 deep"),
          "401": _error("API key missing or wrong (when API_KEY is set)"),
          "404": _error("unknown client"),
          "408": _error("the request body did not arrive in time"),
          "413": _error("body too large"), "415": _error("body is not JSON"),
          "422": _error("invalid field: the body's `details` lists each field and its problem")}

NUMBER_OR_NULL = {"type": ["number", "null"]}
STRING = {"type": "string"}


def _object(required: dict, optional: dict | None = None, closed: bool = True) -> dict:
    schema = {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}
    if closed:
        schema["additionalProperties"] = False
    return schema


def response_schemas() -> dict:
    """What every 200 answer holds (schemathesis checks each answer against them)."""
    ref = lambda name: {"$ref": REF.format(model=name)}  # noqa: E731
    decision = {"probability": {"type": "number", "minimum": 0, "maximum": 1},
                "points": {"type": "number", "description": "the calibrated score in points (params.yaml `points`: "
                                                            "PDO scaling, higher is safer)"},
                "decision": {"enum": ["granted", "refused"]}, "distance_to_threshold": {"type": "number"},
                "threshold": {"type": "number"}, "model_version": STRING}
    contribution = _object({"feature": STRING, "label": STRING, "value": NUMBER_OR_NULL,
                            "contribution": {"type": "number"}})
    reason = _object({"rank": {"type": "integer", "minimum": 1}, "feature": STRING, "label": STRING,
                      "value": {"type": ["number", "string", "null"]}, "contribution": {"type": "number"},
                      "direction": {"enum": ["towards refusal", "towards approval"]}, "text": STRING})
    key_values = {"type": "object", "additionalProperties": NUMBER_OR_NULL}
    known_id = {"SK_ID_CURR": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}
    return {
        "Explanation": _object({"space": STRING, "base_value": {"type": "number"},
                                "contributions": {"type": "array", "items": contribution},
                                "reasons": {"type": "array", "items": reason},
                                "fields": {"type": "array", "items": _object({"field": STRING, "label": STRING,
                                                                              "contribution": {"type": "number"}})},
                                "threshold_score": {"type": ["number", "null"]}}),
        "Prediction": _object({**decision, "SK_ID_CURR": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_ID}},
                              {"explanation": ref("Explanation")}),
        "PredictionBatch": _object({"model_version": STRING, "count": {"type": "integer", "minimum": 1},
                                    "predictions": {"type": "array", "items": ref("Prediction")}}),
        "PredictResponse": {"oneOf": [ref("Prediction"), ref("PredictionBatch")]},
        "Health": _object({"status": {"const": "ok"}, "model_loaded": {"const": True}, "model_version": STRING,
                           "inference_log": {"type": "object", "required": ["backend"],
                                             "properties": {"backend": {"enum": ["off", "sqlite", "postgresql"]}}}},
                          {"warnings": {"type": "array", "items": STRING}}),
        "ModelInfo": _object({"model_version": STRING, "model": STRING, "threshold": {"type": "number"},
                              "cost": {"type": "object"}, "calibration": STRING, "n_features": {"type": "integer"},
                              "features": {"type": "array", "items": STRING}, "metrics": {"type": "object"},
                              "known_clients": {"type": "integer"}, "inference_log": {"type": "object"}},
                             closed=False),
        "Clients": _object({"total": {"type": "integer", "minimum": 0}, "offset": {"type": "integer", "minimum": 0},
                            "clients": {"type": "array", "items": _object(
                                {**known_id, "probability": decision["probability"], "decision": decision["decision"]})}}),
        "Client": _object({**known_id, **decision, "client": {"type": "object", "additionalProperties": {
            "type": ["number", "string", "null"]}}, "key_values": key_values}),
        "ClientExplanation": _object({**known_id, **decision, "explanation": ref("Explanation"),
                                      "key_values": key_values}),
        "WhatIf": _object({**known_id, "changes": key_values, **decision, "explanation": ref("Explanation"),
                           "key_values": key_values}),
        "Reference": _object({"key_fields": {"type": "array", "items": STRING},
                              "labels": {"type": "object", "additionalProperties": STRING},
                              "quantiles": {"type": "array", "items": {"type": "number"}},
                              "distributions": {"type": "object", "additionalProperties": _object(
                                  {"granted": {"type": "array", "items": NUMBER_OR_NULL},
                                   "refused": {"type": "array", "items": NUMBER_OR_NULL}})},
                              "threshold": {"type": "number"},
                              "drivers": {"type": "array", "items": _object({
                                  "field": STRING, "label": STRING, "mean_abs_contribution": {"type": "number"}})},
                              "cost": {"type": "object", "additionalProperties": NUMBER_OR_NULL},
                              "filters": {"type": "object", "additionalProperties": _object(
                                  {"label": STRING, "levels": {"type": "array", "items": STRING}})},
                              "features": {"type": "array", "items": _object({"name": STRING, "label": STRING})},
                              "grid_features": {"type": "array", "items": STRING},
                              "what_if_fields": {"type": "array", "items": STRING}}),
        "Comparison": _object({**known_id, "group": {"type": "object"}, "everyone": {"type": "object"},
                               "feature": ref("Compared")}, {"versus": ref("Compared"),
                                                             "grid": {"type": ["object", "null"]}}),
        "Compared": _object({"name": STRING, "label": STRING, "unit": {"type": "string"}, "client": NUMBER_OR_NULL,
                             "group": {"type": "object"}, "everyone": {"type": "object"}}),
    }


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    schemas: dict = {}
    for model in (PredictRequest, WhatIfRequest):
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    # "exactly one of application / applications", which the model's validator enforces
    with_id = {"required": ["SK_ID_CURR"], "properties": {"SK_ID_CURR": {"type": "integer"}}}
    schemas["PredictRequest"]["if"] = {"required": ["history"], "properties": {"history": {"not": {"type": "null"}}}}
    schemas["PredictRequest"]["then"] = {"properties": {  # history rows are matched to applications by SK_ID_CURR
        "application": {"anyOf": [{"type": "null"}, with_id]},
        "applications": {"anyOf": [{"type": "null"}, {"items": with_id}]}}}
    schemas["PredictRequest"]["oneOf"] = [
        {"required": [shape], "properties": {shape: {"not": {"type": "null"}}}} for shape in ("application", "applications")]
    schemas["Error"] = {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "problem": {"type": "string"}}}}}}
    schemas.update(response_schemas())
    client = [{"name": "client", "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}]
    paths = {
        "/health": {"get": {"summary": "alive and model loaded (never needs the API key)", "security": [],
                            "responses": {"200": _ok("status", "Health")}}},
        "/model": {"get": {"summary": "model version, training date, threshold, costs, headline metrics",
                           "responses": {"200": _ok("model facts", "ModelInfo"), **ERRORS}}},
        "/predict": {"post": {"summary": "score one application or a batch from raw application fields "
                                         "(optionally with history rows and explanations)",
                              "requestBody": _body("PredictRequest"),
                              "responses": {"200": _ok("probability, decision, distance to the threshold", "PredictResponse"), **ERRORS}}},
        "/clients": {"get": {"summary": "known clients (application_test of the last run), paged",
                             "parameters": [{"name": "limit", "in": "query", "schema": {
                                                 "type": "integer", "minimum": 1, "maximum": MAX_BATCH, "default": 50}},
                                            {"name": "offset", "in": "query", "schema": {
                                                "type": "integer", "minimum": 0, "default": 0}}],
                             "responses": {"200": _ok("clients", "Clients"), **ERRORS}}},
        "/clients/{client}": {"get": {"summary": "score of a known client and its key fields", "parameters": client,
                                      "responses": {"200": _ok("score", "Client"), **ERRORS}}},
        "/clients/{client}/explain": {"get": {"summary": "local contributions and the top-4 reason codes",
                                              "parameters": client, "responses": {"200": _ok("explanation", "ClientExplanation"), **ERRORS}}},
        "/clients/{client}/whatif": {"post": {"summary": "rescore a known client with changed amounts",
                                              "parameters": client, "requestBody": _body("WhatIfRequest"),
                                              "responses": {"200": _ok("score and explanation", "WhatIf"), **ERRORS}}},
        "/clients/{client}/compare": {"get": {
            "summary": "the client against similar training clients (filters) and everyone, in aggregates only",
            "parameters": client + [{"name": "feature", "in": "query", "required": True, "schema": STRING},
                                    {"name": "versus", "in": "query", "schema": STRING}]
            + [{"name": f, "in": "query", "schema": STRING} for f in groups.FILTERS],
            "responses": {"200": _ok("comparison", "Comparison"), **ERRORS}}},
        "/reference": {"get": {"summary": "key fields' distributions among granted and refused clients",
                               "responses": {"200": _ok("quantiles", "Reference"), **ERRORS}}},
    }
    return {"openapi": "3.1.0",
            "info": {"title": "Prêt à dépenser credit-scoring API", "version": "1.0.0",
                     "description": "Calibrated probability of default, decision at the cost-minimising threshold, "
                                    "and reason codes."},
            "components": {"schemas": schemas,
                           "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
            "security": [{"apiKey": []}], "paths": paths}
