"""template.yaml against the rules the code relies on (env vars the settings read, timeouts, permissions)."""

from typing import Any

import pytest
from pydantic import ValidationError

from cadence.config import DispatchSettings
from tests.conftest import load_template

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def function(logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = RESOURCES[logical_id]["Properties"]
    return properties


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


# What the template sets from references and parameters, as values the settings accept.
EMAIL_SETTINGS = {
    "email_template_prefix": "cadence-x",
    "ses_configuration_set": "cadence-x",
    "unsubscribe_base_url": "https://example.com/unsubscribe",
    "unsubscribe_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
}


def test_the_dispatch_function_starts_sends_only_well_inside_its_timeout_and_its_queue_outlasts_it() -> None:
    variables = function("DispatchFunction")["Environment"]["Variables"]
    settings = DispatchSettings.model_validate(
        {
            **{key.lower(): "x" for key in ("PROFILES_TABLE", "CAMPAIGNS_TABLE", "SENDS_TABLE")},
            "sender_email": "x",
            "sms_sender_id": "x",
            **EMAIL_SETTINGS,
            **{key.lower(): value for key, value in variables.items() if isinstance(value, str)},
        }
    )
    timeout = function("DispatchFunction")["Timeout"]
    one_send = settings.send_connect_timeout_seconds + settings.send_read_timeout_seconds
    batch_size = function("DispatchFunction")["Events"]["SendRequests"]["Properties"]["BatchSize"]

    # the template sets the values (not the defaults), and a batch has time for several sends before the reserve
    assert {"SEND_CONNECT_TIMEOUT_SECONDS", "SEND_READ_TIMEOUT_SECONDS", "DISPATCH_RESERVE_SECONDS"} <= set(variables)
    # a claim's lease outlasts any worker holding it (the function's timeout bounds each invocation)
    assert settings.dispatch_lease_seconds >= timeout
    assert settings.dispatch_reserve_seconds >= 2 * one_send
    assert timeout - settings.dispatch_reserve_seconds >= batch_size / 2 * one_send
    assert RESOURCES["DispatchQueue"]["Properties"]["VisibilityTimeout"] >= 6 * timeout
    # dispatch knows a delivery is the batch's last before the dead-letter queue (what fails then stays failed)
    redrive = RESOURCES["DispatchQueue"]["Properties"]["RedrivePolicy"]
    assert settings.dispatch_max_receive_count == redrive["maxReceiveCount"]
    assert "DISPATCH_MAX_RECEIVE_COUNT" in variables


def test_dispatch_settings_refuse_a_reserve_shorter_than_one_send() -> None:
    values = {
        "profiles_table": "p",
        "campaigns_table": "c",
        "sends_table": "s",
        "sender_email": "e",
        "sms_sender_id": "i",
        **EMAIL_SETTINGS,
        "send_connect_timeout_seconds": "2",
        "send_read_timeout_seconds": "5",
    }

    with pytest.raises(ValidationError, match="dispatch_reserve_seconds"):
        DispatchSettings.model_validate({**values, "dispatch_reserve_seconds": "18"})
    # 2 + 5 s for the send, and the ledger's three attempts of 1 + 2 s with 1 + 2 s of backoff to settle it
    assert DispatchSettings.model_validate({**values, "dispatch_reserve_seconds": "19"}).dispatch_reserve_seconds == 19
    with pytest.raises(ValidationError, match="dispatch_lease_seconds"):
        DispatchSettings.model_validate({**values, "dispatch_reserve_seconds": "19", "dispatch_lease_seconds": "18"})


def test_the_campaign_function_runs_on_each_campaigns_own_schedule_and_invokes_only_itself() -> None:
    properties = function("CampaignFunction")
    statements = [s for policy in properties["Policies"] if "Statement" in policy for s in policy["Statement"]]

    # no stack-wide "run every campaign" firing; it invokes no function but itself (a run split into segments)
    assert "Events" not in properties
    invoking = [s for s in statements if any(action.startswith("lambda:") for action in actions(s))]
    assert [actions(s) for s in invoking] == [["lambda:InvokeFunction"]]
    assert invoking[0]["Resource"]["Fn::Sub"].endswith(":function:cadence-${Stage}-campaign")
    assert properties["FunctionName"]["Fn::Sub"] == "cadence-${Stage}-campaign"
    # it may only make the one-time schedules that release deferred sends and end split runs, not campaigns' own
    scheduler = [s for s in statements if any(action.startswith("scheduler:") for action in actions(s))]
    assert [actions(s) for s in scheduler] == [["scheduler:CreateSchedule"]] * 2
    assert sorted(s["Resource"]["Fn::Sub"].rsplit("/", 1)[-1] for s in scheduler) == ["deadline-*", "release-*"]
    # schedule firings are asynchronous invocations: retries, then the on-failure queue
    assert properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS"


def test_the_dispatch_fleet_is_capped_by_a_parameter_so_it_can_be_paced_to_the_ses_quota() -> None:
    source = function("DispatchFunction")["Events"]["SendRequests"]["Properties"]
    parameter = TEMPLATE["Parameters"]["DispatchMaxConcurrency"]

    assert source["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "DispatchMaxConcurrency"}
    # SQS event sources accept 2..1000; a default below Lambda's burst keeps a new account under its SES quota
    assert 2 <= parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"] <= 1000


def test_dispatch_sends_email_only_with_send_bulk_email_on_its_identity_template_and_configuration_set() -> None:
    variables = function("DispatchFunction")["Environment"]["Variables"]
    statements = function("DispatchFunction")["Policies"][0]["Statement"]
    granted = {action: statement for statement in statements for action in actions(statement)}

    assert "ses:SendEmail" not in granted
    assert "ses:SendRawEmail" not in granted
    resources = [str(resource) for resource in granted["ses:SendBulkEmail"]["Resource"]]
    assert [
        kind
        for kind in ("identity/", "template/cadence-${Stage}-", "configuration-set/")
        if not any(kind in resource for resource in resources)
    ] == []
    assert granted["secretsmanager:GetSecretValue"]["Resource"] == {"Ref": "UnsubscribeSigningSecret"}
    assert variables["UNSUBSCRIBE_SECRET_ARN"] == {"Ref": "UnsubscribeSigningSecret"}
    assert variables["SES_CONFIGURATION_SET"] == {"Ref": "EmailConfigurationSet"}
    assert RESOURCES["EmailConfigurationSet"]["Type"] == "AWS::SES::ConfigurationSet"
