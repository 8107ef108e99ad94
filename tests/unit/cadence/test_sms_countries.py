import pytest

from cadence.sms_countries import calling_code_allowed, parse_codes


@pytest.mark.parametrize(
    ("phone", "allowed"),
    [("+8613800138000", True), ("+85291234567", True), ("+447700900123", False), ("+12125550100", False)],
)
def test_a_number_is_allowed_only_under_an_allowed_country_code(phone: str, allowed: bool) -> None:
    assert calling_code_allowed(phone, {"86", "852"}) is allowed


def test_a_number_without_its_plus_or_with_no_codes_allowed_is_refused() -> None:
    assert not calling_code_allowed("8613800138000", {"86"})
    assert not calling_code_allowed("+8613800138000", frozenset())


def test_the_setting_reads_a_comma_separated_list_and_refuses_anything_but_calling_codes() -> None:
    assert parse_codes(" 86, +852 ,") == {"86", "852"}
    assert parse_codes("") == frozenset()
    for bad in ("CN", "0044", "1234", "86;852"):
        with pytest.raises(ValueError, match="calling codes"):
            parse_codes(bad)
