"""SES event records as a configuration set publishes them to SNS (tests/events/ses_events.json holds AWS's
documented shapes), made for a message the SESv2 shim recorded, so their tags are the ones dispatch sent."""

import copy
import json
from pathlib import Path
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

EVENTS = Path(__file__).resolve().parents[2] / "events"


def sent() -> list[Any]:
    """Every message SES (the shim) accepted, oldest first."""
    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def sent_to(address: str) -> Any:
    (message,) = [m for m in sent() if address in m.destinations["ToAddresses"]]
    return message


def ses_record(kind: str, message: Any | None = None, *, address: str | None = None, tags: bool = True) -> dict:
    """The SES event record `kind` (a key of ses_events.json) of `message`, or of a message to `address` that
    cadence did not send (no cadence tags)."""
    record = copy.deepcopy(json.loads((EVENTS / "ses_events.json").read_text())[kind])
    to = address or message.destinations["ToAddresses"][0]
    mail = record["mail"]
    mail["destination"] = [to]
    mail["commonHeaders"]["to"] = [to]
    if message is not None:
        mail["messageId"] = message.id
        if tags:
            mail["tags"].update({name: [value] for name, value in message.tags.items()})
    for part, field in (("bounce", "bouncedRecipients"), ("complaint", "complainedRecipients")):
        if part in record:
            for recipient in record[part][field]:
                recipient["emailAddress"] = to
    if "delivery" in record:
        record["delivery"]["recipients"] = [to]
    return record


def sns_event(*records: dict) -> dict:
    """The SNS event Lambda receives, one SNS record per SES record."""
    template = json.loads((EVENTS / "sns_ses_event.json").read_text())["Records"][0]
    return {"Records": [{**template, "Sns": {**template["Sns"], "Message": json.dumps(r)}} for r in records]}
