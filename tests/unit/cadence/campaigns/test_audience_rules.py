"""Audience rules: validation errors that say where and what, and the all/any/not/compare semantics."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from cadence.campaigns.definition import CampaignDefinition
from cadence.campaigns.rules import FIELDS, RuleError, member_view, parse_rule

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
BASE = {"campaign_id": "spring", "name": "Spring", "channels": ["sms"], "sms": {"text": "Hi {first_name}"}}


def definition(audience: object, **extra: object) -> CampaignDefinition:
    return CampaignDefinition.model_validate({**BASE, "audience": audience, **extra})


def holds(rule: dict, profile: dict | None = None, activity: dict | None = None, score: dict | None = None) -> bool:
    view = member_view({"customer_id": "c1", **(profile or {})}, activity, score, NOW)
    return parse_rule(rule).holds(view)


# ---------- validation ----------


def test_typo_in_field_is_an_error_naming_it_and_suggesting_the_known_field() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule({"all": [{"field": "order_count", "gte": 3}, {"field": "days_since_last_vist", "gt": 90}]})

    message = str(caught.value)
    assert "audience.all[1].field" in message
    assert "'days_since_last_vist'" in message
    assert "did you mean days_since_last_visit?" in message


def test_typo_is_reported_by_the_definition_too() -> None:
    with pytest.raises(ValidationError, match=r"unknown field 'ordr_count' \(did you mean order_count\?\)"):
        definition({"field": "ordr_count", "gte": 3})


def test_unrelated_field_name_lists_the_known_fields() -> None:
    with pytest.raises(RuleError, match=r"unknown field 'zzz'.*known: order_count, .*profile\.<attribute>"):
        parse_rule({"field": "zzz", "eq": 1})


@pytest.mark.parametrize(
    ("rule", "path", "problem"),
    [
        ({"all": [{"field": "order_count", "gte": 3}, {"field": "order_count", "atleast": 3}]}, "audience.all[1]",
         "exactly one operator"),
        ({"field": "order_count", "gte": 3, "lte": 5}, "audience", "exactly one operator"),
        ({"field": "order_count"}, "audience", "exactly one operator"),
        ({"all": [{"field": "order_count", "gte": "3"}]}, "audience.all[0].gte", "a number field takes a number"),
        ({"all": [{"field": "order_count", "gte": True}]}, "audience.all[0].gte", "a number field takes a number"),
        ({"field": "score", "gte": float("nan")}, "audience.gte", "a number field takes a number"),
        ({"any": [{"field": "country", "eq": 86}]}, "audience.any[0].eq", "a text field takes text"),
        ({"all": [{"field": "decile", "lte": 3}, {"field": "country", "gt": "CN"}]}, "audience.all[1]",
         "country is text; gt compares numbers"),
        ({"field": "consent_sms", "eq": 1}, "audience.eq", "true/false field"),
        ({"field": "consent_sms", "gt": True}, "audience.gt", "true/false field"),
        ({"field": "profile.tier", "exists": "yes"}, "audience.exists", "exists takes true or false"),
        ({"field": "country", "in": []}, "audience.in", "in takes a non-empty list"),
        ({"field": "country", "not_in": "CN"}, "audience.not_in", "not_in takes a non-empty list"),
        ({"field": "country", "in": ["CN", 7]}, "audience.in", "a text field takes text"),
        ({"all": []}, "audience.all", "takes a non-empty list of rules"),
        ({"not": {"any": []}}, "audience.not.any", "takes a non-empty list of rules"),
        ({"all": [{"field": "decile", "lte": 3}, {"any": {"field": "decile", "lte": 3}}]}, "audience.all[1].any",
         "takes a non-empty list of rules"),
        ({"all": [{"field": "decile", "lte": 3}], "field": "decile"}, "audience", "all stands alone"),
        ({"all": [["decile"]]}, "audience.all[0]", "a rule is a mapping"),
        ({"any": [{"not": {"feld": "decile", "lte": 3}}]}, "audience.any[0].not", "expected all, any, not or field"),
        ({"field": 3, "eq": 3}, "audience.field", "a field name is text"),
        ("decile <= 3", "audience", "a rule is a mapping"),
        ({"field": "profile.", "eq": 1}, "audience.field", "unknown field 'profile.'"),
    ],
)  # fmt: skip
def test_invalid_rule_is_an_error_with_its_path(rule: object, path: str, problem: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(rule)

    assert str(caught.value).startswith(f"{path}: ")
    assert problem in str(caught.value)


def test_invalid_rule_path_reaches_the_definition_error() -> None:
    with pytest.raises(ValidationError, match=r"audience\.all\[1\]: country is text; gt compares numbers"):
        definition({"all": [{"field": "decile", "lte": 3}, {"field": "country", "gt": "CN"}]})


def test_every_documented_field_can_be_used_in_a_rule() -> None:
    for name, spec in FIELDS.items():
        value = {"number": 1, "text": "x", "bool": True}[spec.type.value]
        assert parse_rule({"field": name, "eq": value}).fields() == {name}


# ---------- semantics ----------


def test_all_needs_every_rule_and_any_needs_one() -> None:
    both = [{"field": "order_count", "gte": 3}, {"field": "country", "eq": "CN"}]

    assert holds({"all": both}, {"country": "CN"}, {"order_count": 3})
    assert not holds({"all": both}, {"country": "GB"}, {"order_count": 3})
    assert not holds({"all": both}, {"country": "CN"}, {"order_count": 2})
    assert holds({"any": both}, {"country": "GB"}, {"order_count": 3})
    assert holds({"any": both}, {"country": "CN"}, {"order_count": 0})
    assert not holds({"any": both}, {"country": "GB"}, {"order_count": 2})


def test_not_inverts_and_nests() -> None:
    rule = {"all": [{"field": "decile", "lte": 3}, {"not": {"any": [{"field": "country", "in": ["CN", "HK"]}]}}]}

    assert holds(rule, {"country": "GB"}, score={"decile": 2})
    assert not holds(rule, {"country": "HK"}, score={"decile": 2})
    assert not holds(rule, {"country": "GB"}, score={"decile": 4})
    assert holds({"not": {"field": "decile", "lte": 3}}, score={"decile": 4})


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("eq", 3, 3, True), ("eq", 3, 4, False), ("ne", 3, 4, True), ("ne", 3, 3, False),
        ("gt", 3, 3, False), ("gt", 3, 4, True), ("gte", 3, 3, True), ("gte", 3, 2, False),
        ("lt", 3, 3, False), ("lt", 3, 2, True), ("lte", 3, 3, True), ("lte", 3, 4, False),
        ("in", [1, 3], 3, True), ("in", [1, 3], 2, False), ("not_in", [1, 3], 2, True), ("not_in", [1, 3], 1, False),
    ],
)  # fmt: skip
def test_number_comparisons_including_decimals_from_the_table(
    op: str, value: object, actual: int, expected: bool
) -> None:
    assert holds({"field": "order_count", op: value}, activity={"order_count": Decimal(actual)}) is expected


def test_in_and_not_in_on_text() -> None:
    assert holds({"field": "country", "in": ["CN", "HK"]}, {"country": "HK"})
    assert not holds({"field": "country", "in": ["CN", "HK"]}, {"country": "GB"})
    assert holds({"field": "country", "not_in": ["CN", "HK"]}, {"country": "GB"})
    # A missing value compares false either way: not_in does not pick up customers without a country.
    assert not holds({"field": "country", "not_in": ["CN"]})
    assert not holds({"field": "country", "in": ["CN"]})


def test_exists_tells_present_from_missing() -> None:
    assert holds({"field": "avg_spend", "exists": True}, activity={"order_count": 2, "total_spend": 10})
    assert not holds({"field": "avg_spend", "exists": True}, activity={"order_count": 0})
    assert holds({"field": "avg_spend", "exists": False}, activity={})
    assert holds({"field": "decile", "exists": True}, score={"decile": 3})
    assert not holds({"field": "decile", "exists": True})
    assert holds({"field": "profile.vip", "exists": True}, {"vip": False})
    assert not holds({"field": "profile.vip", "exists": True}, {"other": 1})


def test_comparison_with_a_missing_value_is_false() -> None:
    assert not holds({"field": "tenure_days", "gte": 0})
    assert not holds({"field": "tenure_days", "lt": 1_000_000})
    assert not holds({"field": "score", "ne": 0.5})


def test_days_since_something_that_never_happened_is_infinite() -> None:
    assert holds({"field": "days_since_last_order", "gt": 10_000}, activity={"order_count": 0})
    assert not holds({"field": "days_since_last_open", "lt": 10_000})
    assert holds({"field": "days_since_last_click", "lt": 2}, activity={"last_click_at": "2026-03-09T10:00:00Z"})


def test_days_since_counts_whole_days_elapsed() -> None:
    view = member_view(
        {"customer_id": "c1", "signup_date": "2026-01-09"},
        {"last_order_at": "2026-03-09T09:31:00Z", "last_visit_at": "2026-03-09T09:30:00+00:00",
         "first_order_at": "2026-03-01", "last_open_at": "2026-03-10T17:00:00+08:00", "last_click_at": "garbage"},
        None,
        NOW,
    )  # fmt: skip

    assert view["days_since_last_order"] == 0.0  # 23 h 59 min
    assert view["days_since_last_visit"] == 1.0
    assert view["days_since_first_order"] == 9.0
    assert view["days_since_last_open"] == 0.0  # 09:00 UTC today
    assert view["days_since_last_click"] == float("inf")  # unreadable: as if it never happened
    assert view["tenure_days"] == 60.0


def test_custom_profile_attribute_compares_as_stored() -> None:
    assert holds({"field": "profile.tier", "eq": "gold"}, {"tier": "gold"})
    assert not holds({"field": "profile.tier", "eq": "gold"}, {"tier": "silver"})
    assert holds({"field": "profile.visits", "gte": 2}, {"visits": Decimal(3)})
    assert holds({"field": "profile.tier", "in": ["gold", "platinum"]}, {"tier": "platinum"})
    # Another type than the rule's value is false, not an error.
    assert not holds({"field": "profile.visits", "gte": 2}, {"visits": "many"})
    assert not holds({"field": "profile.tier", "in": ["gold"]}, {"tier": ["gold"]})


def test_consent_and_address_fields() -> None:
    assert holds({"field": "consent_sms", "eq": True}, {"consent_sms": True})
    assert not holds({"field": "consent_sms", "eq": True}, {"consent_sms": "true"})
    assert holds({"field": "has_email", "eq": True}, {"email": "a@example.com"})
    assert holds({"field": "has_phone", "eq": False}, {"phone": ""})


def test_score_comes_from_the_score_record_before_the_profile() -> None:
    assert holds({"field": "decile", "lte": 2}, {"decile": 9}, score={"decile": 1})
    assert holds({"field": "decile", "lte": 2}, {"decile": 2})
    assert holds({"field": "score", "gte": 0.5}, score={"score": Decimal("0.75")})


# ---------- legacy audience and the stored form ----------


def test_legacy_audience_selects_by_decile_score_and_country() -> None:
    legacy = definition({"max_decile": 3, "min_score": 0.5, "countries": ["CN", "HK"]})

    def selects(country: str, decile: int, score: float) -> bool:
        return legacy.audience.holds(member_view({"country": country}, None, {"decile": decile, "score": score}, NOW))

    assert selects("CN", 3, 0.5)
    assert not selects("CN", 4, 0.9)  # max_decile
    assert not selects("CN", 2, 0.4)  # min_score
    assert not selects("GB", 1, 0.9)  # countries


def test_legacy_audience_with_only_a_decile_still_needs_a_score() -> None:
    legacy = definition({"max_decile": 10})

    assert legacy.audience.holds(member_view({}, None, {"decile": 10}, NOW))
    assert not legacy.audience.holds(member_view({}, None, None, NOW))


def test_default_audience_is_every_scored_customer() -> None:
    plain = CampaignDefinition.model_validate(BASE)

    assert plain.audience.holds(member_view({}, None, {"decile": 7}, NOW))
    assert not plain.audience.holds(member_view({}, None, None, NOW))


def test_legacy_key_mixed_with_an_unknown_key_is_an_error() -> None:
    with pytest.raises(ValidationError, match="expected all, any, not or field"):
        definition({"max_decile": 3, "region": "north"})


def test_stored_form_round_trips_through_model_validate() -> None:
    original = definition(
        {"all": [
            {"field": "order_count", "gte": 3},
            {"any": [{"field": "country", "in": ["HK", "CN"]}, {"not": {"field": "profile.tier", "eq": "basic"}}]},
            {"field": "avg_spend", "exists": True},
        ]},
        offer={"by": "score", "tiers": [{"min": 0.8, "value": 20}], "otherwise": 5, "coupon_prefix": "SP"},
        variants=[{"name": "a", "weight": 1}, {"name": "b", "weight": 3, "sms": {"text": "B {coupon_code}"}}],
        schedule={"cron": "0 9 ? * MON *", "timezone": "Asia/Shanghai"},
        reentry={"days": 30},
        send_at_local="10:00",
        caps={"overall": {"max": 1, "days": 7}, "sms": {"max": 2, "days": 30}},
        quiet_hours={"start": "21:00", "end": "08:00"},
        holdout_percent=5,
    )  # fmt: skip

    stored = original.stored_form()
    again = CampaignDefinition.model_validate(stored)

    assert again == original
    assert again.stored_form() == stored
    assert stored["audience"]["all"][1]["any"][0] == {"field": "country", "in": ["CN", "HK"]}


def test_stored_form_of_a_legacy_audience_is_a_rule() -> None:
    stored = definition({"max_decile": 3}).stored_form()

    assert stored["audience"] == {"all": [{"field": "decile", "lte": 3.0}]}
    assert CampaignDefinition.model_validate(stored).stored_form() == stored
