"""What an inbound reply does: a keyword changes consent at once and gets its one answer; any other reply is
classified and routed, to a person when it asks something (or the model is unsure), to a quiet period when the
customer is not interested. Every reply is kept on the customer's timeline and counted on the run that prompted it.

Each message is acted on once however often SNS delivers it: a receipt marks it handled when everything is done,
and each step that must not repeat (the answer, the hand-over to a person, the run's counters) is claimed on the
receipt before it happens; a delivery cut short is finished by the next one without repeating a claimed step (an
answer cut off mid-send is not sent again: a second confirmation is worse than none).

After STOP nothing but its confirmation is sent: the profile's SMS consent is off (planning skips the customer)
and the number is on the suppression list and in its change log (dispatch drops sends planned before the STOP).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from cadence.config import ConversationSettings
from cadence.conversations import email_replies
from cadence.conversations.email_replies import InboundEmail
from cadence.conversations.intents import Classified, Intent
from cadence.conversations.keywords import Keyword, KeywordMatch, match
from cadence.dal import (
    alerts,
    campaigns_table,
    clients,
    conversations_table,
    profiles_table,
    queues,
    sms,
    suppression_table,
)
from cadence.errors import ModelMismatchError, PermanentError
from cadence.events import InboundSms, SesReceipt
from cadence.observability import logger, metrics
from cadence.suppression import Reason, Suppression, address_hash

ReplyChannel = Literal["sms", "email"]

# Intents a person must answer; they also alert the team.
FOR_A_PERSON = frozenset({Intent.ORDER_QUESTION, Intent.COUPON_PROBLEM, Intent.COMPLAINT})


class Classifier(Protocol):
    """The reply model (cadence.conversations.intent_model.IntentModel) as routing uses it."""

    @property
    def confidence_threshold(self) -> float: ...

    def classify(self, texts: Sequence[str]) -> list[Classified]: ...


@dataclass(frozen=True, slots=True)
class Reply:
    """One inbound message, whatever channel brought it."""

    channel: ReplyChannel
    message_id: str
    sender: str  # E.164 number or email address
    text: str
    received_at: datetime
    # The provider's id of our message it answers (End User Messaging's previousPublishedMessageId).
    in_reply_to: str | None = None
    # The run it answers, when the address it was sent to says so (an email to a run's reply address).
    run_id: str | None = None
    # Why it is not from a person (an auto-reply, a delivery report), or None: see email_replies.
    automatic: str | None = None
    # Whether the sender is who they say (SMS: the carrier's number; email: SPF or DKIM passed). A keyword from a
    # sender that is not is not acted on: a person reads it.
    authenticated: bool = True

    @classmethod
    def of_sms(cls, message: InboundSms, received_at: datetime) -> "Reply":
        return cls(
            channel="sms",
            message_id=message.inbound_message_id,
            sender=message.origination_number,
            text=message.message_body,
            received_at=received_at.astimezone(UTC),
            in_reply_to=message.previous_published_message_id,
        )

    @classmethod
    def of_email(cls, message: InboundEmail, receipt: SesReceipt, reply_domain: str | None) -> "Reply":
        return cls(
            channel="email",
            message_id=receipt.message_id,
            sender=message.sender,
            # The subject counts as the first line: "Unsubscribe" is often all a reply says, and it says it there.
            text=message.text or message.subject,
            received_at=receipt.received_at.astimezone(UTC),
            in_reply_to=message.in_reply_to,
            run_id=email_replies.run_of(message.recipients, reply_domain) if reply_domain else None,
            automatic=message.automatic or ("spam_or_virus" if receipt.harmful else None),
            authenticated=receipt.authenticated,
        )


@dataclass(frozen=True, slots=True)
class Handled:
    """What became of a reply: `duplicate` when an earlier delivery had handled it."""

    outcome: Literal["handled", "duplicate"]
    customer_ids: tuple[str, ...] = ()
    keyword: Keyword | None = None
    intent: Intent | None = None
    confidence: float | None = None
    # Why it went to a person (`intent`, `low_confidence`, `no_model`), None when it did not.
    routed: str | None = None
    answered: bool = False
    campaign_id: str | None = None


def handle(reply: Reply, settings: ConversationSettings, classifier: Classifier | None) -> Handled:
    """Act on one reply once (see the module docstring)."""
    table = settings.conversations_table
    if not conversations_table.receive(table, reply.channel, reply.message_id, at=reply.received_at):
        metrics.add_metric(name="RepliesDuplicate", unit=MetricUnit.Count, value=1)
        return Handled("duplicate")
    holders = _holders(reply, settings)
    thread = _thread(reply, table)
    found = match(reply.text) if reply.automatic is None else None
    if reply.automatic is not None:
        handled = Handled("handled")  # kept on the timeline; nobody needs to read an out-of-office
    elif found is not None and reply.authenticated and (reply.channel == "sms" or found.keyword is Keyword.STOP):
        handled = _keyword(reply, found, holders, settings)
    else:
        found = None
        handled = _route(reply, holders, settings, classifier, thread)
    handled = replace(handled, customer_ids=holders, campaign_id=thread.get("campaign_id") if thread else None)
    conversations_table.put_entries(table, _timeline_entries(reply, handled, holders, thread))
    if thread and _claim(settings, reply, "counted"):
        counts = {"auto_reply": 1} if reply.automatic else _counts(found, handled)
        campaigns_table.add_feedback(settings.campaigns_table, thread["campaign_id"], thread["run_id"], counts)
    conversations_table.mark_handled(table, reply.channel, reply.message_id)
    metrics.add_metric(name="RepliesReceived", unit=MetricUnit.Count, value=1)
    logger.info(
        "reply handled",
        extra={
            "channel": reply.channel,
            "customers": len(holders),
            "keyword": handled.keyword,
            "intent": handled.intent,
            "routed": handled.routed,
            "campaign_id": handled.campaign_id,
        },
    )
    return handled


def _holders(reply: Reply, settings: ConversationSettings) -> tuple[str, ...]:
    lookup = profiles_table.customers_with_phones if reply.channel == "sms" else profiles_table.customers_with_emails
    return tuple(lookup(settings.profiles_table, [reply.sender]).get(reply.sender, []))


def _thread(reply: Reply, table: str) -> dict[str, str] | None:
    """The run the reply answers: named by the address it went to, else remembered for the message it cites."""
    if reply.run_id:
        return {"campaign_id": reply.run_id.partition("@")[0], "run_id": reply.run_id}
    if reply.in_reply_to:
        return conversations_table.thread(table, reply.channel, reply.in_reply_to)
    return None


def _claim(settings: ConversationSettings, reply: Reply, step: str) -> bool:
    return conversations_table.claim_step(settings.conversations_table, reply.channel, reply.message_id, step)


def _keyword(reply: Reply, found: KeywordMatch, holders: Sequence[str], settings: ConversationSettings) -> Handled:
    at = reply.received_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    source = f"{reply.channel}:{found.word}"
    hashed = address_hash(reply.sender)
    if reply.channel == "email":
        # An emailed "unsubscribe" / 退订: email consent off and the address suppressed, as the one-click link does.
        _opt_out(reply, holders, settings, Reason.UNSUBSCRIBE, source)
        metrics.add_metric(name="EmailOptOuts", unit=MetricUnit.Count, value=1)
        return Handled("handled", keyword=found.keyword)
    if found.keyword is Keyword.STOP:
        entries = suppression_table.entries_of(settings.suppression_table, "sms", hashed)
        already = any(entry.reason is Reason.SMS_OPT_OUT for entry in entries)
        _opt_out(reply, holders, settings, Reason.SMS_OPT_OUT, source)
        metrics.add_metric(name="SmsOptOuts", unit=MetricUnit.Count, value=1)
        # A number opted out already was confirmed then: STOP is confirmed once, and nothing follows it.
        answered = not already and _answer(reply, settings.sms_stop_text, settings)
        return Handled("handled", keyword=found.keyword, answered=answered)
    if found.keyword is Keyword.START:
        for customer_id in holders:
            profiles_table.set_consent(settings.profiles_table, customer_id, "sms", True, at=at, source=source)
        suppression_table.lift(settings.suppression_table, "sms", hashed, Reason.SMS_OPT_OUT)
        # SNS keeps its own opted-out list; a number left on it would be opted out again by the hourly sync.
        sms.opt_in(reply.sender)
        metrics.add_metric(name="SmsOptIns", unit=MetricUnit.Count, value=1)
        return Handled("handled", keyword=found.keyword, answered=_answer(reply, settings.sms_start_text, settings))
    return Handled("handled", keyword=found.keyword, answered=_answer(reply, settings.sms_help_text, settings))


def _opt_out(reply: Reply, holders: Sequence[str], settings: ConversationSettings, reason: Reason, source: str) -> None:
    """The channel's consent off for every holder of the sender's address, and the address on the suppression list
    (named to each holder, or to nobody: an address no profile holds is still opted out)."""
    at = reply.received_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    for customer_id in holders:
        profiles_table.set_consent(settings.profiles_table, customer_id, reply.channel, False, at=at, source=source)
    named: list[str | None] = [*holders] or [None]
    entries = [
        Suppression.of_address(reply.channel, reply.sender, reason, source, at=reply.received_at, customer_id=cid)
        for cid in named
    ]
    suppression_table.add(settings.suppression_table, entries)


def _answer(reply: Reply, text: str, settings: ConversationSettings) -> bool:
    """Send the reply's one answer (claimed first: at most one, even if this delivery is cut off after it)."""
    if reply.channel != "sms" or not _claim(settings, reply, "answered"):
        return False
    timeouts = clients.SendTimeouts(settings.send_connect_timeout_seconds, settings.send_read_timeout_seconds)
    sms.send_sms(reply.sender, text, settings.sms_sender_id, timeouts)
    metrics.add_metric(name="RepliesAnswered", unit=MetricUnit.Count, value=1)
    return True


