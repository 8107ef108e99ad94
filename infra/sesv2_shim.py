"""The SESv2 calls moto (5.2) lacks, added to its SESv2 responder over its SES backend, for tests and the local stack.

moto answers SESv2 SendEmail, identities and configuration sets, but not SendBulkEmail, email templates or
GetAccount, and it drops SESv2 message headers. ``install()`` adds these operations to ``SESV2Response`` (the class
moto's in-process ``mock_aws`` and its server both dispatch SESv2 requests to), so the product's code path is the
one that runs on AWS, through botocore, in either mode:

- ``CreateEmailTemplate`` / ``UpdateEmailTemplate`` / ``GetEmailTemplate`` / ``DeleteEmailTemplate``: kept in the
  SES backend's templates (SES v1 and v2 share them on AWS too); errors as SESv2 names them
  (``AlreadyExistsException``, ``NotFoundException``).
- ``SendBulkEmail``: refuses an unverified sender (``MessageRejected``), a missing template or configuration set
  (``NotFoundException``) and more than 50 entries; renders the template (moto's own handlebars) with each entry's
  ReplacementTemplateData over the default data; records every message it accepts, with its destination,
  rendered subject/text/html, headers, tags, template and configuration set, in the SES backend's
  ``sent_messages`` (so ``GetSendQuota``'s SentLast24Hours counts them) and in ``SHIM.messages``.
- ``GetAccount``: SendQuota (Max24HourSend, MaxSendRate: the configured rate, SentLast24Hours) and a healthy account.

It can be told to misbehave, by environment variables read at ``install()`` or by ``configure()`` at any time:

- ``CADENCE_SES_SHIM_MAX_SEND_RATE`` (messages/s; unset: no limit): a token bucket holding one second of the rate
  (at least one bulk call, 50) refills at that rate; a destination beyond it gets status ``ACCOUNT_THROTTLED``
  (its message is not sent), as SES throttles an account past its maximum send rate;
- ``CADENCE_SES_SHIM_FAILURE_SHARE`` (0-1): that share of SendBulkEmail calls fails whole with a transient 500
  ``InternalFailure`` before anything is sent (``CADENCE_SES_SHIM_SEED`` makes the choice repeatable);
- ``configure(account_rate=...)``: GetAccount reports that MaxSendRate instead of the enforced one, as when other
  senders share the account's quota: the workers pace to more than SES lets through, and are throttled.

The shim is process-wide: in the local stack it lives in the stack's process (moto's server runs there), so the
stack's ``ses_shim`` and tests in that process read and configure the same one.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

_BULK_LIMIT = 50
_installed: dict[str, Any] = {}
_install_lock = threading.Lock()


@dataclass(frozen=True)
class BulkMessage:
    """One message SendBulkEmail accepted (one destination), as the shim recorded it."""

    id: str
    source: str
    destinations: dict[str, list[str]]
    template: str
    subject: str
    body: str
    html: str
    headers: dict[str, str]
    tags: dict[str, str]
    configuration_set: str | None
    sent_at: float
    reply_to: tuple[str, ...] = ()


@dataclass
class SesShim:
    """The shim's settings and what it recorded."""

    max_send_rate: float | None = None
    failure_share: float = 0.0
    burst: float | None = None
    account_rate: float | None = None
    messages: list[BulkMessage] = field(default_factory=list)
    calls: int = 0
    throttled: int = 0
    failed_calls: int = 0
    _tokens: float = 0.0
    _refilled_at: float = 0.0
    _random: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(
        self,
        *,
        max_send_rate: float | None = None,
        failure_share: float = 0.0,
        seed: int | None = None,
        burst: float | None = None,
        account_rate: float | None = None,
    ) -> None:
        """Enforce a send rate (None: none) with a bucket of `burst` messages (default: one second of the rate, at
        least one bulk call), fail a share of calls, report `account_rate` (default: the enforced rate) as the
        account's MaxSendRate; forgets what was recorded."""
        with self._lock:
            self.account_rate = account_rate
            self.max_send_rate = max_send_rate
            self.failure_share = failure_share
            self.burst = burst
            self._random = random.Random(seed)  # noqa: S311 - chaos, not cryptography
            self._tokens = self._capacity()
            self._refilled_at = time.monotonic()
            self.messages.clear()
            self.calls = self.throttled = self.failed_calls = 0

    def _capacity(self) -> float:
        if self.burst is not None:
            return self.burst
        return max(float(self.max_send_rate or 0), float(_BULK_LIMIT))

    def _take(self, wanted: int) -> tuple[bool, int]:
        """(fail this call transiently, how many of `wanted` destinations the rate lets through)."""
        with self._lock:
            self.calls += 1
            if self.failure_share and self._random.random() < self.failure_share:
                self.failed_calls += 1
                return True, 0
            if self.max_send_rate is None:
                return False, wanted
            now = time.monotonic()
            self._tokens = min(self._capacity(), self._tokens + (now - self._refilled_at) * self.max_send_rate)
            self._refilled_at = now
            allowed = min(wanted, int(self._tokens))
            self._tokens -= allowed
            self.throttled += wanted - allowed
            return False, allowed

    def record(self, message: BulkMessage) -> None:
        with self._lock:
            self.messages.append(message)


