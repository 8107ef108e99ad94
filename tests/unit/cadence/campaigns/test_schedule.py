"""The EventBridge Scheduler expression evaluator: cron in time zones (with DST), rate, at."""

from datetime import UTC, datetime, timedelta

import pytest

from cadence.campaigns.schedule import (
    AtExpression,
    CronExpression,
    RateExpression,
    ScheduleExpressionError,
    at_time,
    next_fire_time,
    parse,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_the_templates_daily_cron_fires_at_ten_in_shanghai_when_evaluated_in_utc() -> None:
    after = utc(2025, 1, 1, 3, 0)  # 11:00 in Shanghai, so today's 10:00 has passed

    assert next_fire_time("cron(0 10 * * ? *)", after, "Asia/Shanghai") == utc(2025, 1, 2, 2, 0)


def test_cron_fires_strictly_after_the_given_instant_when_it_is_exactly_due() -> None:
    assert next_fire_time("cron(0 10 * * ? *)", utc(2025, 1, 2, 2, 0), "Asia/Shanghai") == utc(2025, 1, 3, 2, 0)


def test_cron_skips_a_local_time_that_does_not_exist_when_clocks_go_forward() -> None:
    # 2025-03-09 02:30 does not exist in New York; the next 02:30 is the day after (EDT, UTC-4)
    after = utc(2025, 3, 8, 12, 0)

    assert next_fire_time("cron(30 2 * * ? *)", after, "America/New_York") == utc(2025, 3, 10, 6, 30)


def test_cron_fires_once_in_a_repeated_hour_when_clocks_go_back() -> None:
    # 2025-11-02 01:30 happens twice in New York: at 05:30 UTC (EDT) and 06:30 UTC (EST)
    first = next_fire_time("cron(30 1 * * ? *)", utc(2025, 11, 2, 4, 0), "America/New_York")
    second = next_fire_time("cron(30 1 * * ? *)", first or utc(2000, 1, 1), "America/New_York")

    assert first == utc(2025, 11, 2, 5, 30)
    assert second == utc(2025, 11, 3, 6, 30)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(0/15 * * * ? *)", utc(2025, 1, 1, 0, 7), utc(2025, 1, 1, 0, 15)),
        ("cron(5,35 14 * * ? *)", utc(2025, 1, 1, 14, 6), utc(2025, 1, 1, 14, 35)),
        ("cron(0 9 ? * MON-FRI *)", utc(2025, 1, 3, 10, 0), utc(2025, 1, 6, 9, 0)),  # Friday -> Monday
        ("cron(0 9 ? * 2-6 *)", utc(2025, 1, 3, 10, 0), utc(2025, 1, 6, 9, 0)),  # 2-6 = MON-FRI (1 = SUN)
        ("cron(0 12 ? * 3#2 *)", utc(2025, 1, 1), utc(2025, 1, 14, 12, 0)),  # second Tuesday
        ("cron(0 12 ? * 6L *)", utc(2025, 1, 1), utc(2025, 1, 31, 12, 0)),  # last Friday
        ("cron(0 12 L * ? *)", utc(2025, 2, 1), utc(2025, 2, 28, 12, 0)),  # last day of month
        ("cron(0 12 LW * ? *)", utc(2025, 5, 1), utc(2025, 5, 30, 12, 0)),  # last weekday (31st is a Saturday)
        ("cron(0 12 15W * ? *)", utc(2025, 3, 1), utc(2025, 3, 14, 12, 0)),  # 15th is a Saturday -> Friday
        ("cron(0 12 1W * ? *)", utc(2025, 2, 1), utc(2025, 2, 3, 12, 0)),  # 1st is a Saturday -> Monday 3rd
        ("cron(0 0 29 FEB ? *)", utc(2025, 3, 1), utc(2028, 2, 29, 0, 0)),
        ("cron(0 0 1 1 ? 2030-2031)", utc(2025, 1, 1), utc(2030, 1, 1, 0, 0)),
        ("cron(0 22 ? * FRI-MON *)", utc(2025, 1, 7), utc(2025, 1, 10, 22, 0)),  # wrapping range from Tuesday
    ],
)
def test_cron_fields_select_the_expected_next_time(expression: str, after: datetime, expected: datetime) -> None:
    assert next_fire_time(expression, after) == expected


def test_cron_never_fires_again_when_its_years_are_over() -> None:
    assert next_fire_time("cron(0 0 1 1 ? 2020)", utc(2025, 1, 1)) is None


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 10 * * * *)",  # neither day field is ?
        "cron(0 10 ? * ? *)",  # both are
        "cron(0 10 * * ?)",  # five fields
        "cron(60 10 * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 10 32 * ? *)",
        "cron(0 10 ? * 8 *)",
        "cron(0 10 * FOO ? *)",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "rate(five minutes)",
        "at(2025-01-01 10:00:00)",
        "every 5 minutes",
    ],
)
def test_malformed_expressions_are_rejected(expression: str) -> None:
    with pytest.raises(ScheduleExpressionError):
        parse(expression)


def test_parse_returns_the_kind_of_expression() -> None:
    assert isinstance(parse("at(2025-06-01T10:00:00)"), AtExpression)
    assert parse("rate(1 minute)") == RateExpression(timedelta(minutes=1))
    assert parse("rate(2 hours)") == RateExpression(timedelta(hours=2))
    assert parse("rate(1 day)") == RateExpression(timedelta(days=1))
    assert isinstance(parse("cron(0 10 * * ? *)"), CronExpression)


def test_rate_fires_every_period_counted_from_its_anchor() -> None:
    anchor = utc(2025, 3, 1, 0, 0)

    assert next_fire_time("rate(5 minutes)", utc(2025, 3, 1, 0, 7), anchor=anchor) == utc(2025, 3, 1, 0, 10)
    assert next_fire_time("rate(5 minutes)", utc(2025, 3, 1, 0, 10), anchor=anchor) == utc(2025, 3, 1, 0, 15)


def test_rate_waits_for_its_anchor_when_the_anchor_is_in_the_future() -> None:
    assert next_fire_time("rate(1 hour)", utc(2025, 1, 1), anchor=utc(2025, 1, 2)) == utc(2025, 1, 2)


def test_rate_fires_one_period_after_now_when_it_has_no_anchor() -> None:
    assert next_fire_time("rate(1 minute)", utc(2025, 1, 1, 8, 0, 30)) == utc(2025, 1, 1, 8, 1, 30)


def test_at_is_a_wall_clock_time_in_the_schedules_time_zone() -> None:
    assert at_time("at(2025-06-01T10:00:00)", "Asia/Shanghai") == utc(2025, 6, 1, 2, 0)
    assert at_time("at(2025-06-01T10:00:00)") == utc(2025, 6, 1, 10, 0)


def test_at_fires_only_when_still_ahead() -> None:
    assert next_fire_time("at(2025-06-01T10:00:00)", utc(2025, 6, 1, 9, 59)) == utc(2025, 6, 1, 10, 0)
    assert next_fire_time("at(2025-06-01T10:00:00)", utc(2025, 6, 1, 10, 0)) is None


def test_naive_instants_are_taken_as_utc() -> None:
    naive = datetime(2025, 1, 1, 3, 0)

    assert next_fire_time("cron(0 10 * * ? *)", naive, "Asia/Shanghai") == utc(2025, 1, 2, 2, 0)
