"""The audience benchmark's model of 1M customers on AWS: the slowest bound wins, memory is checked."""

from infra.bench_audience import AWS, customer_items, measure_finisher, model_on_aws, model_split


def test_the_modelled_time_is_the_slowest_of_capacity_round_trips_and_cpu() -> None:
    # 1M customers, two items each at half a unit, and 1M * 80 B of scores at half a unit per 4 KB
    idle = model_on_aws(cpu_us_per_customer=0.0, bytes_per_customer=0.0, base_mb=100.0)
    assert idle["read_units"] == round(1_000_000 + 1_000_000 * 80 / 4096 * 0.5)
    assert idle["bound_by"] == "read_capacity_s"
    assert idle["modelled_s"] == round(idle["read_units"] / AWS["table_read_units_per_s"], 1)
    assert (idle["fits_timeout"], idle["fits_memory"], idle["peak_mb"]) == (True, True, 100)

    # 300 us a customer on 1024/1769 of a vCPU is 518 s: past the timeout; 2 KB a customer is 2 GB
    busy = model_on_aws(cpu_us_per_customer=300.0, bytes_per_customer=2_000.0, base_mb=100.0)
    assert busy["bound_by"] == "client_cpu_s"
    assert busy["modelled_s"] == round(300e-6 * 1_000_000 / (1024 / 1769), 1)
    assert (busy["fits_timeout"], busy["fits_memory"], busy["peak_mb"]) == (False, False, 2100)


def test_generated_customers_are_distinct_and_scored_in_every_decile() -> None:
    rows = [customer_items(index) for index in range(1_000)]

    assert len({profile["customer_id"] for profile, _, _ in rows}) == 1_000
    assert all(p["customer_id"] == a["customer_id"] == s["customer_id"] for p, a, s in rows)
    assert {score["decile"] for _, _, score in rows} == set(range(1, 11))


def test_the_split_model_scales_a_segment_to_the_segment_size_and_the_finisher_to_1m() -> None:
    segment = {"cpu_us_per_customer": 50.0, "bytes_per_customer": 1_000}
    finisher = {"members": 100_000, "cpu_s": 2.0, "batch_messages": 4_000, "peak_mb": 50.0}

    split = model_split(segment, read_cpu_us=250.0, finisher=finisher, base_mb=100.0)

    # 1M in segments of 125,000: 8, each 125,000 * 300 us on 1024/1769 of a vCPU, 125 MB above the base
    assert (split["segment_size"], split["segments"]) == (125_000, 8)
    assert split["segment"]["client_cpu_s"] == round(125_000 * 300e-6 / (1024 / 1769), 1)
    assert split["segment"]["peak_mb"] == 225
    # the finisher's measured 100,000 scaled ten times: CPU, 40,000 messages ten a call, memory
    assert split["finisher"]["cpu_s"] == round(20.0 / (1024 / 1769), 1)
    assert split["finisher"]["fan_out_s"] == round(4_000 * 10 / 10 * 0.02, 1)
    assert split["finisher"]["peak_mb"] == 600
    assert (split["fits_timeout"], split["fits_memory"]) == (True, True)


def test_the_finisher_bench_decides_every_generated_member() -> None:
    measured = measure_finisher(members=3_000, segments=3)

    assert measured["members"] == 3_000
    assert 0 < measured["sends"] <= 2 * 3_000
    assert measured["batch_messages"] >= measured["sends"] / 50
    assert measured["peak_mb"] > measured["facts_files_mb"] > 0
