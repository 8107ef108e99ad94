"""The conversations function on the SNS event End User Messaging publishes: a STOP to a campaign's SMS withdraws
consent, is confirmed once, counts on the run that prompted it, and nothing but the confirmation follows it."""

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from cadence import config
from cadence.campaigns import CampaignDefinition
from cadence.conversations import email_replies, intent_model
from cadence.dal import campaigns_table, conversations_table, suppression_table
from cadence.errors import InvalidInputError
from cadence.suppression import Reason, address_hash
from cadence_cli.main import main as cli_main
from functions.conversations import app as conversations_app
from functions.dispatch import app as dispatch_app
from infra import sesv2_shim
from model_build.intent import DEFAULT_DATA, build_intent_model
from model_build.publish import publish
from tests.unit.functions.test_dispatch_app import (
    CAMPAIGN,
    dispatch_event,
    ledger,
    put_profile,
    request,
    sms_sent,
    store_campaign,
)

PHONE = "+8613912345678"
RUN = "winback@2026-11-23T02:00:00Z"  # planned before the STOP (the event's Timestamp is 02:05:41)
LATER_RUN = "winback@2026-11-24T02:00:00Z"  # planned after it


@pytest.fixture
def winback(tables: dict[str, str]) -> CampaignDefinition:
    store_campaign(tables, CAMPAIGN)
    return CAMPAIGN


@pytest.fixture
def alarm_topic(monkeypatch: pytest.MonkeyPatch, aws: None) -> Iterator[str]:
    """The stack's alarm topic, and the function's settings read afresh from the environment each test sets."""
    topic = boto3.client("sns").create_topic(Name="cadence-test-alarms")["TopicArn"]
    monkeypatch.setenv("ALARM_TOPIC_ARN", topic)
    monkeypatch.setenv("INTENT_MODEL_VERSION", "")  # no reply model: replies that are not keywords go to a person
    config.conversation_settings.cache_clear()
    yield topic
    config.conversation_settings.cache_clear()


def inbound_event(load_event: Any, body: str, *, in_reply_to: str | None, message_id: str = "in-1") -> dict[str, Any]:
    event = load_event("sns_inbound_sms")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message |= {
        "originationNumber": PHONE,
        "messageBody": body,
        "inboundMessageId": message_id,
        "previousPublishedMessageId": in_reply_to,
    }
    event["Records"][0]["Sns"]["Message"] = json.dumps(message, ensure_ascii=False)
    return event


def test_after_a_stop_to_a_campaign_sms_only_its_confirmation_is_ever_sent(
    tables: dict[str, str],
    queues: dict[str, str],
    ses_sender: str,
    winback: CampaignDefinition,
    alarm_topic: str,
    load_event: Any,
    lambda_context: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_profile(tables, "C2", phone=PHONE, first_name="Wang")
    put_profile(tables, "C3", phone="+8613900139000", first_name="Zhao")
    campaigns_table.claim_run(tables["CampaignsTable"], "winback", RUN)
    dispatch_app.lambda_handler(dispatch_event(load_event, request("C2", "sms", RUN)), lambda_context)
    [campaign_sms] = sms_sent()
    sent_id = ledger(tables, "C2")[f"{RUN}#sms"]["provider_message_id"]

    event = inbound_event(load_event, "退订", in_reply_to=sent_id)
    first = conversations_app.lambda_handler(event, lambda_context)
    again = conversations_app.lambda_handler(event, lambda_context)  # SNS delivers at least once

    assert (first, again) == ({"outcomes": ["handled"]}, {"outcomes": ["duplicate"]})
    profile = boto3.resource("dynamodb").Table(tables["ProfilesTable"]).get_item(Key={"customer_id": "C2"})["Item"]
    assert profile["consent_sms"] is False
    counts = campaigns_table.add_feedback(tables["CampaignsTable"], "winback", RUN, {"reply": 0})
    assert counts == {"reply": 1, "opt_out_退订": 1}
    # ... and `cadence campaign show` prints them beside the run's sends
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"CampaignsTableName": tables["CampaignsTable"]}))
    capsys.readouterr()
    assert cli_main(["campaign", "show", "winback", "--outputs-file", str(outputs), "--json"]) == 0
    [run] = json.loads(capsys.readouterr().out)["runs"]
    assert run["replies"] == {"opt_out_退订": 1, "reply": 1}

    # A send planned before the STOP and one planned after it: neither goes out; another customer's does.
    for customer_id, run_id in (("C2", RUN), ("C2", LATER_RUN), ("C3", LATER_RUN)):
        dispatch_app.lambda_handler(dispatch_event(load_event, request(customer_id, "sms", run_id)), lambda_context)

    assert ledger(tables, "C2")[f"{LATER_RUN}#sms"]["status"] == "SUPPRESSED"
    assert ledger(tables, "C3")[f"{LATER_RUN}#sms"]["status"] == "SENT"
    to_the_customer = [text for number, text in sms_sent() if number == PHONE]
    assert to_the_customer == [campaign_sms[1], os.environ["SMS_STOP_TEXT"]]


