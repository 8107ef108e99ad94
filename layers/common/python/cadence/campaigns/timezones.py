"""A customer's time zone: the profile's, else the main zone of its country, else of its phone prefix."""

import zoneinfo
from collections.abc import Mapping
from functools import cache
from typing import Any

# The zone most of a country's people live in (countries spanning zones get their most populous one).
COUNTRY_ZONES = {
    "CN": "Asia/Shanghai", "HK": "Asia/Hong_Kong", "MO": "Asia/Macau", "TW": "Asia/Taipei", "JP": "Asia/Tokyo",
    "KR": "Asia/Seoul", "SG": "Asia/Singapore", "MY": "Asia/Kuala_Lumpur", "TH": "Asia/Bangkok",
    "VN": "Asia/Ho_Chi_Minh", "ID": "Asia/Jakarta", "PH": "Asia/Manila", "IN": "Asia/Kolkata", "AE": "Asia/Dubai",
    "GB": "Europe/London", "IE": "Europe/Dublin", "DE": "Europe/Berlin", "FR": "Europe/Paris", "IT": "Europe/Rome",
    "ES": "Europe/Madrid", "NL": "Europe/Amsterdam", "RU": "Europe/Moscow", "US": "America/New_York",
    "CA": "America/Toronto", "MX": "America/Mexico_City", "BR": "America/Sao_Paulo", "AU": "Australia/Sydney",
    "NZ": "Pacific/Auckland",
}  # fmt: skip
# Calling codes (longest first when matching) to the same zones.
CALLING_CODE_ZONES = {
    "852": "Asia/Hong_Kong", "853": "Asia/Macau", "886": "Asia/Taipei", "971": "Asia/Dubai", "86": "Asia/Shanghai",
    "81": "Asia/Tokyo", "82": "Asia/Seoul", "65": "Asia/Singapore", "60": "Asia/Kuala_Lumpur", "66": "Asia/Bangkok",
    "84": "Asia/Ho_Chi_Minh", "62": "Asia/Jakarta", "63": "Asia/Manila", "91": "Asia/Kolkata", "44": "Europe/London",
    "49": "Europe/Berlin", "33": "Europe/Paris", "39": "Europe/Rome", "34": "Europe/Madrid", "31": "Europe/Amsterdam",
    "52": "America/Mexico_City", "55": "America/Sao_Paulo", "61": "Australia/Sydney", "64": "Pacific/Auckland",
    "7": "Europe/Moscow", "1": "America/New_York",
}  # fmt: skip
_CODES_LONGEST_FIRST = sorted(CALLING_CODE_ZONES, key=len, reverse=True)


@cache
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def customer_zone(profile: Mapping[str, Any], default: str) -> zoneinfo.ZoneInfo:
    """Where the customer's clock is: profile timezone, else country, else phone prefix, else `default`."""
    name = profile.get("timezone")
    if isinstance(name, str) and name:
        try:
            return zone(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    country = profile.get("country")
    if isinstance(country, str) and country in COUNTRY_ZONES:
        return zone(COUNTRY_ZONES[country])
    phone = profile.get("phone")
    if isinstance(phone, str) and phone.startswith("+"):
        for code in _CODES_LONGEST_FIRST:
            if phone[1:].startswith(code):
                return zone(CALLING_CODE_ZONES[code])
    return zone(default)
