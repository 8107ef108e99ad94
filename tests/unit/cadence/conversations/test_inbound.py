"""Inbound replies: each keyword's effect on consent and the suppression list, one answer at most, redeliveries
recorded once, routing by intent and confidence, quiet periods, and counts on the run that prompted the reply."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from cadence import config
from cadence.config import ConversationSettings
from cadence.conversations import inbound
from cadence.conversations.intents import Classified, Intent
from cadence.conversations.keywords import Keyword
from cadence.dal import campaigns_table, conversations_table, suppression_table
from cadence.suppression import Reason, address_hash

NUMBER = "+8613800138000"
AT = datetime(2026, 11, 23, 2, 5, 41, tzinfo=UTC)


class FixedClassifier:
    """Stands in for the reply model: the same verdict for every reply, counting the calls."""

    confidence_threshold = 0.5

    def __init__(self, intent: Intent, confidence: float) -> None:
        self.verdict = Classified(intent, confidence)
        self.calls = 0

    def classify(self, texts: Sequence[str]) -> list[Classified]:
        self.calls += 1
        return [self.verdict for _ in texts]


@pytest.fixture
def settings(tables: dict[str, str], queues: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ConversationSettings:
    """The function's settings, with the alarm topic's messages landing in a queue the tests read."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="test-alarms")["TopicArn"]
    alarms = sqs.create_queue(QueueName="test-alarms")["QueueUrl"]
    alarms_arn = sqs.get_queue_attributes(QueueUrl=alarms, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=alarms_arn, Attributes={"RawMessageDelivery": "true"})
    monkeypatch.setenv("ALARM_TOPIC_ARN", topic)
    monkeypatch.setenv("HUMAN_QUEUE_URL", queues["HUMAN_QUEUE_URL"])
    return config.ConversationSettings.from_env()  # type: ignore[return-value]


def put_profile(tables: dict[str, str], customer_id: str, phone: str = NUMBER, **overrides: Any) -> None:
    item = {"customer_id": customer_id, "phone": phone, "consent_sms": True, "consent_email": True, **overrides}
    boto3.resource("dynamodb").Table(tables["ProfilesTable"]).put_item(Item=item)


def profile(tables: dict[str, str], customer_id: str) -> dict[str, Any]:
    return boto3.resource("dynamodb").Table(tables["ProfilesTable"]).get_item(Key={"customer_id": customer_id})["Item"]


def reply(
    text: str, message_id: str = "in-1", *, sender: str = NUMBER, in_reply_to: str | None = None
) -> inbound.Reply:
    return inbound.Reply("sms", message_id, sender, text, AT, in_reply_to)


def sms_sent() -> list[tuple[str, str]]:
    return [(number, text) for number, text, *_ in sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sms_messages.values()]


