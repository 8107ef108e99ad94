"""What the local stack's function URL front end hands a handler and makes of its answer (infra.function_urls)."""

import base64
import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from infra.function_urls import FunctionUrls, http_response, request_event
from infra.runtime import InvocationResult


def test_a_form_post_arrives_base64_encoded_with_lambdas_payload_2_shape() -> None:
    event = request_event(
        "POST",
        "/?token=abc&tag=a&tag=b",
        {"host": "127.0.0.1:9999", "content-type": "application/x-www-form-urlencoded", "user-agent": "mail"},
        b"List-Unsubscribe=One-Click",
    )

    assert event["version"] == "2.0"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["userAgent"] == "mail"
    assert event["rawQueryString"] == "token=abc&tag=a&tag=b"
    assert event["queryStringParameters"] == {"token": "abc", "tag": "a,b"}
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"List-Unsubscribe=One-Click"


def test_a_json_body_arrives_as_text_and_a_get_has_no_body() -> None:
    posted = request_event("POST", "/hook", {"content-type": "application/json"}, b'{"a": 1}')
    fetched = request_event("GET", "/", {}, b"")

    assert (posted["isBase64Encoded"], posted["body"], posted["rawPath"]) == (False, '{"a": 1}', "/hook")
    assert fetched["isBase64Encoded"] is False
    assert "body" not in fetched
    assert "queryStringParameters" not in fetched


def test_a_status_code_response_is_used_as_is_and_anything_else_is_a_json_200() -> None:
    page = {"statusCode": 404, "headers": {"Content-Type": "text/html"}, "body": "<p>gone</p>"}
    binary = {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}

    assert http_response(page) == (404, {"Content-Type": "text/html"}, b"<p>gone</p>")
    assert http_response(binary)[2] == b"\x00\x01"
    assert http_response({"ok": True}) == (200, {"Content-Type": "application/json"}, b'{"ok": true}')


class _Echo:
    """A route that answers every request with the event it was given."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def owns(self, function_arn: str) -> bool:
        return True

    def invoke_async(self, function_arn: str, event: Any, trigger: str) -> str:
        raise AssertionError("function URLs invoke synchronously")

    def invoke_sync(self, function_arn: str, event: Any, trigger: str) -> InvocationResult:
        with self.lock:
            self.events.append(event)
        if self.fail:
            return InvocationResult("r", '{"errorMessage": "boom"}', {"errorMessage": "boom"}, 1.0)
        response = {"statusCode": 201, "headers": {"X-Arn": function_arn}, "body": event["body"]}
        return InvocationResult("r", json.dumps(response), None, 1.0)


def test_a_bound_url_waits_for_the_router_then_answers_over_http_and_a_function_error_is_a_502() -> None:
    urls = FunctionUrls()
    arn = "arn:aws:lambda:us-east-1:123456789012:function:echo"
    url = urls.bind(arn)
    failing_urls = FunctionUrls()
    failing_url = failing_urls.bind(arn)
    try:
        assert urls.invoke(arn, {})[0] == 503  # bound at deploy, before the router runs
        route = _Echo()
        urls.serve(route)
        failing_urls.serve(_Echo(fail=True))

        request = urllib.request.Request(url, data=b"hello", method="PUT", headers={"Content-Type": "text/plain"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a local http URL
            assert (response.status, response.read(), response.headers["X-Arn"]) == (201, b"hello", arn)
        assert route.events[0]["requestContext"]["http"]["method"] == "PUT"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(failing_url, timeout=10)  # noqa: S310
        assert refused.value.code == 502
    finally:
        urls.close()
        failing_urls.close()