def test_a_question_without_a_reply_model_goes_to_the_human_queue_and_gets_no_automatic_answer(
    tables: dict[str, str], queues: dict[str, str], alarm_topic: str, load_event: Any, lambda_context: Any
) -> None:
    put_profile(tables, "C2", phone=PHONE)

    conversations_app.lambda_handler(inbound_event(load_event, "我的订单到哪了", in_reply_to=None), lambda_context)

    messages = boto3.client("sqs").receive_message(QueueUrl=queues["HUMAN_QUEUE_URL"])["Messages"]
    body = json.loads(messages[0]["Body"])
    assert (body["customer_id"], body["reason"], body["text"]) == ("C2", "no_model", "我的订单到哪了")
    assert sms_sent() == []


def test_a_malformed_inbound_message_fails_the_invocation_naming_the_field(
    tables: dict[str, str], alarm_topic: str, load_event: Any, lambda_context: Any
) -> None:
    event = load_event("sns_inbound_sms")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    del message["inboundMessageId"]
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)

    # SNS retries the invocation, then it lands in the on-failure queue: refused, not dropped.
    with pytest.raises(ValueError, match="inboundMessageId"):
        conversations_app.lambda_handler(event, lambda_context)


@pytest.fixture(scope="module")
def reply_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("intent-model")
    build_intent_model(DEFAULT_DATA, out, version="intent-test")
    return out