SHIM = SesShim()


def _errors() -> dict[str, type[Exception]]:
    from moto.core.exceptions import JsonRESTError  # noqa: PLC0415 - moto loads only where the shim is used

    class NotFound(JsonRESTError):
        code = 404

        def __init__(self, message: str) -> None:
            super().__init__("NotFoundException", message)

    class AlreadyExists(JsonRESTError):
        code = 400

        def __init__(self, message: str) -> None:
            super().__init__("AlreadyExistsException", message)

    class Rejected(JsonRESTError):
        code = 400

        def __init__(self, message: str) -> None:
            super().__init__("MessageRejected", message)

    class BadRequest(JsonRESTError):
        code = 400

        def __init__(self, message: str) -> None:
            super().__init__("BadRequestException", message)

    class InternalFailure(JsonRESTError):
        code = 500

        def __init__(self, message: str) -> None:
            super().__init__("InternalFailure", message)

    return {
        "not_found": NotFound,
        "exists": AlreadyExists,
        "rejected": Rejected,
        "bad_request": BadRequest,
        "internal": InternalFailure,
    }


def _core(response: Any) -> Any:
    from moto.ses.models import ses_backends  # noqa: PLC0415 - moto loads backends lazily

    return ses_backends[response.current_account][response.region]


def _template_name(response: Any) -> str:
    return str(response.uri_match.get("TemplateName") or response.path.rstrip("/").rsplit("/", 1)[-1])


def _create_email_template(self: Any) -> str:
    params = json.loads(self.body)
    backend = _core(self)
    name = params["TemplateName"]
    if name in backend.templates:
        raise _installed["errors"]["exists"](f"Template {name} already exists")
    content = params.get("TemplateContent", {})
    backend.templates[name] = {
        "template_name": name,
        "subject_part": content.get("Subject", ""),
        "text_part": content.get("Text", ""),
        "html_part": content.get("Html", ""),
        "timestamp": time.time(),
    }
    return "{}"


def _update_email_template(self: Any) -> str:
    name = _template_name(self)
    backend = _core(self)
    if name not in backend.templates:
        raise _installed["errors"]["not_found"](f"Template {name} does not exist")
    content = json.loads(self.body).get("TemplateContent", {})
    backend.templates[name].update(
        subject_part=content.get("Subject", ""), text_part=content.get("Text", ""), html_part=content.get("Html", "")
    )
    return "{}"


def _get_email_template(self: Any) -> str:
    name = _template_name(self)
    template = _core(self).templates.get(name)
    if template is None:
        raise _installed["errors"]["not_found"](f"Template {name} does not exist")
    content = {"Subject": template["subject_part"], "Text": template["text_part"], "Html": template["html_part"]}
    return json.dumps({"TemplateName": name, "TemplateContent": content})


def _delete_email_template(self: Any) -> str:
    name = _template_name(self)
    backend = _core(self)
    if backend.templates.pop(name, None) is None:
        raise _installed["errors"]["not_found"](f"Template {name} does not exist")
    return "{}"


def _get_account(self: Any) -> str:
    backend = _core(self)
    rate = SHIM.account_rate or (SHIM.max_send_rate if SHIM.max_send_rate is not None else 10_000.0)
    quota = {"Max24HourSend": 1_000_000_000.0, "MaxSendRate": rate, "SentLast24Hours": backend.sent_message_count}
    return json.dumps(
        {
            "SendQuota": quota,
            "SendingEnabled": True,
            "ProductionAccessEnabled": True,
            "EnforcementStatus": "HEALTHY",
            "DedicatedIpAutoWarmupEnabled": False,
        }
    )


def _render(text: str, data: dict[str, Any]) -> str:
    from moto.ses.template import parse_template  # noqa: PLC0415 - moto loads only where the shim is used

    return parse_template(text, data) if text else ""


