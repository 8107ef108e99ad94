"""`make bench` section "audience": reading and planning a campaign audience of N customers (default 100,000).

    python -m infra.bench --only audience        # AUDIENCE_BENCH_CUSTOMERS sets N

N scored customers (profile, activity, score) are written to a moto server started for this section (moto's
own server in a subprocess, tables built from template.yaml's key schemas), then one campaign that picks every
scored customer (email + SMS, holdout, two variants, a coupon: the most the planner holds) is read and planned:

1. read with one Scan segment and one BatchGetItem call at a time (the code before parallel reads), then with
   AUDIENCE_SCAN_SEGMENTS segments and AUDIENCE_READ_WORKERS calls at once (the template's values), in the same
   run: profiles/s of each and their ratio; the two plans must be identical;
2. planning alone (plan_run over what was read), profiles/s;
3. peak memory (tracemalloc) of a streamed read + plan, as a run does it, and per customer;
4. a model of 1M customers on AWS: the read units the reads cost against the table's read capacity, the round
   trips, and this process's CPU per customer scaled to the function's share of a vCPU; the slowest bound is
   the modelled time, and the memory per customer gives the peak for 1M against the function's MemorySize.
5. the run split across invocations (cadence.campaign_runs): a segment's read + per-member stage (assess) and its
   facts file, measured over the whole seeded audience (CPU and traced peak per customer), scaled to
   AUDIENCE_SEGMENT_SIZE customers a segment; and the finisher over 1M generated member facts (no server: the
   S facts files are made up front, then merged, decided, and members.csv, batches.jsonl.gz and the contact
   history rows written, under tracemalloc), beside the SQS calls its fan-out makes.

Why not the local stack's server: it runs moto inside this process behind a lock around every DynamoDB request
(moto is not thread-safe while the stack writes), so parallel reads could not overlap at all there. In a
subprocess the server's work and this process's parsing run on two cores; the server still answers one request
at a time per core, so the parallel speed-up measured here understates what DynamoDB's partitions give.
"""

import os
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import boto3
from samtranslator.yaml_helper import yaml_parse

ROOT: Final = Path(__file__).resolve().parent.parent
NOW: Final = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TABLES: Final = {"ProfilesTable": "bench-profiles", "ActivityTable": "bench-activity", "ScoresTable": "bench-scores"}
BUCKET: Final = "bench-audience-data"
CAMPAIGN: Final[dict[str, Any]] = {
    "campaign_id": "bench-audience",
    "name": "Every scored customer",
    "channels": ["email", "sms"],
    "holdout_percent": 10,
    "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
    "offer": {"by": "decile", "tiers": [{"max": 2, "value": 5}, {"max": 5, "value": 10}], "otherwise": 20},
    "email": {"subject": "For you", "body": "{first_name}: {offer_value}% with {coupon_code}"},
    "sms": {"text": "{offer_value}% with {coupon_code}"},
}

# The model's assumptions about AWS (stated in the output beside the figures they give).
AWS: Final = {
    # A new on-demand table serves up to 12,000 read request units/s at once (more after a higher peak).
    "table_read_units_per_s": 12_000,
    # BatchGetItem of 100 small items and a 1 MB Scan page, round trip inside the region.
    "batch_get_round_trip_s": 0.025,
    "scan_page_round_trip_s": 0.15,
    # Lambda allocates CPU in proportion to memory: one vCPU at 1,769 MB.
    "vcpu_at_1769_mb": 1.0,
    "function_memory_mb": 1024,
    "function_timeout_s": 300,
    "customers": 1_000_000,
    # Items round up to 4 KB each in BatchGetItem; a Scan counts the bytes it reads. Eventually consistent: half.
    "eventually_consistent_units_per_4kb": 0.5,
    "score_item_bytes": 80,
    # SendMessageBatch of ten batch messages, one call after another (cadence.dal.queues).
    "send_message_batch_round_trip_s": 0.02,
}