@pytest.fixture
def published_reply_model(
    reply_model_dir: Path, data_bucket: str, alarm_topic: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The reply model built from the shipped sample and published where the template tells the function to look."""
    publish(reply_model_dir, data_bucket)
    monkeypatch.setenv("INTENT_MODEL_VERSION", "intent-test")
    config.conversation_settings.cache_clear()
    intent_model.loaded_intent_model.cache_clear()
    yield
    intent_model.loaded_intent_model.cache_clear()


@pytest.mark.usefixtures("published_reply_model")
def test_with_the_published_model_a_coupon_problem_goes_to_a_person_and_not_interested_goes_quiet(
    tables: dict[str, str], queues: dict[str, str], load_event: Any, lambda_context: Any
) -> None:
    put_profile(tables, "C2", phone=PHONE)

    conversations_app.lambda_handler(inbound_event(load_event, "优惠码用不了", in_reply_to=None), lambda_context)
    conversations_app.lambda_handler(
        inbound_event(load_event, "不感兴趣", in_reply_to=None, message_id="in-2"), lambda_context
    )

    [routed] = boto3.client("sqs").receive_message(QueueUrl=queues["HUMAN_QUEUE_URL"])["Messages"]
    body = json.loads(routed["Body"])
    assert (body["intent"], body["reason"]) == ("coupon_problem", "intent")
    assert (
        body["confidence"] >= intent_model.loaded_intent_model("test-data-bucket", "intent-test").confidence_threshold
    )
    profile = boto3.resource("dynamodb").Table(tables["ProfilesTable"]).get_item(Key={"customer_id": "C2"})["Item"]
    assert profile["quiet_until"] > "2026-12"  # 30 days after the reply
    assert profile["consent_sms"] is True


def test_a_model_that_is_not_published_sends_replies_to_a_person_and_keywords_still_work(
    tables: dict[str, str],
    queues: dict[str, str],
    data_bucket: str,
    alarm_topic: str,
    load_event: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INTENT_MODEL_VERSION", "never-published")
    config.conversation_settings.cache_clear()
    intent_model.loaded_intent_model.cache_clear()
    put_profile(tables, "C2", phone=PHONE)

    conversations_app.lambda_handler(inbound_event(load_event, "where is my order", in_reply_to=None), lambda_context)
    conversations_app.lambda_handler(
        inbound_event(load_event, "STOP", in_reply_to=None, message_id="in-2"), lambda_context
    )

    [routed] = boto3.client("sqs").receive_message(QueueUrl=queues["HUMAN_QUEUE_URL"])["Messages"]
    assert json.loads(routed["Body"])["reason"] == "no_model"
    assert sms_sent() == [(PHONE, os.environ["SMS_STOP_TEXT"])]


# ---------- email replies (an SES receipt rule stores the message in S3, then invokes the function) ----------

CUSTOMER_EMAIL = "customer@example.com"
REPLY_DOMAIN = "replies.example.com"


def email_event(
    load_event: Any, data_bucket: str, body: str, *, to: str, headers: str = "", verdicts: str = "PASS"
) -> dict[str, Any]:
    """The SES receipt rule's Lambda event for a reply, its raw message stored where the rule's S3 action puts it."""
    event = load_event("ses_inbound_email")
    receipt = event["Records"][0]["ses"]
    message_id = f"ses-{uuid.uuid4().hex}"
    receipt["mail"]["messageId"] = message_id
    receipt["receipt"]["spfVerdict"] = receipt["receipt"]["dkimVerdict"] = {"status": verdicts}
    raw = (
        f"From: Wang Li <{CUSTOMER_EMAIL}>\r\nTo: {to}\r\nSubject: Re: We miss you\r\n"
        f"Message-ID: <{message_id}@mail.example.com>\r\n{headers}MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\r\nOn Mon, Cadence wrote:\r\n> We miss you\r\n"
    )
    boto3.client("s3").put_object(Bucket=data_bucket, Key=f"inbound-email/{message_id}", Body=raw.encode())
    return event


@pytest.fixture
def email_replies_on(monkeypatch: pytest.MonkeyPatch, alarm_topic: str, tables: dict[str, str]) -> str:
    """The stack's inbound domain set; the demo campaign's run exists to count replies on."""
    monkeypatch.setenv("INBOUND_EMAIL_DOMAIN", REPLY_DOMAIN)
    config.conversation_settings.cache_clear()
    campaigns_table.claim_run(tables["CampaignsTable"], "winback", RUN)
    address = email_replies.reply_address(REPLY_DOMAIN, RUN)
    assert address is not None
    return address


def test_an_emailed_unsubscribe_to_a_run_withdraws_email_consent_and_counts_on_the_run(
    tables: dict[str, str], queues: dict[str, str], data_bucket: str, email_replies_on: str, load_event: Any,
    lambda_context: Any,
) -> None:  # fmt: skip
    put_profile(tables, "C2", email=CUSTOMER_EMAIL)

    event = email_event(load_event, data_bucket, "退订", to=email_replies_on)
    assert conversations_app.lambda_handler(event, lambda_context) == {"outcomes": ["handled"]}

    profile = boto3.resource("dynamodb").Table(tables["ProfilesTable"]).get_item(Key={"customer_id": "C2"})["Item"]
    assert (profile["consent_email"], profile["consent_sms"]) == (False, True)
    entries = suppression_table.entries_of(tables["SuppressionTable"], "email", address_hash(CUSTOMER_EMAIL))
    assert [(entry.reason, entry.customer_id) for entry in entries] == [(Reason.UNSUBSCRIBE, "C2")]
    counts = campaigns_table.add_feedback(tables["CampaignsTable"], "winback", RUN, {"reply": 0})
    assert counts == {"reply": 1, "opt_out_退订": 1}
    assert conversations_app.lambda_handler(event, lambda_context) == {"outcomes": ["duplicate"]}


def test_an_out_of_office_is_kept_but_routed_to_nobody_and_counted_apart(
    tables: dict[str, str], queues: dict[str, str], data_bucket: str, email_replies_on: str, load_event: Any,
    lambda_context: Any,
) -> None:  # fmt: skip
    put_profile(tables, "C2", email=CUSTOMER_EMAIL)
    headers = "Auto-Submitted: auto-replied\r\n"

    away = "I am away, where is my order? Back Monday"
    event = email_event(load_event, data_bucket, away, to=email_replies_on, headers=headers)
    conversations_app.lambda_handler(event, lambda_context)

    assert boto3.client("sqs").receive_message(QueueUrl=queues["HUMAN_QUEUE_URL"]).get("Messages", []) == []
    [entry] = conversations_table.timeline(tables["ConversationsTable"], conversations_table.customer_pk("C2"))
    assert (entry["kind"], entry["automatic"]) == ("auto_reply", "auto_submitted")
    counts = campaigns_table.add_feedback(tables["CampaignsTable"], "winback", RUN, {"reply": 0})
    assert counts == {"reply": 0, "auto_reply": 1}


def test_an_unsubscribe_from_a_sender_that_fails_spf_and_dkim_goes_to_a_person_instead(
    tables: dict[str, str], queues: dict[str, str], data_bucket: str, email_replies_on: str, load_event: Any,
    lambda_context: Any,
) -> None:  # fmt: skip
    put_profile(tables, "C2", email=CUSTOMER_EMAIL)

    event = email_event(load_event, data_bucket, "unsubscribe", to=email_replies_on, verdicts="FAIL")
    conversations_app.lambda_handler(event, lambda_context)

    profile = boto3.resource("dynamodb").Table(tables["ProfilesTable"]).get_item(Key={"customer_id": "C2"})["Item"]
    assert profile["consent_email"] is True
    [routed] = boto3.client("sqs").receive_message(QueueUrl=queues["HUMAN_QUEUE_URL"])["Messages"]
    body = json.loads(routed["Body"])
    assert (body["customer_id"], body["channel"], body["campaign_id"]) == ("C2", "email", "winback")


def test_an_email_whose_stored_message_is_missing_fails_for_a_retry(
    tables: dict[str, str], data_bucket: str, email_replies_on: str, load_event: Any, lambda_context: Any
) -> None:
    event = load_event("ses_inbound_email")  # the S3 action never stored it

    with pytest.raises(InvalidInputError, match="not found"):
        conversations_app.lambda_handler(event, lambda_context)


@pytest.fixture
def dispatch_with_replies(monkeypatch: pytest.MonkeyPatch, aws: None) -> Iterator[None]:
    monkeypatch.setenv("INBOUND_EMAIL_DOMAIN", REPLY_DOMAIN)
    config.dispatch_settings.cache_clear()
    yield
    config.dispatch_settings.cache_clear()


@pytest.mark.usefixtures("dispatch_with_replies")
def test_a_run_s_emails_ask_replies_to_its_reply_address_and_the_reply_counts_on_it(
    tables: dict[str, str], queues: dict[str, str], data_bucket: str, ses_sender: str, winback: CampaignDefinition,
    email_replies_on: str, load_event: Any, lambda_context: Any,
) -> None:  # fmt: skip
    put_profile(tables, "C2", email=CUSTOMER_EMAIL)
    dispatch_app.lambda_handler(dispatch_event(load_event, request("C2", "email", RUN)), lambda_context)
    [sent] = sesv2_shim.SHIM.messages
    assert sent.reply_to == (email_replies_on,)

    reply = email_event(load_event, data_bucket, "Is this offer valid in stores?", to=sent.reply_to[0])
    conversations_app.lambda_handler(reply, lambda_context)

    counts = campaigns_table.add_feedback(tables["CampaignsTable"], "winback", RUN, {"reply": 0})
    assert counts == {"reply": 1, "routed": 1}
