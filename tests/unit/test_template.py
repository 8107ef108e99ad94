"""template.yaml against the rules the code relies on (env vars the settings read, timeouts, permissions)."""

import fnmatch
import re
from typing import Any

import pytest
from pydantic import ValidationError

from cadence.config import DispatchSettings
from tests.conftest import ROOT, load_template

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
            **{key.lower(): "x" for key in ("PROFILES_TABLE", "CAMPAIGNS_TABLE", "SENDS_TABLE", "SUPPRESSION_TABLE")},
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
        "suppression_table": "t",
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
    assert invoking[0]["Resource"]["Fn::Sub"].endswith(":function:${Brand}-${Stage}-campaign")
    assert properties["FunctionName"]["Fn::Sub"] == "${Brand}-${Stage}-campaign"
    # it may only make the one-time schedules that release deferred sends and end split runs, not campaigns' own
    scheduler = [s for s in statements if any(action.startswith("scheduler:") for action in actions(s))]
    assert [actions(s) for s in scheduler] == [["scheduler:CreateSchedule"]] * 2
    assert sorted(s["Resource"]["Fn::Sub"].rsplit(":schedule/", 1)[-1] for s in scheduler) == [
        "${Brand}-${Stage}-campaigns/deadline-*",
        "${Brand}-${Stage}-campaigns/release-*",
    ]
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
        for kind in ("identity/", "template/${Brand}-${Stage}-", "configuration-set/")
        if not any(kind in resource for resource in resources)
    ] == []
    assert variables["UNSUBSCRIBE_SECRET_ARN"] == {"Ref": "UnsubscribeSigningSecret"}
    assert variables["SES_CONFIGURATION_SET"] == {"Ref": "EmailConfigurationSet"}
    assert RESOURCES["EmailConfigurationSet"]["Type"] == "AWS::SES::ConfigurationSet"


