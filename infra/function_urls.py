"""Lambda function URLs served over HTTP on the local stack, as AWS serves them.

The deployer binds one listener per ``AWS::Lambda::Url`` of the template (127.0.0.1, a free port) and gives its
address to moto as the function's URL, so ``!GetAtt <Url>.FunctionUrl`` (outputs, other functions' variables,
the links in sent email) resolves to an address that answers. Once the router runs, each request becomes the
payload-2.0 event Lambda delivers and the handler's response becomes the HTTP response, so ``curl`` or a mail
provider's RFC 8058 one-click POST reaches the real handler.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from infra.moto_patches import LambdaRoute

# Lambda passes these bodies as text; every other one arrives base64-encoded (isBase64Encoded).
_TEXT_TYPES: Final = ("text/", "application/json", "application/xml", "application/javascript")
_MAX_BODY_BYTES: Final = 6 * 1024 * 1024  # Lambda's synchronous payload limit


class FunctionUrls:
    """The listeners of one local stack's function URLs."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._servers: dict[str, _UrlServer] = {}  # by function ARN
        self._route: LambdaRoute | None = None

    def bind(self, function_arn: str) -> str:
        """Reserve a port for the function's URL; returns ``http://host:port/`` (requests wait for ``serve``)."""
        server = _UrlServer((self._host, 0), _Request, self, function_arn)
        self._servers[function_arn] = server
        host, port = server.server_address[:2]
        return f"http://{host}:{port}/"

    def serve(self, route: LambdaRoute) -> None:
        """Answer requests by invoking the functions through ``route``."""
        self._route = route
        for function_arn, server in self._servers.items():
            thread = threading.Thread(
                target=server.serve_forever, name=f"function-url {function_arn.rsplit(':', 1)[-1]}", daemon=True
            )
            thread.start()

    def close(self) -> None:
        """Stop every listener and free its port; safe to call twice."""
        self._route = None
        for server in self._servers.values():
            if server.serving:
                server.shutdown()
            server.server_close()
        self._servers.clear()

    def invoke(self, function_arn: str, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """One request, as Lambda's function URL front end answers it: status, headers, body."""
        route = self._route
        if route is None:
            return 503, {"Content-Type": "text/plain"}, b"Service Unavailable"
        result = route.invoke_sync(function_arn, event, "function-url")
        if not result.ok:
            return 502, {"Content-Type": "application/json"}, b'{"Message":"Internal Server Error"}'
        return http_response(result.payload)


class _UrlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], urls: FunctionUrls, arn: str):
        super().__init__(address, handler)
        self.urls = urls
        self.function_arn = arn
        self.serving = False

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self.serving = True
        super().serve_forever(poll_interval)


class _Request(BaseHTTPRequestHandler):
    server: _UrlServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def do_PATCH(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def do_OPTIONS(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the function's own log says what happened."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY_BYTES:
            self._write(413, {"Content-Type": "text/plain"}, b"Request Entity Too Large")
            return
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        event = request_event(self.command, self.path, headers, body, source_ip=self.client_address[0])
        status, response_headers, response_body = self.server.urls.invoke(self.server.function_arn, event)
        self._write(status, response_headers, b"" if self.command == "HEAD" else response_body)

    def _write(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def request_event(
    method: str, target: str, headers: dict[str, str], body: bytes, *, source_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """The payload-2.0 event Lambda builds for a function URL request (``target`` is the path and query)."""
    parts = urlsplit(target)
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value  # repeated names are comma-joined
    host = headers.get("host", "localhost")
    now = datetime.now(UTC)
    content_type = headers.get("content-type", "")
    text = content_type.startswith(_TEXT_TYPES)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": host.split(".", 1)[0],
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": method,
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": bool(body) and not text,
    }
    if query:
        event["queryStringParameters"] = query
    if "cookie" in headers:
        event["cookies"] = [cookie.strip() for cookie in headers["cookie"].split(";")]
    if body:
        event["body"] = body.decode("utf-8", errors="replace") if text else base64.b64encode(body).decode()
    return event


def http_response(payload: Any) -> tuple[int, dict[str, str], bytes]:
    """Lambda's reading of a handler's return value: a ``statusCode`` dict, or anything else as a JSON 200."""
    if not isinstance(payload, dict) or "statusCode" not in payload:
        return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()
    headers = {str(name): str(value) for name, value in (payload.get("headers") or {}).items()}
    raw = payload.get("body") or ""
    body = base64.b64decode(raw) if payload.get("isBase64Encoded") else str(raw).encode()
    headers.setdefault("Content-Type", "application/json")
    return int(payload["statusCode"]), headers, body
