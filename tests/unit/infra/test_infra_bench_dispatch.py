"""The dispatch bench's cost model: DynamoDB units priced per call by the item each touched, Lambda by its memory."""

from collections import Counter

import pytest

from infra import bench_dispatch
from infra.bench_dispatch import PRICES, _cost, _dynamodb_units, function_memory_mb

NAMES = {"CampaignsTable": "campaigns", "SendsTable": "sends", "SuppressionTable": "suppression"}
SIZES = {"ledger": 2739.0, "run": 600.0, "campaign": 900.0, "profile": 180.0, "ledger_total": 2739.0 * 100}


def test_each_write_costs_a_unit_per_kilobyte_of_the_item_it_leaves_and_reads_by_four() -> None:
    calls = Counter(
        {
            ("UpdateItem", "sends", "small"): 100,  # claims: a small item, one unit each
            ("UpdateItem", "sends", "outcomes"): 100,  # settles: 2,739 bytes, three units each
            ("UpdateItem", "campaigns", "small"): 10,  # the run's counter: 600 bytes, one unit
            ("GetItem", "campaigns", "small"): 100,  # the campaign, strongly consistent: one unit
            ("Query", "suppression", "small"): 10,  # the log's few entries: one unit
            ("Query", "sends", "small"): 1,  # the run's whole ledger: 273,900 bytes, 67 units
            ("BatchGetItem", "profiles", "keys"): 50,  # eventually consistent: half a unit each
        }
    )

    units = _dynamodb_units(calls, NAMES, SIZES)

    assert units == {"wru": 100 + 300 + 10, "rru": 100 + 10 + 67 + 25}


def test_lambda_is_billed_for_the_calls_latency_and_the_cpu_stretched_to_the_functions_vcpu_share() -> None:
    memory = function_memory_mb()
    assert memory == 512  # DispatchFunction takes the Globals' MemorySize
    cost = _cost(1_000, Counter({"sesv2": 20}), 2, {"wru": 0, "rru": 0}, cpu_seconds=1.0)

    seconds = 2 * bench_dispatch.LATENCY_S["invocation"] + 20 * bench_dispatch.LATENCY_S["sesv2"]
    seconds += 1.0 * bench_dispatch.FULL_VCPU_MB / memory
    expected = 2 * PRICES["lambda_per_request"] + seconds * memory / 1024 * PRICES["lambda_per_gb_s"]
    assert cost["lambda"] == pytest.approx(expected, abs=1e-5)
    assert cost["dynamodb"] == 0


def test_the_call_counter_sees_the_batch_calls_that_leave_through_the_bulk_wire(tables: dict[str, str]) -> None:
    from cadence.dal import batches  # noqa: PLC0415 - after the aws fixture bound the clients to moto

    profiles = tables["ProfilesTable"]
    with bench_dispatch.CallCounter() as counter:
        batches.put_items(profiles, [{"customer_id": "C1"}, {"customer_id": "C2"}], action="test")
        batches.get_items({profiles: [{"customer_id": "C1"}, {"customer_id": "C2"}]}, action="test")
    batches.get_items({profiles: [{"customer_id": "C1"}]}, action="test")  # after the counter: not counted

    assert counter.calls == Counter({("dynamodb", "BatchWriteItem"): 1, ("dynamodb", "BatchGetItem"): 1})
    assert counter.dynamodb[("BatchGetItem", profiles, "keys")] == 2
