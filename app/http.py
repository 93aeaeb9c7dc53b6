"""The HTTP rules every answer follows: the JSON body reader, 4xx JSON errors, security headers, the API key."""
from __future__ import annotations

import hashlib
import hmac
import json

from flask import Flask, jsonify, redirect, request
from pydantic import ValidationError
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.routing import BaseConverter

from app.validation import error_details
from creditscore.errors import DataError

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 10  # nesting of a JSON body: {"history": {"bureau": [{...}]}} is 4 deep
TOO_DEEP = f"JSON body nested too deeply (at most {MAX_DEPTH} levels)"
COOKIE = "credit_api_key"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'; object-src 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


class ClientId(BaseConverter):
    """A client id in a URL: ASCII digits only (int() would also read other scripts' digits), at most 16."""
    regex = "[0-9]{1,16}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


def api_key_from_environment(env) -> str | None:
    """API_KEY from the settings: None when unset; set but blank is a mistake, not "no authentication"."""
    key = env.get("API_KEY")
    if key is not None and not key.strip():
        raise ValueError("API_KEY is set but empty: set a key, or unset API_KEY to serve without authentication")
    return key


def session_token(api_key: str) -> str:
    """The dashboard's cookie value: derived from the key, so the cookie never holds the key itself."""
    return hmac.new(api_key.encode(), b"credit-dashboard-session", hashlib.sha256).hexdigest()


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple]) -> dict:
    """json.loads hook: an object that names a key twice is refused (the last one would silently win)."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _depth(value) -> int:
    """How deeply a parsed JSON value nests objects and arrays (iterative: no recursion on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def error(status: int, message: str, details: list[dict] | None = None):
    body = {"error": message}
    if details:
        body["details"] = details
    return jsonify(body), status


def json_body() -> dict:
    """The request's JSON object, or a 4xx that says what is wrong with the body."""
    if not request.is_json:
        raise BadBody(415, "the body must be JSON (Content-Type: application/json)")
    try:
        raw = request.get_data(cache=True)
    except (OSError, ClientDisconnected):  # the client stopped sending its body (with no buffering proxy in front)
        raise BadBody(408, "the request body did not arrive in time") from None
    try:
        data = json.loads(raw, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise BadBody(400, f"duplicate key {exc.key!r} in the JSON body",
                       [{"field": exc.key, "problem": "duplicate key"}]) from None
    except RecursionError:
        raise BadBody(400, TOO_DEEP) from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise BadBody(400, "malformed JSON body") from None
    if _depth(data) > MAX_DEPTH:
        raise BadBody(400, TOO_DEEP)
    if not isinstance(data, dict):
        raise BadBody(400, "the JSON body must be an object")
    return data


class BadBody(Exception):
    def __init__(self, status: int, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


def install(app: Flask, api_key: str | None) -> None:
    """The API key check, the security headers and the JSON error handlers, for every blueprint of `app`."""

    @app.before_request
    def _check_key():
        if api_key is None or request.endpoint == "api.health":
            return None
        if request.endpoint == "dashboard.page" and "api_key" in request.args:  # the one place a key may be typed
            if not hmac.compare_digest(request.args["api_key"].encode(), api_key.encode()):
                return error(401, "wrong API key")
            response = redirect("/", code=303)  # the key leaves the address bar, the history and the Referer
            response.set_cookie(COOKIE, session_token(api_key), httponly=True, samesite="Strict",
                                secure=request.is_secure)
            return response
        header, cookie = request.headers.get("X-API-Key"), request.cookies.get(COOKIE)
        if header is not None and hmac.compare_digest(header.encode(), api_key.encode()):
            return None
        if cookie is not None and hmac.compare_digest(cookie.encode(), session_token(api_key).encode()):
            return None
        return error(401, "missing or wrong API key: send it in the X-API-Key header")

    @app.after_request
    def _security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(BadBody)
    def _bad_body(exc: BadBody):
        return error(exc.status, exc.message, exc.details)

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError):
        details = error_details(exc)
        return error(422, f"invalid request: {details[0]['field']}: {details[0]['problem']}", details)

    @app.errorhandler(DataError)
    def _bad_data(exc: DataError):
        return error(422, f"invalid history rows: {exc}")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        messages = {413: f"request body too large (limit {MAX_BODY_BYTES // (1024 * 1024)} MB)"}
        body, status = error(exc.code or 500, messages.get(exc.code, exc.description or exc.name))
        for name, value in exc.get_headers():  # e.g. Allow on a 405
            if name.lower() != "content-type":
                body.headers[name] = value
        return body, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # a defect, not bad input: say so without leaking internals
        app.logger.exception("unexpected error")
        return error(500, f"internal error ({type(exc).__name__}); the request was not scored")
