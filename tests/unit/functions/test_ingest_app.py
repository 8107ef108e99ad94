"""The ingest handler with a real S3 put notification (sam local generate-event s3 put) against moto."""

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from cadence import config
from cadence.errors import InvalidInputError
from cadence.ingest import service
from cadence.ingest.models import FileRef
from tests.unit.cadence.ingest.stack import LEDGER_TABLE, IngestStack, moto_stack


@pytest.fixture(scope="module")
def _module_stack() -> Iterator[IngestStack]:
    with moto_stack() as stack:
        yield stack


@pytest.fixture
def stack(_module_stack: IngestStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[IngestStack]:
    monkeypatch.setenv("INGEST_LEDGER_TABLE", LEDGER_TABLE)
    config.ingest_settings.cache_clear()
    _module_stack.wipe()
    yield _module_stack
    config.ingest_settings.cache_clear()


def s3_put(load_event, *keys: str) -> dict[str, Any]:
    """The generated payload with one record per key, each key URL-encoded as S3 sends it ('a b' -> 'a+b')."""
    event = load_event("s3_put")
    template = event["Records"][0]
    event["Records"] = []
    for key in keys:
        record = copy.deepcopy(template)
        record["s3"]["object"]["key"] = key.replace("%", "%25").replace("+", "%2B").replace(" ", "+")
        event["Records"].append(record)
    return event


def test_handler_ingests_every_record_with_its_key_decoded(stack, load_event, lambda_context):
    from functions.ingest import app  # noqa: PLC0415 - loads after the env fixture

    stack.put("incoming/customers/crm export.csv", "customer_id,email\n1,a@example.com\n")
    stack.put("incoming/orders/q1+q2 100%.csv", "order_id,customer_id,order_date,amount\nA,1,2024-01-01,5\n")

    result = app.lambda_handler(
        s3_put(load_event, "incoming/customers/crm export.csv", "incoming/orders/q1+q2 100%.csv"), lambda_context
    )

    assert [(f["source_key"], f["rows_accepted"]) for f in result["files"]] == [
        ("incoming/customers/crm export.csv", 1),
        ("incoming/orders/q1+q2 100%.csv", 1),
    ]
    assert stack.profile("1") == {
        "customer_id": "1",
        "email": "a@example.com",
        "updated_at": stack.profile("1")["updated_at"],
    }
    assert stack.activity("1") == {
        "customer_id": "1",
        "order_count": 1,
        "total_spend": 5,
        "first_order_at": "2024-01-01T00:00:00Z",
        "last_order_at": "2024-01-01T00:00:00Z",
    }


def test_handler_raises_when_a_file_is_unreadable(stack, load_event, lambda_context):
    from functions.ingest import app  # noqa: PLC0415 - loads after the env fixture

    stack.put("incoming/customers/crm export.csv", "no,usable,columns\n1,2,3\n")

    with pytest.raises(InvalidInputError):
        app.lambda_handler(s3_put(load_event, "incoming/customers/crm export.csv"), lambda_context)

    assert stack.report("incoming/customers/crm export.csv")["status"] == "unreadable"


def test_handler_logs_counts_but_no_customer_data(stack, load_event, lambda_context, captured_logs):
    from functions.ingest import app  # noqa: PLC0415 - loads after the env fixture

    stack.put(
        "incoming/customers/crm export.csv",
        "customer_id,email,phone,first_name\n1,secret.person@example.com,13800138000,Zhangsan\n2,not-an-email,,Lisi\n",
    )

    app.lambda_handler(s3_put(load_event, "incoming/customers/crm export.csv"), lambda_context)

    logs = captured_logs.getvalue()
    assert '"rows_accepted":1' in logs
    for secret in ("secret.person", "13800138000", "8613800138000", "Zhangsan", "Lisi", "not-an-email"):
        assert secret not in logs


def test_handler_carries_on_with_a_continuation_event(stack, lambda_context, monkeypatch):
    from functions.ingest import app  # noqa: PLC0415 - loads after the env fixture

    key = "incoming/orders/big.csv"
    version = stack.put(
        key, "order_id,customer_id,order_date,amount\n" + "".join(f"o{i},1,2024-01-01,1\n" for i in range(15))
    )
    handed_off: list = []
    settings = stack.settings.model_copy(update={"ingest_chunk_rows": 10})
    service.ingest_files(
        [FileRef(stack.bucket, key, version)],
        settings=settings,
        invocation=service.Invocation(time_left=lambda: 0.0, hand_off=handed_off.append),
    )

    # The handler's own settings (chunk size 10 000) do not matter: the continuation carries its chunk size.
    result = app.lambda_handler(handed_off[0], lambda_context)

    assert result["files"][0]["status"] == "ok"
    report = stack.report(key)
    assert ([p["first_chunk"] for p in report["parts"]], report["rows_accepted"]) == ([0, 1], 15)
    assert stack.activity("1")["order_count"] == 15
