"""Email replies as SES receiving stores them (the raw MIME message in S3): who wrote, what they wrote above the
quoted campaign, whether a person wrote it at all, and which run's message they answered.

A run's emails carry a reply address naming the run (`reply+<run token>@<inbound domain>`, one per SendBulkEmail
call, so it costs no write): a reply to it is counted on that run, whatever the mail client does to In-Reply-To.

Automatic mail is told apart from people by the headers RFC 3834 and the common auto-responders set
(`Auto-Submitted` other than `no`, `X-Autoreply`, `X-Autorespond`, `Precedence: bulk / junk / list / auto_reply`),
by an empty return path, and by delivery reports (`multipart/report`): such mail is kept on the timeline, never
routed to a person or read for keywords.
"""

import base64
import binascii
import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses

REPLY_LOCAL_PART = "reply"
# RFC 5321: a local part is at most 64 octets.
_LOCAL_PART_LIMIT = 64
_AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
# Where the quoted campaign starts in the replies of common clients, in English and Chinese.
_QUOTE_STARTS = re.compile(
    r"^(?:On .{0,200} wrote:|-{2,}\s*Original Message\s*-{2,}|_{10,}|From:\s|发件人[:\uff1a]|"
    r"在.{0,100}写道[:\uff1a]|-{2,}\s*原始邮件\s*-{2,})",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class InboundEmail:
    sender: str  # the From address, trimmed and lower-cased
    recipients: tuple[str, ...]
    subject: str
    text: str  # what the person wrote, without the quoted message
    message_id: str | None
    in_reply_to: str | None
    # Why this is not a person's reply (auto_submitted, x_autoreply, precedence_bulk, null_return_path,
    # delivery_report), or None.
    automatic: str | None


def parse(raw: bytes) -> InboundEmail:
    """The reply in a raw MIME message.

    Raises:
        ValueError: the message has no From address.
    """
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # noqa: S101 - the default policy builds EmailMessage
    senders = [address for _, address in getaddresses([str(message.get("From", ""))]) if "@" in address]
    if not senders:
        raise ValueError("the message has no From address")
    # Only the headers present: getaddresses reads an empty one as a parse failure of the whole list.
    present = [str(message[name]) for name in ("To", "Cc", "Delivered-To") if message.get(name)]
    recipients = tuple(address.strip().lower() for _, address in getaddresses(present) if "@" in address)
    return InboundEmail(
        sender=senders[0].strip().lower(),
        recipients=tuple(dict.fromkeys(recipients)),
        subject=str(message.get("Subject", "")).strip(),
        text=visible_text(_plain_text(message)),
        message_id=_header(message, "Message-ID"),
        in_reply_to=_header(message, "In-Reply-To"),
        automatic=_automatic(message),
    )


def visible_text(body: str) -> str:
    """The reply above the quoted message: lines before the first quote marker, without `>` lines."""
    kept = []
    for line in body.splitlines():
        if _QUOTE_STARTS.match(line.strip()):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line.rstrip())
    return "\n".join(kept).strip()


def reply_address(domain: str, run_id: str) -> str | None:
    """The address a run's emails ask replies to go to, or None when the run id would not fit in one."""
    token = base64.b32encode(run_id.encode()).decode().rstrip("=").lower()
    local = f"{REPLY_LOCAL_PART}+{token}"
    return f"{local}@{domain}" if len(local) <= _LOCAL_PART_LIMIT else None


def run_of(addresses: tuple[str, ...], domain: str) -> str | None:
    """The run named by the first of these addresses that is one of the domain's reply addresses, or None."""
    pattern = re.compile(rf"^{REPLY_LOCAL_PART}\+([a-z2-7]+)@{re.escape(domain.lower())}$")
    for address in addresses:
        found = pattern.match(address.lower())
        if not found:
            continue
        token = found.group(1).upper()
        try:
            return base64.b32decode(token + "=" * (-len(token) % 8)).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
    return None


def _plain_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    text = content if isinstance(content, str) else ""
    if part.get_content_subtype() == "html":
        text = re.sub(r"<(?:br|/p|/div)\s*/?>", "\n", text, flags=re.IGNORECASE)
        text = re.sub(r"<blockquote.*", "", text, flags=re.IGNORECASE | re.DOTALL)
        text = re.sub(r"<[^>]+>", "", text)
    return text


def _header(message: EmailMessage, name: str) -> str | None:
    value = message.get(name)
    return str(value).strip().strip("<>") if value else None


def _automatic(message: EmailMessage) -> str | None:
    if message.get_content_type() == "multipart/report":
        return "delivery_report"
    auto_submitted = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto_submitted and auto_submitted != "no":
        return "auto_submitted"
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return "x_autoreply"
    if str(message.get("Precedence", "")).strip().lower() in _AUTOMATIC_PRECEDENCE:
        return "precedence_bulk"
    if str(message.get("Return-Path", "")).strip() == "<>":
        return "null_return_path"
    return None
