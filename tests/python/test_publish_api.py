"""The HTTP control API (reference §6.2): status codes and exact error texts as Pushpin gives
them, content negotiation, and all-or-nothing validation."""

import json

import httpx
import pytest

from conftest import publish_json


def post(proxy, path, body, headers=None):
    return httpx.post(proxy.control_uri + path, content=body, headers=headers or {}, timeout=10)


def test_root_answers(proxy):
    r = httpx.get(proxy.control_uri + "/", timeout=10)
    assert r.status_code == 200
    assert r.text == "Pushpin API\n"


@pytest.mark.parametrize(
    "body,message",
    [
        (b"{not json", "Body is not valid JSON."),
        (b"[1]", "Invalid format."),
        (b"{}", "Invalid format: object does not contain 'items'"),
        (b'{"items": 5}', "Invalid format: object contains 'items' with wrong type"),
        (b'{"items": [{"formats": {}}]}', "Invalid format: publish item object does not contain 'channel'"),
        (
            b'{"items": [{"channel": "x", "formats": {"http-stream": {}}}]}',
            "Invalid format: 'http-stream' does not contain 'content' or 'content-bin'",
        ),
    ],
)
def test_bad_publishes_get_pushpin_errors(proxy, body, message):
    r = post(proxy, "/publish/", body, {"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == message + "\n"


def test_all_or_nothing(proxy, backend):
    good = {"channel": "x", "formats": {"http-stream": {"content": "hi"}}}
    bad = {"channel": "y", "formats": {"http-stream": {}}}
    status, _, text = publish_json(proxy, [good, bad])
    assert status == 400


def test_success_text_and_json(proxy):
    item = {"channel": "x", "formats": {"http-stream": {"content": "hi"}}}
    status, headers, text = publish_json(proxy, [item])
    assert (status, text) == (200, "Published\n")
    status, headers, text = publish_json(proxy, [item], accept="application/json")
    assert status == 200
    assert json.loads(text) == {"message": "Published"}
    status, headers, text = publish_json(proxy, [item], accept="image/png")
    assert status == 406
    assert text == "Not Acceptable. Supported formats are text/plain and application/json.\n"


def test_method_not_allowed_and_not_found(proxy):
    r = httpx.get(proxy.control_uri + "/publish/", timeout=10)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.text == "Method not allowed: GET.\n"
    r = httpx.get(proxy.control_uri + "/nothing", timeout=10)
    assert r.status_code == 404
    assert r.text == "Not Found\n"


def test_recover(proxy):
    r = post(proxy, "/recover", b"")
    assert r.status_code == 200
    assert r.text == "Updated\n"