def received(queue_url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def human_queue(settings: ConversationSettings) -> list[dict[str, Any]]:
    return received(settings.human_queue_url)


def alerts_published() -> list[dict[str, Any]]:
    return received(boto3.client("sqs").get_queue_url(QueueName="test-alarms")["QueueUrl"])


@pytest.mark.parametrize("text", ["STOP", "退订", "td", "\uff34\uff24", "Unsubscribe!", "stop please"])
def test_stop_in_either_language_withdraws_sms_consent_suppresses_the_number_and_confirms_once(
    tables: dict[str, str], settings: ConversationSettings, text: str
) -> None:
    put_profile(tables, "C1")
    handled = inbound.handle(reply(text), settings, None)

    assert handled.keyword is Keyword.STOP
    assert handled.answered
    stored = profile(tables, "C1")
    assert stored["consent_sms"] is False
    assert stored["consent_email"] is True  # an SMS STOP says nothing of email
    assert stored["consent_sms_at"] == "2026-11-23T02:05:41Z"
    entries = suppression_table.entries_of(settings.suppression_table, "sms", address_hash(NUMBER))
    assert [(entry.reason, entry.customer_id) for entry in entries] == [(Reason.SMS_OPT_OUT, "C1")]
    assert sms_sent() == [(NUMBER, settings.sms_stop_text)]


def test_a_second_stop_from_an_opted_out_number_gets_no_second_confirmation(
    tables: dict[str, str], settings: ConversationSettings
) -> None:
    put_profile(tables, "C1")
    inbound.handle(reply("STOP", "in-1"), settings, None)
    again = inbound.handle(reply("退订", "in-2"), settings, None)

    assert again.keyword is Keyword.STOP
    assert not again.answered
    assert sms_sent() == [(NUMBER, settings.sms_stop_text)]


def test_a_redelivered_message_is_recorded_and_acted_on_once(
    tables: dict[str, str], settings: ConversationSettings
) -> None:
    put_profile(tables, "C1")
    first = inbound.handle(reply("HELP"), settings, None)
    second = inbound.handle(reply("HELP"), settings, None)

    assert (first.outcome, second.outcome) == ("handled", "duplicate")
    assert sms_sent() == [(NUMBER, settings.sms_help_text)]
    entries = conversations_table.timeline(settings.conversations_table, conversations_table.customer_pk("C1"))
    assert [(entry["kind"], entry["keyword"], entry["text"]) for entry in entries] == [("reply", "HELP", "HELP")]


def test_a_delivery_cut_off_after_the_answer_is_finished_by_the_next_without_a_second_answer(
    tables: dict[str, str], settings: ConversationSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_profile(tables, "C1")
    # The first delivery dies after sending the confirmation, before the run counts and the receipt are written.
    monkeypatch.setattr(conversations_table, "put_entries", _fail)
    with pytest.raises(RuntimeError):
        inbound.handle(reply("STOP"), settings, None)
    monkeypatch.undo()

    retried = inbound.handle(reply("STOP"), settings, None)

    assert retried.outcome == "handled"
    assert sms_sent() == [(NUMBER, settings.sms_stop_text)]
    assert profile(tables, "C1")["consent_sms"] is False
    assert inbound.handle(reply("STOP"), settings, None).outcome == "duplicate"


def _fail(*_: object, **__: object) -> None:
    raise RuntimeError("the function was stopped")


def test_start_gives_sms_consent_back_and_lifts_the_opt_out(
    tables: dict[str, str], settings: ConversationSettings
) -> None:
    put_profile(tables, "C1")
    inbound.handle(reply("STOP", "in-1"), settings, None)
    started = inbound.handle(reply("订阅", "in-2"), settings, None)

    assert started.keyword is Keyword.START
    assert profile(tables, "C1")["consent_sms"] is True
    assert suppression_table.entries_of(settings.suppression_table, "sms", address_hash(NUMBER)) == []
    assert sms_sent() == [(NUMBER, settings.sms_stop_text), (NUMBER, settings.sms_start_text)]
    # Opted out again later, the number is confirmed again: that STOP is a new opt-out.
    assert inbound.handle(reply("STOP", "in-3"), settings, None).answered


def test_help_answers_with_the_help_text_and_changes_no_consent(
    tables: dict[str, str], settings: ConversationSettings
) -> None:
    put_profile(tables, "C1")
    handled = inbound.handle(reply("帮助"), settings, None)

    assert handled.keyword is Keyword.HELP
    assert profile(tables, "C1")["consent_sms"] is True
    assert sms_sent() == [(NUMBER, settings.sms_help_text)]


def test_every_holder_of_a_number_is_opted_out(tables: dict[str, str], settings: ConversationSettings) -> None:
    put_profile(tables, "C1")
    put_profile(tables, "C2")
    put_profile(tables, "C3", phone="+8613900139000")
    handled = inbound.handle(reply("STOP"), settings, None)

    assert handled.customer_ids == ("C1", "C2")
    assert [profile(tables, cid)["consent_sms"] for cid in ("C1", "C2", "C3")] == [False, False, True]


def test_a_stop_from_a_number_no_profile_holds_still_suppresses_the_number(
    tables: dict[str, str], settings: ConversationSettings
) -> None:
    handled = inbound.handle(reply("STOP", sender="+8613700137000"), settings, None)

    assert handled.customer_ids == ()
    entries = suppression_table.entries_of(settings.suppression_table, "sms", address_hash("+8613700137000"))
    assert [(entry.reason, entry.customer_id) for entry in entries] == [(Reason.SMS_OPT_OUT, None)]


@pytest.mark.parametrize("intent", [Intent.ORDER_QUESTION, Intent.COUPON_PROBLEM, Intent.COMPLAINT])
def test_questions_and_complaints_go_to_a_person_with_an_alert_that_carries_no_text(
    tables: dict[str, str], settings: ConversationSettings, intent: Intent
) -> None:
    put_profile(tables, "C1")
    handled = inbound.handle(reply("我的订单什么时候到\uff1f"), settings, FixedClassifier(intent, 0.93))

    assert (handled.intent, handled.routed) == (intent, "intent")
    [queued] = human_queue(settings)
    assert queued["customer_id"] == "C1"
    assert queued["intent"] == intent.value
    assert queued["text"] == "我的订单什么时候到\uff1f"
    assert queued["reason"] == "intent"
    [alert] = alerts_published()
    assert alert["customer_id"] == "C1"
    assert alert["intent"] == intent.value
    assert "text" not in alert
    assert "订单" not in json.dumps(alert, ensure_ascii=False)
    assert sms_sent() == []  # a person answers, not the stack


@pytest.mark.parametrize("intent", list(Intent))
def test_a_reply_the_model_is_unsure_of_goes_to_a_person_whatever_the_intent(
    tables: dict[str, str], settings: ConversationSettings, intent: Intent
) -> None:
    put_profile(tables, "C1")
    handled = inbound.handle(
        reply("hmm"), settings, FixedClassifier(intent, FixedClassifier.confidence_threshold - 0.01)
    )

    assert handled.routed == "low_confidence"
    assert [message["reason"] for message in human_queue(settings)] == ["low_confidence"]
    assert profile(tables, "C1").get("quiet_until") is None
    assert alerts_published() == []


def test_without_a_model_every_reply_that_is_not_a_keyword_goes_to_a_person(
    tables: dict[str, str], settings: ConversationSettings
) -> None:
    put_profile(tables, "C1")
    handled = inbound.handle(reply("where is my parcel"), settings, None)

    assert handled.routed == "no_model"
    assert [message["reason"] for message in human_queue(settings)] == ["no_model"]


def test_not_interested_sets_a_quiet_period_and_goes_to_nobody(
    tables: dict[str, str], settings: ConversationSettings
) -> None:
    put_profile(tables, "C1")
    handled = inbound.handle(reply("不感兴趣\uff0c别再发了"), settings, FixedClassifier(Intent.NOT_INTERESTED, 0.9))

    assert (handled.intent, handled.routed) == (Intent.NOT_INTERESTED, None)
    until = datetime.fromisoformat(profile(tables, "C1")["quiet_until"])
    assert until == AT.replace(microsecond=0) + timedelta(days=settings.quiet_days)
    assert profile(tables, "C1")["consent_sms"] is True  # quiet for a while, not an opt-out
    assert human_queue(settings) == []
    assert sms_sent() == []


def test_other_replies_are_kept_on_the_timeline_and_routed_nowhere(
    tables: dict[str, str], settings: ConversationSettings
) -> None:
    put_profile(tables, "C1")
    handled = inbound.handle(reply("thanks!"), settings, FixedClassifier(Intent.OTHER, 0.95))

    assert handled.routed is None
    assert human_queue(settings) == []
    [entry] = conversations_table.timeline(settings.conversations_table, conversations_table.customer_pk("C1"))
    assert (entry["intent"], entry["confidence"], entry["text"]) == ("other", 0.95, "thanks!")


def test_a_reply_to_a_campaign_send_counts_on_its_run(tables: dict[str, str], settings: ConversationSettings) -> None:
    run_id = "winback@2026-11-23T02:00:00Z"
    campaigns_table.claim_run(settings.campaigns_table, "winback", run_id)
    conversations_table.put_threads(
        settings.conversations_table,
        "sms",
        ["sns-message-1"],
        {"campaign_id": "winback", "run_id": run_id, "batch_id": "sms-1"},
        at=AT,
    )
    put_profile(tables, "C1")
    put_profile(tables, "C2", phone="+8613900139000")

    stop = inbound.handle(reply("TD", "in-1", in_reply_to="sns-message-1"), settings, None)
    inbound.handle(reply("?", "in-2", sender="+8613900139000", in_reply_to="sns-message-1"), settings, None)
    inbound.handle(reply("?", "in-2", sender="+8613900139000", in_reply_to="sns-message-1"), settings, None)

    assert stop.campaign_id == "winback"
    counts = campaigns_table.add_feedback(settings.campaigns_table, "winback", run_id, {"reply": 0})
    assert counts == {"reply": 2, "opt_out_td": 1, "routed": 1}


def test_the_stack_s_threshold_overrides_the_model_s(tables: dict[str, str], settings: ConversationSettings) -> None:
    put_profile(tables, "C1")
    stricter = settings.model_copy(update={"intent_confidence_threshold": 0.95})

    handled = inbound.handle(reply("thanks!"), stricter, FixedClassifier(Intent.OTHER, 0.9))

    assert handled.routed == "low_confidence"
    assert inbound.handle(reply("thanks!", "in-2"), settings, FixedClassifier(Intent.OTHER, 0.9)).routed is None