def _send_bulk_email(self: Any) -> str:
    errors = _installed["errors"]
    params = json.loads(self.body)
    backend = _core(self)
    source = params.get("FromEmailAddress", "")
    if not backend._is_verified_address(source):
        raise errors["rejected"](f"Email address is not verified. The following identities failed the check: {source}")
    entries = params.get("BulkEmailEntries", [])
    if not 0 < len(entries) <= _BULK_LIMIT:
        raise errors["bad_request"](f"BulkEmailEntries holds 1 to {_BULK_LIMIT} entries")
    default = params.get("DefaultContent", {}).get("Template", {})
    name = default.get("TemplateName", "")
    template = backend.templates.get(name)
    if template is None:
        raise errors["not_found"](f"Template {name} does not exist")
    configuration_set = params.get("ConfigurationSetName")
    if configuration_set and configuration_set not in backend.config_sets:
        raise errors["not_found"](f"Configuration set {configuration_set} does not exist")
    failed, allowed = SHIM._take(len(entries))
    if failed:
        raise errors["internal"]("injected transient failure (CADENCE_SES_SHIM_FAILURE_SHARE)")
    default_data = json.loads(default.get("TemplateData") or "{}")
    default_tags = {tag["Name"]: tag["Value"] for tag in params.get("DefaultEmailTags", [])}
    results = []
    for index, entry in enumerate(entries):
        if index >= allowed:
            results.append({"Status": "ACCOUNT_THROTTLED", "Error": "Maximum sending rate exceeded."})
            continue
        replacement = entry.get("ReplacementEmailContent", {}).get("ReplacementTemplate", {})
        data = {**default_data, **json.loads(replacement.get("ReplacementTemplateData") or "{}")}
        message = BulkMessage(
            id=f"0100{uuid.uuid4().hex[:12]}-{uuid.uuid4()}-000000",
            source=source,
            destinations={key: list(value) for key, value in entry.get("Destination", {}).items()},
            template=name,
            subject=_render(template["subject_part"], data),
            body=_render(template["text_part"], data),
            html=_render(template["html_part"], data),
            headers={header["Name"]: header["Value"] for header in entry.get("ReplacementHeaders", [])},
            tags={**default_tags, **{tag["Name"]: tag["Value"] for tag in entry.get("ReplacementTags", [])}},
            configuration_set=configuration_set,
            sent_at=time.time(),
            reply_to=tuple(params.get("ReplyToAddresses", [])),
        )
        SHIM.record(message)
        backend.sent_messages.append(message)
        backend.sent_message_count += sum(len(addresses) for addresses in message.destinations.values())
        results.append({"Status": "SUCCESS", "MessageId": message.id})
    return json.dumps({"BulkEmailEntryResults": results})


_PATHS = (
    "{0}/v2/email/account$",
    "{0}/v2/email/templates$",
    "{0}/v2/email/templates/(?P<TemplateName>[^/]+)$",
    "{0}/v2/email/outbound-bulk-emails$",
)
_OPERATIONS = {
    "create_email_template": _create_email_template,
    "update_email_template": _update_email_template,
    "get_email_template": _get_email_template,
    "delete_email_template": _delete_email_template,
    "get_account": _get_account,
    "send_bulk_email": _send_bulk_email,
}


def install() -> SesShim:
    """Add the operations to moto's SESv2 responder (once per process) and apply the environment's settings."""
    from moto.sesv2 import urls  # noqa: PLC0415
    from moto.sesv2.responses import SESV2Response  # noqa: PLC0415 - moto loads only where the shim is used

    with _install_lock:
        if not _installed:
            _installed["errors"] = _errors()
            for name, operation in _OPERATIONS.items():
                setattr(SESV2Response, name, operation)
            # moto's server routes by these paths (its catch-all /v2/.* does not reach them there); its Flask app for
            # SESv2 is built on the first SESv2 request, so install before that (the local stack does, at start).
            for path in _PATHS:
                urls.url_paths.setdefault(path, SESV2Response.dispatch)
    rate = os.environ.get("CADENCE_SES_SHIM_MAX_SEND_RATE")
    share = os.environ.get("CADENCE_SES_SHIM_FAILURE_SHARE")
    seed = os.environ.get("CADENCE_SES_SHIM_SEED")
    SHIM.configure(
        max_send_rate=float(rate) if rate else None,
        failure_share=float(share) if share else 0.0,
        seed=int(seed) if seed else None,
    )
    return SHIM
