"""The OpenAPI 3.1 document, built from the same pydantic models that validate the requests."""
from __future__ import annotations

from functools import lru_cache

from app.validation import MAX_BATCH, MAX_ID, PredictRequest, WhatIfRequest

REF = "#/components/schemas/{model}"


def _body(name: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": REF.format(model=name)}}}}


def _ok(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}


ERRORS = {"400": {"description": "malformed JSON: not JSON, a key given twice, or nested more than 10 deep",
                  "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}},
          "401": {"description": "API key missing or wrong (when API_KEY is set)"},
          "404": {"description": "unknown client"},
          "413": {"description": "body too large"}, "415": {"description": "body is not JSON"},
          "422": {"description": "invalid field: the body's `details` lists each field and its problem",
                  "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}}


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
    client = [{"name": "client", "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}]
    paths = {
        "/health": {"get": {"summary": "alive and model loaded (never needs the API key)", "security": [],
                            "responses": {"200": _ok("status")}}},
        "/model": {"get": {"summary": "model version, training date, threshold, costs, headline metrics",
                           "responses": {"200": _ok("model facts"), **ERRORS}}},
        "/predict": {"post": {"summary": "score one application or a batch from raw application fields "
                                         "(optionally with history rows and explanations)",
                              "requestBody": _body("PredictRequest"),
                              "responses": {"200": _ok("probability, decision, distance to the threshold"), **ERRORS}}},
        "/clients": {"get": {"summary": "known clients (application_test of the last run), paged",
                             "parameters": [{"name": "limit", "in": "query", "schema": {
                                                 "type": "integer", "minimum": 1, "maximum": MAX_BATCH, "default": 50}},
                                            {"name": "offset", "in": "query", "schema": {
                                                "type": "integer", "minimum": 0, "default": 0}}],
                             "responses": {"200": _ok("clients"), **ERRORS}}},
        "/clients/{client}": {"get": {"summary": "score of a known client and its key fields", "parameters": client,
                                      "responses": {"200": _ok("score"), **ERRORS}}},
        "/clients/{client}/explain": {"get": {"summary": "local contributions and the top-4 reason codes",
                                              "parameters": client, "responses": {"200": _ok("explanation"), **ERRORS}}},
        "/clients/{client}/whatif": {"post": {"summary": "rescore a known client with changed amounts",
                                              "parameters": client, "requestBody": _body("WhatIfRequest"),
                                              "responses": {"200": _ok("score and explanation"), **ERRORS}}},
        "/reference": {"get": {"summary": "key fields' distributions among granted and refused clients",
                               "responses": {"200": _ok("quantiles"), **ERRORS}}},
    }
    return {"openapi": "3.1.0",
            "info": {"title": "Prêt à dépenser credit-scoring API", "version": "1.0.0",
                     "description": "Calibrated probability of default, decision at the cost-minimising threshold, "
                                    "and reason codes."},
            "components": {"schemas": schemas,
                           "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
            "security": [{"apiKey": []}], "paths": paths}