def _route(
    reply: Reply,
    holders: Sequence[str],
    settings: ConversationSettings,
    classifier: Classifier | None,
    thread: dict[str, str] | None,
) -> Handled:
    verdict, threshold = _classified(reply, classifier)
    if verdict is None:
        reason: str | None = "no_model"
    elif verdict.confidence < (settings.intent_confidence_threshold or threshold):
        reason = "low_confidence"
    elif verdict.intent in FOR_A_PERSON:
        reason = "intent"
    else:
        reason = None
    intent = verdict.intent if verdict else None
    confidence = round(verdict.confidence, 4) if verdict else None
    if reason is not None:
        _to_a_person(reply, holders, settings, verdict=verdict, reason=reason, thread=thread)
    elif intent is Intent.NOT_INTERESTED:
        until = (reply.received_at + timedelta(days=settings.quiet_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for customer_id in holders:
            profiles_table.set_quiet_until(settings.profiles_table, customer_id, until, source=f"{reply.channel}:reply")
        metrics.add_metric(name="QuietPeriodsSet", unit=MetricUnit.Count, value=len(holders))
    return Handled("handled", intent=intent, confidence=confidence, routed=reason)


def _classified(reply: Reply, classifier: Classifier | None) -> tuple[Classified | None, float]:
    """The model's verdict and threshold; (None, 1.0) without a model, or with one that cannot be loaded: the reply
    then goes to a person rather than fail (a throttled or unreachable S3 still fails, for a retry)."""
    if classifier is None:
        return None, 1.0
    try:
        return classifier.classify([reply.text])[0], classifier.confidence_threshold
    except (ModelMismatchError, PermanentError) as exc:
        logger.error("the reply model cannot be loaded: replies go to a person", extra={"error": str(exc)})
        metrics.add_metric(name="ReplyModelUnavailable", unit=MetricUnit.Count, value=1)
        return None, 1.0


def _to_a_person(
    reply: Reply,
    holders: Sequence[str],
    settings: ConversationSettings,
    *,
    verdict: Classified | None,
    reason: str,
    thread: dict[str, str] | None,
) -> None:
    if not _claim(settings, reply, "routed"):
        return  # handed over by an earlier delivery
    ref = {
        "customer_id": holders[0] if holders else None,
        "customer_ids": list(holders),
        "campaign_id": thread.get("campaign_id") if thread else None,
        "run_id": thread.get("run_id") if thread else None,
        "channel": reply.channel,
        "message_id": reply.message_id,
        "received_at": reply.received_at.isoformat(),
        "intent": verdict.intent.value if verdict else None,
        "confidence": round(verdict.confidence, 4) if verdict else None,
        "reason": reason,
    }
    # The person needs the words; the queue is encrypted and read by people. Logs and alerts never carry them.
    queues.send_json_batches(settings.human_queue_url, [{**ref, "sender": reply.sender, "text": reply.text}])
    metrics.add_metric(name="RepliesRouted", unit=MetricUnit.Count, value=1)
    if reason == "intent":
        alerts.publish(
            settings.alarm_topic_arn,
            f"cadence: a customer reply needs a person ({ref['intent']})",
            json.dumps({key: value for key, value in ref.items() if key != "customer_ids"}, indent=2),
        )


def _timeline_entries(
    reply: Reply, handled: Handled, holders: Sequence[str], thread: dict[str, str] | None
) -> list[dict[str, object]]:
    entry = {
        "sk": f"{reply.received_at.isoformat()}#{reply.channel}#{reply.message_id}",
        "kind": "auto_reply" if reply.automatic else "reply",
        "automatic": reply.automatic,
        "at": reply.received_at.isoformat(),
        "channel": reply.channel,
        "message_id": reply.message_id,
        "text": reply.text,
        "keyword": handled.keyword.value if handled.keyword else None,
        "intent": handled.intent.value if handled.intent else None,
        "confidence": handled.confidence,
        "routed": handled.routed,
        "answered": handled.answered or None,
        "campaign_id": thread.get("campaign_id") if thread else None,
        "run_id": thread.get("run_id") if thread else None,
    }
    keys = [conversations_table.customer_pk(cid) for cid in holders] or [
        conversations_table.address_pk(reply.channel, address_hash(reply.sender))
    ]
    return [{"pk": pk, **entry} for pk in keys]


def _counts(found: KeywordMatch | None, handled: Handled) -> dict[str, int]:
    counts = {"reply": 1}
    if found is not None and found.keyword is Keyword.STOP:
        counts[f"opt_out_{found.word}"] = 1
    if handled.routed:
        counts["routed"] = 1
    return counts
