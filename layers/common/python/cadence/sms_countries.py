"""Which phone numbers a stack may text: SMS only to the country calling codes it allows.

SMS pumping (sends to premium-rate numbers abroad, paid per message) is a known abuse of marketing SMS; a stack that
serves one market texts only that market's numbers.
"""

from collections.abc import Collection


def calling_code_allowed(phone_e164: str, allowed_codes: Collection[str]) -> bool:
    """Whether an E.164 number (+<country code><number>) starts with one of the allowed country calling codes.

    Country calling codes are prefix-free (no code starts another), so a prefix match names exactly one country code.
    """
    if not phone_e164.startswith("+"):
        return False
    digits = phone_e164[1:]
    return any(code and digits.startswith(code) for code in allowed_codes)


def parse_codes(value: object) -> frozenset[str]:
    """``"86, 852"`` (the SMS_ALLOWED_COUNTRY_CODES variable) as {"86", "852"}; empty: no country is allowed."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, Collection):
        items = [str(item) for item in value]
    else:
        raise ValueError("SMS country codes must be a comma-separated string")
    codes = frozenset(item.strip().lstrip("+") for item in items if item.strip())
    if not all(code.isdigit() and 1 <= len(code) <= 3 and code[0] != "0" for code in codes):
        raise ValueError(f"SMS country codes must be 1-3 digit calling codes, not {sorted(codes)}")
    return codes