def test_dispatch_reads_only_the_stacks_two_signing_keys_and_signs_webhooks_with_a_generated_one() -> None:
    variables = function("DispatchFunction")["Environment"]["Variables"]
    reads = [s for s in statements_of("DispatchFunction") if "secretsmanager:GetSecretValue" in actions(s)]

    assert sorted(str(statement["Resource"]) for statement in reads) == [
        str({"Ref": "UnsubscribeSigningSecret"}),
        str({"Ref": "WebhookSigningSecret"}),
    ]
    assert all(actions(statement) == ["secretsmanager:GetSecretValue"] for statement in reads)
    assert variables["WEBHOOK_SECRET_ARN"] == {"Ref": "WebhookSigningSecret"}
    assert "WEBHOOK_ALLOW_LOOPBACK_HTTP" not in variables  # plain http is for the local stack, never a deployed one
    secret = RESOURCES["WebhookSigningSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert TEMPLATE["Outputs"]["WebhookSigningSecretArn"]["Value"] == {"Ref": "WebhookSigningSecret"}


def statements_of(logical_id: str) -> list[dict[str, Any]]:
    policies = function(logical_id)["Policies"]
    return [s for policy in policies if isinstance(policy, dict) and "Statement" in policy for s in policy["Statement"]]


def key_policy_allows(key: dict[str, Any], service: str, wanted: set[str]) -> bool:
    """Whether the key's policy lets `service` do every action in `wanted` (wildcards as KMS reads them)."""
    granted: list[str] = []
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        if statement["Effect"] == "Allow" and service in services and "Condition" not in statement:
            granted += actions(statement)
    return all(any(fnmatch.fnmatchcase(action, pattern) for pattern in granted) for action in wanted)


def test_every_alarm_notifies_through_a_topic_whose_key_cloudwatch_may_use() -> None:
    alarms = {lid: r for lid, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    topics = {action["Ref"] for alarm in alarms.values() for action in alarm["Properties"]["AlarmActions"]}

    assert alarms
    assert topics
    for topic in topics:
        key_ref = RESOURCES[topic]["Properties"]["KmsMasterKeyId"]
        # an AWS-managed alias (alias/aws/sns) has a policy CloudWatch cannot use: notifications would be dropped
        assert isinstance(key_ref, dict), f"{topic} is encrypted with {key_ref!r}, which CloudWatch cannot use"
        key = RESOURCES[key_ref["Ref"]]
        assert key["Type"] == "AWS::KMS::Key"
        assert key_policy_allows(key, "cloudwatch.amazonaws.com", {"kms:Decrypt", "kms:GenerateDataKey"})
        assert not key_policy_allows(key, "cloudwatch.amazonaws.com", {"kms:ScheduleKeyDeletion"})
        # the account keeps administering the key (without this statement nobody could change the policy)
        root = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "AccountAdministers"]
        assert root[0]["Principal"]["AWS"]["Fn::Sub"] == "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"
        assert root[0]["Action"] == "kms:*"
        assert key["Properties"]["EnableKeyRotation"] is True


def test_dispatch_may_send_only_bulk_email_and_sms_never_to_a_topic_nor_delete_a_send() -> None:
    statements = statements_of("DispatchFunction")
    ses = [action for s in statements if s["Effect"] == "Allow" for action in actions(s) if action.startswith("ses:")]
    deny = [s for s in statements if s["Effect"] == "Deny"]

    # the code calls SendBulkEmail (from templates) and GetAccount only; SendRawEmail would allow any headers
    assert sorted(ses) == ["ses:GetAccount", "ses:SendBulkEmail"]
    assert [actions(s) for s in deny] == [["sns:Publish"]]
    # the ledger is claimed and settled with updates; nothing in dispatch deletes a send
    ledger = [s for s in statements if s.get("Resource") == {"Fn::GetAtt": ["SendsTable", "Arn"]}]
    granted = {action for s in ledger for action in actions(s)}
    assert "dynamodb:UpdateItem" in granted
    assert not granted & {"dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:BatchWriteItem"}


def test_the_campaign_function_cannot_write_a_campaign_definition() -> None:
    statements = statements_of("CampaignFunction")
    deny = [
        s for s in statements if s["Effect"] == "Deny" and s["Resource"] == {"Fn::GetAtt": ["CampaignsTable", "Arn"]}
    ]

    assert len(deny) == 1
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"} <= set(actions(deny[0]))
    assert "definition" in deny[0]["Condition"]["ForAnyValue:StringEquals"]["dynamodb:Attributes"]


def test_raw_files_rejected_rows_and_reports_expire_and_unfinished_uploads_are_aborted() -> None:
    rules = RESOURCES["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    by_prefix = {rule.get("Prefix"): rule for rule in rules}
    parameters = TEMPLATE["Parameters"]

    for prefix, parameter in (
        ("incoming/", "IncomingRetentionDays"),
        ("rejected/", "RejectedRetentionDays"),
        ("reports/", "ReportsRetentionDays"),
    ):
        assert by_prefix[prefix]["Status"] == "Enabled"
        assert by_prefix[prefix]["ExpirationInDays"] == {"Ref": parameter}
        assert parameters[parameter]["MinValue"] >= 1
        # the bucket is versioned: without this, an expired file would stay as a noncurrent version for 30 days
        assert by_prefix[prefix]["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 7
    aborts = [rule for rule in rules if "AbortIncompleteMultipartUpload" in rule]
    assert len(aborts) == 1
    assert "Prefix" not in aborts[0]


def test_every_function_logs_to_a_group_with_a_retention_parameter() -> None:
    functions = [lid for lid, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"]

    assert functions
    for logical_id in functions:
        group = function(logical_id)["LoggingConfig"]["LogGroup"]["Ref"]
        assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
        assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_function_has_an_errors_alarm_and_every_failure_queue_a_depth_alarm() -> None:
    alarms = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    functions = {lid for lid, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
    dead_letter_queues = {
        r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r["Properties"]
    } | {"AsyncFailureQueue"}

    def watched(metric: str) -> set[str]:
        names = set()
        for alarm in alarms:
            if alarm["MetricName"] == metric:
                value = alarm["Dimensions"][0]["Value"]
                names.add(value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0])
        return names

    assert watched("Errors") == functions
    assert watched("ApproximateNumberOfMessagesVisible") == dead_letter_queues
    assert watched("ApproximateAgeOfOldestMessage") == {"DispatchQueue"}
    assert {"Reputation.BounceRate", "Reputation.ComplaintRate"} <= {alarm["MetricName"] for alarm in alarms}


def test_the_dashboard_charts_the_metrics_the_code_emits_in_the_namespace_the_functions_use() -> None:
    body, variables = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    namespace = (
        RESOURCES and TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    )
    emitted = set()
    for path in (ROOT / "layers" / "common" / "python" / "cadence").rglob("*.py"):
        source = path.read_text()
        # literal names, and dispatch's outcome -> metric map (add_metric(name=_METRICS[status]))
        emitted |= set(re.findall(r'add_metric\(name="(\w+)"', source))
        emitted |= set(re.findall(r'SendStatus\.\w+\.value: "(\w+)"', source))
    charted = set(re.findall(r'"\$\{Namespace\}", "(\w+)"', body))

    assert variables["Namespace"] == namespace
    assert charted
    assert charted <= emitted  # a renamed metric would leave an empty chart
    assert {"MessagesSent", "SendsRejected", "SendsFailed", "SendsInDoubt", "RowsAccepted", "RowsRejected"} <= charted
