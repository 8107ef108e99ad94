"""SES events (AWS's documented shapes) through the feedback handler: noted against the send, bounced and
complained addresses suppressed, soft bounces counted."""

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from cadence import config, dispatch
from cadence.campaigns import CampaignDefinition
from cadence.dal import suppression_table
from cadence.suppression import Reason, address_hash
from functions.dispatch import app as dispatch_app
from functions.feedback import app
from tests.unit.functions.feedback_events import sent_to, ses_record, sns_event
from tests.unit.functions.test_dispatch_app import CAMPAIGN, batch, dispatch_event, ledger, put_profile, store_campaign

RUN = "winback@2026-11-23T02:00:00Z"


@pytest.fixture
def feedback_env(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    topic = boto3.client("sns").create_topic(Name="cadence-test-alarms")["TopicArn"]
    monkeypatch.setenv("ALARM_TOPIC_ARN", topic)
    config.feedback_settings.cache_clear()
    yield topic
    config.feedback_settings.cache_clear()


@pytest.fixture
def sent_emails(
    tables: dict[str, str], ses_sender: str, feedback_env: str, load_event: Any, lambda_context: Any
) -> list[str]:
    """Four customers, each sent one email of the run by dispatch."""
    store_campaign(tables, CampaignDefinition.model_validate(CAMPAIGN))
    customers = ["F1", "F2", "F3", "F4"]
    for customer_id in customers:
        put_profile(tables, customer_id)
    dispatch_app.lambda_handler(dispatch_event(load_event, batch(customers, "email")), lambda_context)
    return customers


def entries(address: str) -> set[Reason]:
    table = os.environ["SUPPRESSION_TABLE"]
    return {entry.reason for entry in suppression_table.entries_of(table, "email", address_hash(address))}


def feedback_of(tables: dict[str, str], customer_id: str) -> set[str]:
    item = boto3.resource("dynamodb").Table(tables["SendsTable"]).scan()["Items"][0]
    return set(item.get(f"fb#{customer_id}", set()))


def test_delivery_open_click_and_reject_are_noted_on_the_send_and_suppress_nothing(
    tables: dict[str, str], sent_emails: list[str], lambda_context: Any
) -> None:
    message = sent_to("f1@example.com")
    events = [ses_record(kind, message) for kind in ("delivery", "open", "click", "reject")]

    response = app.lambda_handler(sns_event(*events), lambda_context)

    assert response == {"kinds": ["delivery", "open", "click", "reject"]}
    assert feedback_of(tables, "F1") == {"delivery", "open", "click", "reject"}
    assert ledger(tables, "F1")[f"{RUN}#email"]["status"] == "SENT"  # the outcome is left as it was
    assert entries("f1@example.com") == set()


def test_a_permanent_bounce_and_a_complaint_suppress_the_address_at_once(
    tables: dict[str, str], sent_emails: list[str], lambda_context: Any, load_event: Any
) -> None:
    app.lambda_handler(sns_event(ses_record("bounce_permanent", sent_to("f1@example.com"))), lambda_context)
    app.lambda_handler(sns_event(ses_record("complaint", sent_to("f2@example.com"))), lambda_context)

    assert entries("f1@example.com") == {Reason.HARD_BOUNCE}
    assert entries("f2@example.com") == {Reason.COMPLAINT}
    assert feedback_of(tables, "F1") == {"hard_bounce"}
    assert feedback_of(tables, "F2") == {"complaint"}
    # and a later batch of the run does not send to them (once the worker's copy of the log is a few seconds old:
    # dropping it stands in for the wait)
    dispatch._feed.cache_clear()
    dispatch_app.lambda_handler(
        dispatch_event(load_event, {**batch(["F1", "F2"], "email", batch_id="email-20261123T0300Z-00000")}),
        lambda_context,
    )
    later = (
        boto3.resource("dynamodb")
        .Table(tables["SendsTable"])
        .get_item(Key={"customer_id": f"BATCH#{RUN}", "send_key": "email#email-20261123T0300Z-00000"})["Item"][
            "recipients"
        ]
    )
    assert {cid: outcome["s"] for cid, outcome in later.items()} == {"F1": "SUPPRESSED", "F2": "SUPPRESSED"}
    assert later["F1"]["r"] == "suppressed_hard_bounce"


def test_soft_bounces_suppress_the_address_once_they_reach_the_limit_each_message_counted_once(
    tables: dict[str, str], sent_emails: list[str], lambda_context: Any
) -> None:
    first = ses_record("bounce_transient", sent_to("f3@example.com"))
    app.lambda_handler(sns_event(first, first), lambda_context)  # one event delivered twice
    second = {**first, "mail": {**first["mail"], "messageId": "second-message"}}
    app.lambda_handler(sns_event(second), lambda_context)
    assert entries("f3@example.com") == set()  # two of the limit's three

    third = {**first, "mail": {**first["mail"], "messageId": "third-message"}}
    app.lambda_handler(sns_event(third), lambda_context)

    assert entries("f3@example.com") == {Reason.SOFT_BOUNCES}


def test_an_address_on_the_accounts_ses_suppression_list_goes_on_ours(
    tables: dict[str, str], sent_emails: list[str], lambda_context: Any
) -> None:
    response = app.lambda_handler(sns_event(ses_record("bounce_suppressed", sent_to("f4@example.com"))), lambda_context)

    assert response == {"kinds": ["ses_suppressed"]}
    assert entries("f4@example.com") == {Reason.SES_SUPPRESSED}


def test_a_bounce_of_a_message_without_our_tags_still_suppresses_its_address(
    tables: dict[str, str], feedback_env: str, lambda_context: Any
) -> None:
    record = ses_record("bounce_permanent", address="stranger@example.com")

    app.lambda_handler(sns_event(record), lambda_context)

    assert entries("stranger@example.com") == {Reason.HARD_BOUNCE}
