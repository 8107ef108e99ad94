"""SNS's opted-out numbers through the scheduled handler: consent_sms = false where a profile holds the number,
and every number suppressed; a number applied once is not looked up again."""

import os
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from cadence import config
from cadence.dal import suppression_table
from cadence.suppression import Reason, address_hash
from functions.sms_opt_outs import app


@pytest.fixture
def profiles(tables: dict[str, str]) -> None:
    table = boto3.resource("dynamodb").Table(tables["ProfilesTable"])
    for customer_id, phone in (("S1", "+8613800138001"), ("S2", "+8613800138002"), ("S3", "+8613800138001")):
        table.put_item(Item={"customer_id": customer_id, "phone": phone, "consent_sms": True, "consent_email": True})
    config.sms_opt_out_settings.cache_clear()


def opt_out(*numbers: str) -> None:
    # moto keeps the account's opted-out numbers here (its SNS has no call that adds one, as SNS has none)
    sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].opt_out_numbers[:] = list(numbers)


def consent(tables: dict[str, str], customer_id: str) -> dict[str, Any]:
    item = boto3.resource("dynamodb").Table(tables["ProfilesTable"]).get_item(Key={"customer_id": customer_id})["Item"]
    return {key: item.get(key) for key in ("consent_sms", "consent_email", "consent_sms_source")}


def test_opted_out_numbers_withdraw_sms_consent_of_every_holder_and_are_suppressed(
    tables: dict[str, str], profiles: None, lambda_context: Any
) -> None:
    opt_out("+8613800138001", "+8613900000009")

    result = app.lambda_handler({}, lambda_context)

    assert result == {"opted_out": 2, "new_numbers": 2, "profiles_withdrawn": 2}
    for customer_id in ("S1", "S3"):
        assert consent(tables, customer_id) == {
            "consent_sms": False,
            "consent_email": True,
            "consent_sms_source": "sns:opted_out",
        }
    assert consent(tables, "S2")["consent_sms"] is True
    table = os.environ["SUPPRESSION_TABLE"]
    for number in ("+8613800138001", "+8613900000009"):
        assert {e.reason for e in suppression_table.entries_of(table, "sms", address_hash(number))} == {
            Reason.SMS_OPT_OUT
        }


def test_a_second_sync_looks_up_only_numbers_new_since_the_first(
    tables: dict[str, str], profiles: None, lambda_context: Any
) -> None:
    opt_out("+8613800138001")
    app.lambda_handler({}, lambda_context)
    opt_out("+8613800138001", "+8613800138002")

    result = app.lambda_handler({}, lambda_context)

    assert result == {"opted_out": 2, "new_numbers": 1, "profiles_withdrawn": 1}
    assert consent(tables, "S2")["consent_sms"] is False
