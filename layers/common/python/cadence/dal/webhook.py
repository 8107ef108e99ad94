"""Webhook POSTs to the receivers campaigns name: one attempt each, HTTPS only (a loopback http receiver when allowed).

The stdlib's http.client rather than urllib.request (which wraps it): urllib has one timeout for connecting and
for the answer, and follows redirects; here the connect timeout and the read timeout are apart, as for SES and SNS
(clients.SendTimeouts), because a failure to connect provably sent nothing while a missing answer may hide a
delivered message; and a redirect is an answer (3xx, rejected), never followed to a host the campaign did not name.
"""

import contextlib
import http.client
import ssl
from collections.abc import Mapping
from functools import cache
from urllib.parse import urlsplit

from cadence.dal import clients
from cadence.errors import PermanentError, TransientError, UncertainOutcomeError

# Statuses that say the receiver did not act on the request and may later: request timeout, rate limit, 5xx.
_RETRY_LATER = frozenset({408, 429})
_SERVER_ERROR = 500
# Of an answer's body only this much is read (and dropped): the status is the answer.
_ANSWER_BYTES = 64 * 1024


@cache
def _tls() -> ssl.SSLContext:
    # One per container: loading the CA bundle takes milliseconds, not per send.
    return ssl.create_default_context()


def _connection(url: str, timeouts: clients.SendTimeouts, *, allow_loopback_http: bool) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeouts.connect_seconds, context=_tls())
    if parts.scheme == "http" and parts.hostname == "127.0.0.1" and allow_loopback_http:
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeouts.connect_seconds)
    raise PermanentError("webhook_url_not_allowed")


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeouts: clients.SendTimeouts,
    *,
    allow_loopback_http: bool = False,
) -> int:
    """POST `body` (JSON) to `url` once; returns the receiver's 2xx status.

    Raises:
        PermanentError: the url is not one we send to (plain http, unless to 127.0.0.1 with `allow_loopback_http`),
            the receiver's certificate does not verify, or it answered 3xx or 4xx (`http_<status>`) but 408 and 429.
        TransientError: the receiver could not be reached or the request not sent whole, or it answered 408, 429 or
            5xx: it did not act on the message, so a retry may send it.
        UncertainOutcomeError: the request was sent and no answer came (read timeout, connection lost): it may have
            been delivered.
    """
    connection = _connection(url, timeouts, allow_loopback_http=allow_loopback_http)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        try:
            connection.connect()
        except ssl.SSLCertVerificationError as exc:
            raise PermanentError("webhook: certificate_invalid") from exc
        except TimeoutError as exc:
            raise TransientError("webhook: connect_timeout") from exc
        except OSError as exc:
            raise TransientError("webhook: unreachable") from exc
        if connection.sock is not None:
            connection.sock.settimeout(timeouts.read_seconds)
        try:
            connection.request(
                "POST", target, body=body, headers={"Content-Type": "application/json; charset=utf-8", **headers}
            )
        except OSError as exc:
            # The request did not leave whole: a receiver cannot act on part of one.
            raise TransientError("webhook: send_failed") from exc
        try:
            response = connection.getresponse()
        except TimeoutError as exc:
            raise UncertainOutcomeError("webhook: read_timeout") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise UncertainOutcomeError("webhook: connection_lost") from exc
        # The status came, which is the answer; a body cut short changes nothing.
        with contextlib.suppress(OSError, http.client.HTTPException):
            response.read(_ANSWER_BYTES)
    finally:
        connection.close()
    status = response.status
    if 200 <= status < 300:
        return status
    if status in _RETRY_LATER or status >= _SERVER_ERROR:
        raise TransientError(f"http_{status}")
    raise PermanentError(f"http_{status}")