def default_customers() -> int:
    return int(os.environ.get("AUDIENCE_BENCH_CUSTOMERS", "100000"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server(preload: str = "", environment: dict[str, str] | None = None) -> Iterator[str]:
    """moto's own server in a subprocess (after running `preload`, e.g. installing a shim); yields its URL."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", f"{preload}from moto.server import main; main()", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **(environment or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def aws_endpoint(endpoint_url: str) -> Iterator[None]:
    """Point the DAL's clients at the endpoint (boto3 reads AWS_ENDPOINT_URL itself), with fake credentials."""
    from cadence.dal import clients  # noqa: PLC0415 - project code loads only for this section

    names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    saved = {name: os.environ.get(name) for name in (*names, "AWS_SESSION_TOKEN", "AWS_PROFILE")}
    os.environ.update(dict(zip(names, (endpoint_url, "bench", "bench", "us-east-1"), strict=True)))
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    caches = (clients.client, clients.table)
    for cached in caches:
        cached.cache_clear()
    try:
        yield
    finally:
        for cached in caches:
            cached.cache_clear()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def create_tables() -> None:
    """The profiles, activity and scores tables as template.yaml declares them, and the data bucket."""
    from infra.sam_deploy import create_table_like  # noqa: PLC0415 - the bench's workers never deploy a stack

    resources = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]
    dynamodb = boto3.client("dynamodb")
    for logical_id, name in TABLES.items():
        properties = resources[logical_id]["Properties"]
        create_table_like(dynamodb, properties, name)
    boto3.client("s3").create_bucket(Bucket=BUCKET)


def customer_items(index: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(profile, activity, score) of customer `index`, shaped as ingest and the score function write them."""
    customer_id = f"C{index:08d}"
    profile = {
        "customer_id": customer_id,
        "email": f"user{index}@example.com",
        "phone": f"+86138{index:08d}",
        "first_name": ("Li", "Wang", "Zhang", "Liu", "Chen")[index % 5],
        "last_name": ("Wei", "Fang", "Min", "Jing", "Lei")[index % 5],
        "country": ("CN", "US", "SG")[index % 3],
        "city": "Shanghai",
        "timezone": "Asia/Shanghai",
        "language": "zh-CN",
        "signup_date": "2024-03-01",
        "consent_email": index % 2 == 0,
        "consent_sms": index % 3 != 0,
        "updated_at": "2026-11-01T08:00:00+00:00",
    }
    activity = {
        "customer_id": customer_id,
        "order_count": index % 9,
        "total_spend": Decimal(index % 9 * 120),
        "first_order_at": "2025-01-05T10:00:00+00:00",
        "last_order_at": "2026-08-05T10:00:00+00:00",
        "event_count": index % 40,
        "last_visit_at": "2026-07-01T10:00:00+00:00",
    }
    score = {
        "customer_id": customer_id,
        "score": Decimal(str(round((index * 7919 % 10_000) / 10_000, 4))),
        "decile": index % 10 + 1,
        "model_version": "2026-11-23-bench",
        "scored_at": "2026-11-23T02:00:00+00:00",
    }
    return profile, activity, score


def seed(customers: int, block: int = 20_000) -> float:
    """Write every customer's three items with the DAL's batch writer; returns the seconds it took."""
    from cadence.dal import batches  # noqa: PLC0415

    started = time.perf_counter()
    for start in range(0, customers, block):
        rows = [customer_items(index) for index in range(start, min(start + block, customers))]
        for position, name in enumerate(TABLES.values()):
            batches.put_items(name, [row[position] for row in rows], action="bench.seed", workers=8)
    return time.perf_counter() - started


def campaign_settings(segments: int, workers: int) -> Any:
    from cadence.config import CampaignSettings  # noqa: PLC0415

    return CampaignSettings(
        profiles_table=TABLES["ProfilesTable"],
        activity_table=TABLES["ActivityTable"],
        scores_table=TABLES["ScoresTable"],
        campaigns_table="bench-campaigns-unused",
        sends_table="bench-sends-unused",
        dispatch_queue_url="http://unused",
        data_bucket=BUCKET,
        audience_scan_segments=segments,
        audience_read_workers=workers,
    )


def measure_read(segments: int, workers: int) -> dict[str, Any]:
    """Read the audience (candidates) and plan it; wall and CPU seconds of each."""
    from cadence import campaign_runs  # noqa: PLC0415
    from cadence.campaigns.definition import CampaignDefinition  # noqa: PLC0415
    from cadence.campaigns.plan import plan_run  # noqa: PLC0415

    definition = CampaignDefinition.model_validate(CAMPAIGN)
    settings = campaign_settings(segments, workers)
    started, cpu_started = time.perf_counter(), time.process_time()
    read = list(campaign_runs.candidates(definition, settings))
    read_s, read_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    started, cpu_started = time.perf_counter(), time.process_time()
    plan = plan_run(definition, "bench-run", read, now=NOW, secret="bench")  # noqa: S106 - a bench secret
    plan_s, plan_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    customers = len(read)
    return {
        "segments": segments,
        "read_workers": workers,
        "customers_read": customers,
        "distinct_customers_read": len({candidate.customer_id for candidate in read}),
        "read_s": round(read_s, 2),
        "read_profiles_per_s": round(customers / read_s),
        "read_cpu_us_per_customer": round(read_cpu_s / customers * 1e6, 1),
        "plan_s": round(plan_s, 2),
        "plan_profiles_per_s": round(customers / plan_s),
        "plan_cpu_us_per_customer": round(plan_cpu_s / customers * 1e6, 1),
        "read_and_plan_profiles_per_s": round(customers / (read_s + plan_s)),
        "plan": [member.row() for member in plan.members],
    }


def measure_memory(segments: int, workers: int) -> dict[str, Any]:
    """Peak traced memory of a streamed read + plan (campaign_runs.preview, what a run does before sending)."""
    from cadence import campaign_runs  # noqa: PLC0415
    from cadence.campaigns.definition import CampaignDefinition  # noqa: PLC0415

    definition = CampaignDefinition.model_validate(CAMPAIGN)
    tracemalloc.start()
    try:
        plan = campaign_runs.preview(definition, campaign_settings(segments, workers), NOW)
        members = len(plan.members)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {
        "members": members,
        "peak_mb": round(peak / 1e6, 1),
        "bytes_per_customer": round(peak / max(members, 1)),
    }


def model_on_aws(cpu_us_per_customer: float, bytes_per_customer: float, base_mb: float) -> dict[str, Any]:
    """The time and memory of reading and planning AWS["customers"] in one invocation, from its three bounds."""
    customers = AWS["customers"]
    units = AWS["eventually_consistent_units_per_4kb"]
    scan_units = customers * AWS["score_item_bytes"] / 4096 * units
    batch_get_units = customers * 2 * units  # a profile and an activity item, each rounded up to 4 KB
    read_units = scan_units + batch_get_units
    capacity_s = read_units / AWS["table_read_units_per_s"]
    calls = customers / 50  # 50 customers a BatchGetItem call (100 keys across both tables)
    scan_pages = customers * AWS["score_item_bytes"] / 1_000_000
    from cadence.config import CampaignSettings  # noqa: PLC0415

    workers = CampaignSettings.model_fields["audience_read_workers"].default
    segments = CampaignSettings.model_fields["audience_scan_segments"].default
    round_trips_s = calls * AWS["batch_get_round_trip_s"] / workers + scan_pages * AWS["scan_page_round_trip_s"] / min(
        segments, workers
    )
    vcpu = AWS["function_memory_mb"] / 1769 * AWS["vcpu_at_1769_mb"]
    cpu_s = customers * cpu_us_per_customer / 1e6 / vcpu
    bounds = {"read_capacity_s": capacity_s, "round_trips_s": round_trips_s, "client_cpu_s": cpu_s}
    modelled = max(bounds.values())
    peak_mb = base_mb + customers * bytes_per_customer / 1e6
    return {
        "assumptions": dict(AWS),
        "read_units": round(read_units),
        **{name: round(value, 1) for name, value in bounds.items()},
        "bound_by": max(bounds, key=lambda name: bounds[name]),
        "modelled_s": round(modelled, 1),
        "fits_timeout": modelled < AWS["function_timeout_s"],
        "peak_mb": round(peak_mb),
        "fits_memory": peak_mb < AWS["function_memory_mb"],
    }


def measure_segment(workers: int) -> dict[str, Any]:
    """A segment's work over the whole seeded audience (segment 0 of 1): read, assess, facts file; CPU and traced
    peak per customer (what a segment of AUDIENCE_SEGMENT_SIZE customers scales from)."""
    from cadence import campaign_runs  # noqa: PLC0415
    from cadence.campaigns.definition import CampaignDefinition  # noqa: PLC0415
    from cadence.campaigns.plan import assess  # noqa: PLC0415

    definition = CampaignDefinition.model_validate(CAMPAIGN)
    settings = campaign_settings(setting_default("audience_scan_segments"), workers)
    tracemalloc.start()
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        assessed = assess(definition, campaign_runs.candidates(definition, settings, (0, 1)), now=NOW)
        body = campaign_runs.facts_body(assessed.facts)
        wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    customers = max(assessed.considered, 1)
    return {
        "customers": assessed.considered,
        "members": len(assessed.facts),
        "wall_s": round(wall_s, 2),
        "cpu_us_per_customer": round(cpu_s / customers * 1e6, 1),
        "peak_mb": round(peak / 1e6, 1),
        "bytes_per_customer": round(peak / customers),
        "facts_file_bytes_per_member": round(len(body) / max(len(assessed.facts), 1), 1),
    }


def setting_default(name: str) -> Any:
    """A CampaignSettings default (the template's value)."""
    from cadence.config import CampaignSettings  # noqa: PLC0415

    return CampaignSettings.model_fields[name].default


def generated_facts(members: int, segments: int) -> list[bytes]:
    """`members` member facts as `segments` facts files (each in customer id order, as segments write them),
    shaped like the bench campaign's: 10 % holdout, some without consent, email + SMS, a pair per address."""
    from cadence import campaign_runs  # noqa: PLC0415
    from cadence.campaigns.plan import MemberFacts, MemberState, address_hash  # noqa: PLC0415

    release = NOW.replace(second=0, microsecond=0)
    parts: list[list[MemberFacts]] = [[] for _ in range(segments)]
    for index in range(members):
        customer_id = f"C{index:08d}"
        variant = "ab"[index % 2]
        score = round((index * 7919 % 10_000) / 10_000, 4)
        if index % 10 == 0:
            fact = MemberFacts(customer_id, MemberState.HOLDOUT, variant, score)
        elif index % 6 == 1:
            fact = MemberFacts(customer_id, MemberState.NO_CONSENT, variant, score)
        else:
            addresses = (address_hash(f"user{index // 2}@example.com"), address_hash(f"+86138{index:08d}"))
            offer = ("5", "10", "20")[index % 3]
            fact = MemberFacts(customer_id, None, variant, score, ("email", "sms"), addresses, release, False, offer)
        parts[index * 7919 % segments].append(fact)
    return [campaign_runs.facts_body(part) for part in parts]


def measure_finisher(members: int, segments: int) -> dict[str, Any]:
    """The finisher over `members` generated facts in `segments` files: merge, decide, members.csv,
    batches.jsonl.gz and the contact history rows; CPU and traced peak (the files' bytes added: S3 hands them in)."""
    from cadence import campaign_runs  # noqa: PLC0415
    from cadence.campaigns.definition import CampaignDefinition  # noqa: PLC0415
    from cadence.campaigns.plan import decide  # noqa: PLC0415

    definition = CampaignDefinition.model_validate({**CAMPAIGN, "offer": {**CAMPAIGN["offer"], "coupon": True}})
    bodies = generated_facts(members, segments)
    files_bytes = sum(len(body) for body in bodies)
    tracemalloc.start()
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        facts = campaign_runs.merged_facts([campaign_runs.read_facts(body) for body in bodies])
        plan = decide(definition, "bench-run", facts, considered=members, now=NOW, secret="bench")  # noqa: S106
        decided_s = time.process_time() - cpu_started
        _, after_decide = tracemalloc.get_traced_memory()
        members_csv = campaign_runs.members_csv(plan)
        batches = plan.batches()
        batches_gz = campaign_runs.batches_body(batches)
        contacts = sum(1 for _ in ((send.customer_id, send.channel) for send in plan.sends()))
        wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    messages = len(batches)
    return {
        "members": len(plan.members),
        "segments": segments,
        "facts_files_mb": round(files_bytes / 1e6, 1),
        "sends": contacts,
        "batch_messages": messages,
        "decide_cpu_s": round(decided_s, 1),
        "cpu_s": round(cpu_s, 1),
        "wall_s": round(wall_s, 1),
        "peak_after_decide_mb": round((after_decide + files_bytes) / 1e6, 1),
        "peak_mb": round((peak + files_bytes) / 1e6, 1),
        "members_csv_mb": round(len(members_csv) / 1e6, 1),
        "batches_gz_mb": round(len(batches_gz) / 1e6, 1),
    }


def model_split(
    segment: dict[str, Any], read_cpu_us: float, finisher: dict[str, Any], base_mb: float
) -> dict[str, Any]:
    """AWS["customers"] split into segments of AUDIENCE_SEGMENT_SIZE: each segment's time and peak, the finisher's."""
    customers = AWS["customers"]
    size = int(setting_default("audience_segment_size"))
    total = -(-customers // size)
    vcpu = AWS["function_memory_mb"] / 1769 * AWS["vcpu_at_1769_mb"]
    # Every segment reads at once: together they still share the table's read capacity.
    whole = model_on_aws(read_cpu_us + segment["cpu_us_per_customer"], segment["bytes_per_customer"], base_mb)
    segment_cpu_s = size * (read_cpu_us + segment["cpu_us_per_customer"]) / 1e6 / vcpu
    bounds = {
        "read_capacity_s": whole["read_capacity_s"],
        "round_trips_s": whole["round_trips_s"] / total,
        "client_cpu_s": segment_cpu_s,
    }
    segment_s = max(bounds.values())
    segment_peak_mb = base_mb + size * segment["bytes_per_customer"] / 1e6
    scale = customers / max(finisher["members"], 1)
    finisher_cpu_s = finisher["cpu_s"] * scale / vcpu
    fan_out_s = finisher["batch_messages"] * scale / 10 * AWS["send_message_batch_round_trip_s"]
    finisher_s = finisher_cpu_s + fan_out_s
    finisher_peak_mb = base_mb + finisher["peak_mb"] * scale
    return {
        "segment_size": size,
        "segments": total,
        "segment": {
            **{name: round(value, 1) for name, value in bounds.items()},
            "bound_by": max(bounds, key=lambda name: bounds[name]),
            "modelled_s": round(segment_s, 1),
            "peak_mb": round(segment_peak_mb),
        },
        "finisher": {
            "cpu_s": round(finisher_cpu_s, 1),
            "fan_out_s": round(fan_out_s, 1),
            "modelled_s": round(finisher_s, 1),
            "peak_mb": round(finisher_peak_mb),
        },
        "run_modelled_s": round(segment_s + finisher_s, 1),
        "fits_timeout": max(segment_s, finisher_s) < AWS["function_timeout_s"],
        "fits_memory": max(segment_peak_mb, finisher_peak_mb) < AWS["function_memory_mb"],
    }


def bench_audience(customers: int | None = None) -> dict[str, Any]:
    """Seed, read and plan with one segment and with many, measure memory, model 1M on AWS, print the figures."""
    from cadence.config import CampaignSettings  # noqa: PLC0415

    customers = customers or default_customers()
    fields = CampaignSettings.model_fields
    segments, workers = fields["audience_scan_segments"].default, fields["audience_read_workers"].default
    with moto_server() as endpoint, aws_endpoint(endpoint):
        create_tables()
        seed_s = seed(customers)
        single = measure_read(1, 1)
        parallel = measure_read(segments, workers)
        memory = measure_memory(segments, workers)
        segment = measure_segment(workers)
    finisher = measure_finisher(AWS["customers"], -(-AWS["customers"] // fields["audience_segment_size"].default))
    same_plan = single.pop("plan") == parallel.pop("plan")
    cpu_us = parallel["read_cpu_us_per_customer"] + parallel["plan_cpu_us_per_customer"]
    # The interpreter, boto3 and the layer take about this much before the audience (the function's cold start).
    base_mb = 120.0
    result = {
        "server": "moto_server subprocess (moto's own server; tables from template.yaml), not the local stack",
        "customers": customers,
        "seed_s": round(seed_s, 1),
        "single_segment": single,
        "parallel": parallel,
        "speedup_vs_single_segment": round(single["read_s"] / parallel["read_s"], 2),
        "same_plan_with_one_and_many_segments": same_plan,
        "every_customer_read_once": all(
            run["customers_read"] == run["distinct_customers_read"] == customers for run in (single, parallel)
        ),
        "memory": memory,
        "aws_1m_one_invocation": model_on_aws(cpu_us, memory["bytes_per_customer"], base_mb),
        "segment": segment,
        "finisher": finisher,
        "aws_1m_split": model_split(segment, parallel["read_cpu_us_per_customer"], finisher, base_mb),
    }
    _print(result)
    return result


def _print(result: dict[str, Any]) -> None:
    single, parallel, memory, model = (
        result["single_segment"],
        result["parallel"],
        result["memory"],
        result["aws_1m_one_invocation"],
    )
    print(f"\naudience of {result['customers']:,} customers on a {result['server']}")
    for name, run in (("one segment, one call at a time", single), ("parallel", parallel)):
        print(
            f"  read, {name} ({run['segments']} segments, {run['read_workers']} workers): "
            f"{run['read_profiles_per_s']:,} profiles/s ({run['read_s']} s, {run['read_cpu_us_per_customer']} us CPU"
            f" a customer); read + plan {run['read_and_plan_profiles_per_s']:,} profiles/s"
        )
    print(f"  parallel vs one segment: x{result['speedup_vs_single_segment']} (same run)")
    print(f"  planning alone: {parallel['plan_profiles_per_s']:,} profiles/s")
    print(f"  same plan with one and many segments: {result['same_plan_with_one_and_many_segments']}")
    print(f"  peak memory of read + plan: {memory['peak_mb']} MB ({memory['bytes_per_customer']} bytes a customer)")
    print(
        f"  1M on AWS in one invocation (modelled): {model['modelled_s']} s, bound by {model['bound_by']}"
        f" (capacity {model['read_capacity_s']} s, round trips {model['round_trips_s']} s, CPU"
        f" {model['client_cpu_s']} s); peak {model['peak_mb']} MB of {model['assumptions']['function_memory_mb']}"
    )
    split, segment, finisher = result["aws_1m_split"], result["segment"], result["finisher"]
    print(
        f"  a segment (read + assess + facts file): {segment['cpu_us_per_customer']} us CPU a customer besides the"
        f" read, {segment['bytes_per_customer']} bytes a customer, {segment['facts_file_bytes_per_member']} B a"
        " member in its facts file"
    )
    print(
        f"  finisher over {finisher['members']:,} generated facts in {finisher['segments']} files:"
        f" {finisher['cpu_s']} s CPU, peak {finisher['peak_mb']} MB"
        f" ({finisher['peak_after_decide_mb']} MB after deciding)"
    )
    print(
        f"  1M on AWS split in {split['segments']} segments of {split['segment_size']:,} (modelled): a segment"
        f" {split['segment']['modelled_s']} s ({split['segment']['bound_by']}), peak {split['segment']['peak_mb']} MB;"
        f" the finisher {split['finisher']['modelled_s']} s (fan-out {split['finisher']['fan_out_s']} s), peak"
        f" {split['finisher']['peak_mb']} MB"
    )
