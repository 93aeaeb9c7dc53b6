"""The API against hostile input, faults and misuse, on a real gunicorn server, each hole a test.

Malformed, duplicated-key and deeply nested JSON; ids out of range; non-ASCII digits in URLs; security headers;
the API key outside URLs; refused starts; a model file changed while serving; schemathesis with every check.
"""
from __future__ import annotations

import json
import shutil

import pytest
import requests

from tests.server import MODELS, VALID, Proxy, Server, require_models, require_nginx, run_until_exit

pytestmark = pytest.mark.slow


def test_api_key_is_required_except_for_health(tmp_path):
    require_models()
    s = Server({"API_KEY": "s3cret", "INFERENCE_LOG": "off"}, workers=1).start()
    try:
        assert requests.get(s.url + "/health").status_code == 200
        denied = requests.get(s.url + "/model")
        assert denied.status_code == 401 and "API key" in denied.json()["error"]
        assert requests.get(s.url + "/model", headers={"X-API-Key": "wrong"}).status_code == 401
        assert requests.get(s.url + "/model", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert requests.post(s.url + "/predict", json={"application": VALID}).status_code == 401
        assert requests.get(s.url + "/").status_code == 401
        assert requests.get(s.url + "/model?api_key=s3cret").status_code == 401  # never a key in an API URL
        assert requests.get(s.url + "/?api_key=wrong", allow_redirects=False).status_code == 401
        session = requests.Session()  # the dashboard: key once in the address, then a cookie and a clean address
        first = session.get(s.url + "/?api_key=s3cret", allow_redirects=False)
        assert first.status_code == 303 and first.headers["Location"] == "/"
        cookie = first.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie  # plain http here
        assert "s3cret" not in cookie  # a token derived from the key, not the key
        page = session.get(s.url + "/")
        assert page.status_code == 200 and page.url == s.url + "/"
        assert session.get(s.url + "/reference").status_code == 200
        raw = requests.get(s.url + "/reference", cookies={"credit_api_key": "s3cret"})
        assert raw.status_code == 401  # the raw key as a cookie is not a session
        proxied = requests.get(s.url + "/?api_key=s3cret", allow_redirects=False,
                               headers={"X-Forwarded-Proto": "https"})  # behind Render's or Heroku's TLS router
        assert "Secure" in proxied.headers["Set-Cookie"]
    finally:
        s.stop()


def test_an_empty_api_key_refuses_to_start():
    require_models()
    done = run_until_exit({"API_KEY": "  ", "INFERENCE_LOG": "off", "WEB_CONCURRENCY": "1"})
    assert done.returncode != 0
    assert "API_KEY is set but empty" in done.stdout + done.stderr


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_refuses_to_start_on_a_bad_bundle(tmp_path, damage):
    require_models()
    for name in ("bundle.joblib", "bundle.joblib.sha256", "reference.joblib", "reference.joblib.sha256"):
        shutil.copy2(MODELS / name, tmp_path / name)
    if damage == "corrupt":
        data = bytearray((tmp_path / "bundle.joblib").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (tmp_path / "bundle.joblib").write_bytes(bytes(data))
        expected = "does not match its recorded checksum"
    else:
        (tmp_path / "bundle.joblib").unlink()
        expected = "bundle.joblib is missing"
    done = run_until_exit({"MODEL_BUNDLE": str(tmp_path / "bundle.joblib"),
                           "MODEL_REFERENCE": str(tmp_path / "reference.joblib"), "WEB_CONCURRENCY": "1"})
    assert done.returncode != 0
    assert expected in done.stdout + done.stderr and "dvc repro" in done.stdout + done.stderr


def _post_raw(server, path: str, body: str) -> requests.Response:
    return requests.post(server.url + path, data=body.encode(), headers={"Content-Type": "application/json"})


def test_hostile_json_bodies_get_a_4xx_naming_the_problem(server):
    deep = _post_raw(server, "/predict", '{"application":' * 990 + "1" + "}" * 990)
    assert deep.status_code == 400 and "nested too deeply" in deep.json()["error"], deep.text
    deeper = _post_raw(server, "/predict", "[" * 100_000 + "]" * 100_000)  # past the parser's recursion limit
    assert deeper.status_code == 400 and "nested too deeply" in deeper.json()["error"], deeper.text
    fields = json.dumps(VALID)[1:-1]
    twice = _post_raw(server, "/predict", '{"application": {"AMT_INCOME_TOTAL": -5, ' + fields + "}}")
    assert twice.status_code == 400, twice.text
    assert twice.json()["details"] == [{"field": "AMT_INCOME_TOTAL", "problem": "duplicate key"}]
    assert _post_raw(server, "/predict", '{"application": {' + fields + "}}").status_code == 200


@pytest.mark.parametrize("value", [2**63, 2**70, 1e300, 2**53 + 1, float(2**53 + 2), -1, 5.5, True, "5"])
def test_ids_outside_the_documented_range_or_not_whole_are_refused(server, value):
    response = requests.post(server.url + "/predict", json={"application": {**VALID, "SK_ID_CURR": value}})
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == "application.SK_ID_CURR"


def test_large_ids_come_back_exactly_as_sent(server):
    largest = 2**53 - 1
    response = requests.post(server.url + "/predict", json={"applications": [{**VALID, "SK_ID_CURR": largest},
                                                                            {**VALID, "SK_ID_CURR": largest - 1},
                                                                            {**VALID, "SK_ID_CURR": 5.0}]})
    assert response.status_code == 200, response.text
    assert [p["SK_ID_CURR"] for p in json.loads(response.text)["predictions"]] == [largest, largest - 1, 5]
    doc = requests.get(server.url + "/openapi.json").json()
    assert doc["components"]["schemas"]["application_test_row"]["properties"]["SK_ID_CURR"]["anyOf"][0] == {
        "type": "integer", "minimum": 0, "maximum": largest}


def test_client_ids_in_urls_are_ascii_digits_only(server):
    first = requests.get(server.url + "/clients?limit=1").json()["clients"][0]["SK_ID_CURR"]
    assert requests.get(f"{server.url}/clients/{first}").status_code == 200
    arabic = "".join("٠١٢٣٤٥٦٧٨٩"[int(d)] for d in str(first))  # the same number in Arabic-Indic digits
    for path in (f"/clients/{arabic}", f"/clients/{arabic}/explain", f"/clients/{first}x", "/clients/" + "9" * 40):
        response = requests.get(server.url + path)
        assert response.status_code == 404 and "error" in response.json(), (path, response.text)


def test_every_answer_carries_the_security_headers(server):
    first = requests.get(server.url + "/clients?limit=1").json()["clients"][0]["SK_ID_CURR"]
    answers = [requests.get(server.url + "/health"), requests.get(server.url + "/"),
               requests.get(server.url + "/static/dashboard.js"), requests.get(f"{server.url}/clients/{first}"),
               requests.post(server.url + "/predict", json={}), requests.delete(server.url + "/predict"),
               requests.get(server.url + "/no-such-page")]
    for response in answers:
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], response.url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"


def test_a_changed_bundle_on_disk_never_takes_the_service_down(tmp_path):
    """Flip a byte of the bundle while serving, then kill -9 a worker: the new worker serves the verified copy."""
    import os
    import signal
    import subprocess
    import time

    require_models()
    for name in ("bundle.joblib", "bundle.joblib.sha256", "reference.joblib", "reference.joblib.sha256"):
        shutil.copy2(MODELS / name, tmp_path / name)
    s = Server({"MODEL_BUNDLE": str(tmp_path / "bundle.joblib"), "MODEL_REFERENCE": str(tmp_path / "reference.joblib"),
                "INFERENCE_LOG": "off", "API_KEY": None}, workers=2).start()
    try:
        before = requests.get(s.url + "/health").json()
        assert "warnings" not in before
        expected = requests.post(s.url + "/predict", json={"application": VALID}).json()["probability"]
        data = bytearray((tmp_path / "bundle.joblib").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (tmp_path / "bundle.joblib").write_bytes(bytes(data))
        workers = subprocess.run(["pgrep", "-P", str(s.process.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 2
        os.kill(int(workers[0]), signal.SIGKILL)
        deadline = time.time() + 20
        while time.time() < deadline:  # until the master has booted a replacement
            now = subprocess.run(["pgrep", "-P", str(s.process.pid)], capture_output=True, text=True).stdout.split()
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.2)
        time.sleep(3)  # the replacement loads the model
        assert s.process.poll() is None, "gunicorn stopped"
        for _ in range(20):  # both workers answer, with the model verified at start
            health = requests.get(s.url + "/health")
            assert health.status_code == 200 and health.json()["model_version"] == before["model_version"]
            assert any("no longer matches the served file" in w for w in health.json()["warnings"])
            scored = requests.post(s.url + "/predict", json={"application": VALID})
            assert scored.status_code == 200 and scored.json()["probability"] == expected
    finally:
        s.stop()


def test_openapi_and_app_agree_on_methods_security_and_shape(server):
    refused = requests.delete(server.url + "/predict")
    assert refused.status_code == 405 and set(refused.headers["Allow"].replace(" ", "").split(",")) >= {"POST"}
    assert refused.json()["error"]
    doc = requests.get(server.url + "/openapi.json").json()
    assert doc["paths"]["/health"]["get"]["security"] == [] and doc["security"] == [{"apiKey": []}]
    assert [o["required"] for o in doc["components"]["schemas"]["PredictRequest"]["oneOf"]] == [["application"],
                                                                                                ["applications"]]
    assert "400" in doc["paths"]["/predict"]["post"]["responses"]


def test_schemathesis_finds_nothing_with_every_check(tmp_path):
    """schemathesis, every check, on a keyed server: sized for CI; docs/api.md gives the longer run."""
    import subprocess
    import sys
    from pathlib import Path

    require_models()
    s = Server({"API_KEY": "st-key", "INFERENCE_LOG": "off"}, workers=2).start()
    try:
        st = Path(sys.executable).parent / "st"
        done = subprocess.run([str(st), "run", s.url + "/openapi.json", "--checks", "all", "--max-examples", "8",
                               "--seed", "1", "-H", "X-API-Key: st-key", "--no-color"],
                              capture_output=True, text=True, timeout=600, cwd=tmp_path)
        summary = done.stdout[-3000:]
        assert done.returncode == 0 and " passed" in summary and "failures" not in summary, summary
    finally:
        s.stop()


def test_half_open_connections_cost_the_proxy_a_connection_never_a_worker():
    """Slow clients, behind the buffering proxy the sync workers are deployed behind (app/nginx.conf.template; on
    Heroku its router): 8 connections that stop half-way through the request line, the headers or the body, or send
    nothing. The service goes on answering at once, and the proxy closes each of them after its read timeout."""
    import socket
    import time

    require_models()
    require_nginx()
    s = Server({"INFERENCE_LOG": "off", "API_KEY": None}, workers=2).start()
    proxy = None
    partial = [b"GET /hea", b"GET /health HTTP/1.1\r\nHost: x\r\n",
               b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n"
               b'{"application": {"AMT_INC', b""]
    stalled = []
    try:
        proxy = Proxy(s.port, read_timeout=3).start()
        for i in range(8):
            c = socket.create_connection(("127.0.0.1", proxy.port))
            c.sendall(partial[i % len(partial)])
            stalled.append(c)
        opened = time.monotonic()
        time.sleep(0.5)
        for _ in range(10):  # two sync workers, eight stalled clients: every request is still answered at once
            started = time.monotonic()
            health = requests.get(proxy.url + "/health", timeout=5)
            scored = requests.post(proxy.url + "/predict", json={"application": VALID}, timeout=5)
            assert health.status_code == 200 and scored.status_code == 200
            assert scored.json()["decision"] in ("granted", "refused")
            assert time.monotonic() - started < 1.0
        for c in stalled:  # each is dropped after the read timeout (3 s here), not held
            c.settimeout(max(0.1, opened + 3 + 3 - time.monotonic()))
            data = chunk = c.recv(65536)  # raises TimeoutError if the proxy still holds it
            while chunk:
                chunk = c.recv(65536)
                data += chunk
            assert data == b""  # closed without an answer (nginx answers no client it timed out)
        for _ in range(10):
            started = time.monotonic()
            assert requests.get(proxy.url + "/health", timeout=5).status_code == 200
            assert time.monotonic() - started < 1.0
        too_large = requests.post(proxy.url + "/predict", data=b"x" * (6 * 1024 * 1024),
                                  headers={"Content-Type": "application/json"}, timeout=10)
        assert too_large.status_code == 413 and too_large.json()["error"].startswith("request body too large")
        batch = [VALID] * 1000  # a full batch padded past 1 MB: the proxy holds it whole and passes it on
        big = json.dumps({"applications": batch, "x": "y" * (2 * 1024 * 1024)})
        passed = requests.post(proxy.url + "/predict", data=big, headers={"Content-Type": "application/json"},
                               timeout=30)
        assert passed.status_code in (400, 422) and "error" in passed.json(), passed.text[:300]  # the app's answer
    finally:
        for c in stalled:
            c.close()
        proxy_log = proxy.stop() if proxy else ""
        log = s.stop()
    assert "Traceback" not in log, log[-3000:]
    assert "[emerg]" not in proxy_log, proxy_log[-3000:]
