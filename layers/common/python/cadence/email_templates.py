"""A campaign's email as SESv2 email templates (one per variant), and the per-recipient data that fills them.

The template's name is derived from the stack's prefix, the campaign, the variant and a hash of the message, so
an edited message is a new template: a batch being sent with the old one keeps it, and storing the same campaign
again is a no-op update. SES fills templates without escaping anything, so escaping is ours: the Html part is
the author's text HTML-escaped, and it names the `<field>_html` values, which are the personalisation escaped; the
Subject and Text parts name the plain values (a subject is not HTML: "O'Brien" must not arrive as "O&#x27;Brien").
"""

import hashlib
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cadence.campaigns.definition import PLACEHOLDERS, CampaignDefinition, EmailMessage

# What the template names besides the campaign's own placeholders.
UNSUBSCRIBE_FIELD = "unsubscribe_url"
FIELDS = (*PLACEHOLDERS, UNSUBSCRIBE_FIELD)
# SES template names: letters, digits, '-' and '_', at most 64.
_NAME_LIMIT = 64
_HASH_CHARS = 12
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_TEXT_FOOTER = "\n\nUnsubscribe: {{" + UNSUBSCRIBE_FIELD + "}}"
_HTML_FOOTER = '<p><a href="{{' + UNSUBSCRIBE_FIELD + '_html}}">Unsubscribe</a></p>'


@dataclass(frozen=True)
class EmailTemplate:
    """One SESv2 email template: its name and its three parts, in SES's handlebars syntax."""

    name: str
    subject: str
    text: str
    html: str


def template_name(prefix: str, campaign_id: str, variant: str | None, message: EmailMessage) -> str:
    """The template of this message: readable, and unique to its content (the hash covers every part of the name)."""
    arm = variant or "main"
    digest = hashlib.sha256(
        json.dumps([prefix, campaign_id, arm, message.subject, message.body], separators=(",", ":")).encode()
    ).hexdigest()[:_HASH_CHARS]
    readable = _UNSAFE.sub("-", f"{prefix}-{campaign_id}-{arm}")[: _NAME_LIMIT - _HASH_CHARS - 1]
    return f"{readable}-{digest}"


def _handlebars(text: str, suffix: str = "") -> str:
    return _PLACEHOLDER.sub(lambda match: "{{" + match.group(1) + suffix + "}}", text)


def build(prefix: str, campaign_id: str, variant: str | None, message: EmailMessage) -> EmailTemplate:
    """The template of one variant's email, with an unsubscribe link in both bodies."""
    # Escaped before the placeholders become handlebars: html.escape leaves braces alone.
    body_html = _handlebars(html.escape(message.body), "_html").replace("\n", "<br>\n")
    return EmailTemplate(
        name=template_name(prefix, campaign_id, variant, message),
        subject=_handlebars(message.subject),
        text=_handlebars(message.body) + _TEXT_FOOTER,
        html=f"<html><body><p>{body_html}</p>{_HTML_FOOTER}</body></html>",
    )


def templates_of(definition: CampaignDefinition, prefix: str) -> dict[str, EmailTemplate]:
    """Every email template the campaign sends with, by name (variants sharing a message may share none: the
    variant is part of the name)."""
    if "email" not in definition.channels:
        return {}
    arms: tuple[str | None, ...] = tuple(variant.name for variant in definition.variants) or (None,)
    templates = {}
    for arm in arms:
        message = definition.message("email", arm)
        if isinstance(message, EmailMessage):
            template = build(prefix, definition.campaign_id, arm, message)
            templates[template.name] = template
    return templates


def replacement_data(values: Mapping[str, Any]) -> str:
    """The ReplacementTemplateData of one recipient: each field plain, and HTML-escaped under `<field>_html`."""
    data: dict[str, str] = {}
    for name in FIELDS:
        value = str(values.get(name) or "").strip()
        data[name] = value
        data[f"{name}_html"] = html.escape(value, quote=True)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
