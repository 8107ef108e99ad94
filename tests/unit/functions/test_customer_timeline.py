"""`cadence customer show ID`: a customer's sends with their outcomes, their replies with what was read in them,
and their consent changes, oldest first, from what a real run and a real reply left in the stack."""

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from cadence_cli.main import main
from tests.unit.functions.test_erasure_app import ERASED, pipeline  # noqa: F401 - the fixture

RUN_DAY = date(2026, 11, 23)  # the pipeline's campaign run


def show(tmp_path: Any, customer_id: str, *extra: str) -> int:
    outputs = tmp_path / "outputs.json"
    names = {
        "ProfilesTableName": "test-profiles",
        "ConversationsTableName": "test-conversations",
        "SendsTableName": "test-sends",
        "DataBucketName": "test-data-bucket",
    }
    outputs.write_text(json.dumps(names))
    days = str((datetime.now(UTC).date() - RUN_DAY).days + 1)
    return main(["customer", "show", customer_id, "--outputs-file", str(outputs), "--days", days, *extra])


@pytest.mark.usefixtures("pipeline")
def test_the_timeline_shows_each_send_its_outcome_the_reply_and_the_consent_it_changed(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert show(tmp_path, ERASED, "--json") == 0

    printed = json.loads(capsys.readouterr().out)
    timeline = [(event["kind"], event["channel"], event["summary"]) for event in printed["timeline"]]
    assert timeline[:2] == [("send", "email", "winback: SENT"), ("send", "sms", "winback: SENT")]
    assert ("reply", "sms", "keyword STOP, answered") in timeline
    consent = [event for event in printed["timeline"] if event["kind"] == "consent" and event["channel"] == "sms"]
    assert [event["summary"] for event in consent] == ["consent no (sms:stop)"]
    moments = [datetime.fromisoformat(event["at"]) for event in printed["timeline"]]
    assert moments == sorted(moments)
    assert printed["profile"]["consent_sms"] is False


@pytest.mark.usefixtures("pipeline")
def test_the_table_names_the_reply_text_and_an_unknown_customer_is_refused(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert show(tmp_path, ERASED) == 0
    out = capsys.readouterr().out
    assert "consent email yes, sms no" in out
    assert "STOP, gone.person@example.com too" in out

    assert show(tmp_path, "NOBODY") == 2
    assert "customer NOBODY is not known" in capsys.readouterr().err
