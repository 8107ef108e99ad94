"""Vectorised cleaners, one per column kind: text in, cleaned values and an `invalid` mask out.

Every cleaner takes an object Series of text or None and returns `Cleaned(values, invalid)` where
`values` holds the cleaned value or None and `invalid` marks rows that had a value we could not accept.
A row without a value is missing, not invalid.

Phone numbers (no phone library: phonenumbers alone would add ~50 MB): separators and full-width digits
are removed, a leading 00 becomes +. A number with +CC is kept when it has 8-15 digits (E.164), and
+86 numbers must also be a Chinese mobile (1[3-9] + 9 digits) or landline. A number without +CC takes
the default region's calling code after its trunk prefix (0, or 1 in NANP) is dropped; CN and NANP
national numbers are checked against their numbering plans, other regions by length only.
"""

import hashlib
import json
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from cadence.event_types import EVENT_TYPE_PATTERN, normalise_event_type
from cadence.ingest.schemas import Kind


@dataclass(frozen=True, slots=True)
class Cleaned:
    values: pd.Series
    invalid: pd.Series
    # Rows whose unreadable value was replaced by a safe one rather than cleared (consent: no).
    coerced: pd.Series | None = None
    # `values.notna()` as an array, when the cleaner knew it without a look at every value (None: not known).
    present: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """Settings the cleaners need: the phone region and the zone of times written without an offset."""

    phone_region: str = "CN"
    default_timezone: str = "UTC"


def _text(series: pd.Series) -> pd.Series:
    """Stripped text with Unicode compatibility forms folded (full-width digits and signs); blanks become None."""
    values = series.astype(object)
    present = values.notna()
    if not present.any():
        return pd.Series(None, index=series.index, dtype=object)
    text = values.where(present, "").astype(str).str.normalize("NFKC").str.strip()
    return text.where(text != "", None).astype(object)


def _matches(series: pd.Series, pattern: str) -> pd.Series:
    return series.str.fullmatch(pattern).isin([True])


def _result(text: pd.Series, values: pd.Series, valid: pd.Series) -> Cleaned:
    """Keep `values` where `valid`; a row whose `text` had a value but is not valid is invalid."""
    present = text.notna()
    keep = present & valid & values.notna()
    return Cleaned(values.where(keep, None).astype(object), present & ~keep)


def _objects(values: list[object], index: pd.Index) -> pd.Series:
    """An object Series exactly as given (Series.map would turn ints and None into floats and NaN)."""
    return pd.Series(values, index=index, dtype=object)


# ---------- identifiers and text ----------


def clean_id(series: pd.Series, _: Context) -> Cleaned:
    """Ids stay exactly as written apart from surrounding spaces: never folded, never numeric."""
    values = series.astype(object)
    present = values.notna()
    text = values.where(present, "").astype(str).str.strip()
    text = text.where(text != "", None).astype(object)
    return _result(text, text, _matches(text, r"[^\x00-\x1f\x7f]{1,128}"))


def clean_text(series: pd.Series, _: Context) -> Cleaned:
    text = _text(series)
    text = text.str.replace(r"\s+", " ", regex=True).astype(object)
    return _result(text, text, text.str.len().le(256).isin([True]))


def clean_json(series: pd.Series, _: Context) -> Cleaned:
    text = _text(series)
    return _result(text, text, text.str.len().le(4096).isin([True]))


# ---------- contact points ----------

_EMAIL = (
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)


def clean_email(series: pd.Series, _: Context) -> Cleaned:
    """Trimmed and case-folded; ASCII local@domain.tld of at most 254 characters."""
    text = _text(series).str.lower().astype(object)
    return _result(text, text, _matches(text, _EMAIL) & text.str.len().le(254).isin([True]))


CALLING_CODES = {
    "CN": "86", "US": "1", "CA": "1", "GB": "44", "DE": "49", "FR": "33", "IT": "39", "ES": "34", "NL": "31",
    "JP": "81", "KR": "82", "SG": "65", "HK": "852", "MO": "853", "TW": "886", "AU": "61", "NZ": "64", "IN": "91",
    "MY": "60", "TH": "66", "VN": "84", "ID": "62", "PH": "63", "BR": "55", "MX": "52", "RU": "7", "AE": "971",
}  # fmt: skip
_CN_NATIONAL = r"1[3-9]\d{9}|(?:10|2\d)\d{8}|[3-9]\d{9,10}"
_NANP_NATIONAL = r"[2-9]\d{2}[2-9]\d{6}"
_E164 = r"\+[1-9]\d{7,14}"


def clean_phone(series: pd.Series, context: Context) -> Cleaned:
    """E.164 (+8613800138000); see the module docstring for the rules."""
    text = _text(series)
    compact = text.str.replace(r"[\s\-().·/]", "", regex=True).str.replace(r"^00", "+", regex=True).astype(object)
    international = compact.str.startswith("+").isin([True])
    digits = compact.str.removeprefix("+").astype(object)
    well_formed = _matches(digits, r"\d+")

    region = context.phone_region
    code = CALLING_CODES.get(region)
    national = digits.where(~international & well_formed, None).astype(object)
    if region == "CN":
        # 86 written without + in front of a mobile number, or a trunk 0 in front of a landline.
        national = national.str.replace(r"^86(?=1[3-9]\d{9}$)", "", regex=True).str.replace(r"^0", "", regex=True)
        national_ok = _matches(national, _CN_NATIONAL)
    elif code == "1":
        national = national.str.replace(r"^1(?=\d{10}$)", "", regex=True)
        national_ok = _matches(national, _NANP_NATIONAL)
    else:
        national = national.str.replace(r"^0", "", regex=True)
        national_ok = pd.Series(code is not None, index=text.index) & _matches(national, r"\d{6,13}")
    national_e164 = ("+" + (code or "") + national.astype(object)).where(national_ok, None)

    intl = ("+" + digits.str.replace(r"^860", "86", regex=True)).where(international & well_formed, None)
    intl_ok = _matches(intl, _E164)
    chinese = intl.str.startswith("+86").isin([True])
    intl_ok &= ~chinese | _matches(intl.str.removeprefix("+86"), _CN_NATIONAL)

    values = intl.where(international, national_e164).astype(object)
    valid = (international & intl_ok) | (~international & national_ok)
    return _result(text, values, valid & _matches(values, _E164))


# ---------- codes ----------

_ISO_COUNTRY_TEXT = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
    BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO
    FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM
    JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE
    RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT
    TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"""
ISO_COUNTRIES = frozenset(_ISO_COUNTRY_TEXT.split())
_COUNTRY_ALIASES = {"UK": "GB", "中国": "CN", "CHINA": "CN", "PRC": "CN"}


def clean_country(series: pd.Series, _: Context) -> Cleaned:
    """ISO 3166-1 alpha-2, upper-cased (UK -> GB)."""
    text = _text(series).str.upper().astype(object)
    codes = text.replace(_COUNTRY_ALIASES).astype(object)
    return _result(text, codes, codes.isin(ISO_COUNTRIES))


@cache
def _zones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def clean_timezone(series: pd.Series, _: Context) -> Cleaned:
    """An IANA zone name, matched case-insensitively and returned in its canonical spelling."""
    text = _text(series)
    zones = _zones()
    values = _objects([zones.get(v.lower()) if isinstance(v, str) else None for v in text], text.index)
    return _result(text, values, values.notna())


def _language_tag(match: re.Match[str]) -> str:
    primary, *rest = re.split(r"[-_]", match.group(0))
    subtags = [primary.lower()]
    for subtag in rest:
        if len(subtag) == 2:
            subtags.append(subtag.upper())
        elif len(subtag) == 4:
            subtags.append(subtag.title())
        else:
            subtags.append(subtag.lower())
    return "-".join(subtags)


def clean_language(series: pd.Series, _: Context) -> Cleaned:
    """A BCP 47 tag in canonical case (zh_cn -> zh-CN)."""
    text = _text(series)
    valid = _matches(text, r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")
    tags = text.where(valid, None).str.replace(r"^.*$", _language_tag, regex=True).astype(object)
    return _result(text, tags, valid)


_CURRENCY_ALIASES = {"RMB": "CNY", "￥": "CNY", "¥": "CNY", "$": "USD", "€": "EUR", "£": "GBP"}


def clean_currency(series: pd.Series, _: Context) -> Cleaned:
    text = _text(series)
    codes = text.str.upper().astype(object).replace(_CURRENCY_ALIASES).astype(object)
    return _result(text, codes, _matches(codes, r"[A-Z]{3}"))


def clean_event_type(series: pd.Series, _: Context) -> Cleaned:
    """snake_case with aliases resolved by cadence.event_types, the definition model_build trains with."""
    text = _text(series)
    # Few distinct types in many rows: normalise each distinct value once.
    names = {value: normalise_event_type(value) for value in text.dropna().unique()}
    types = text.map(names).astype(object)
    return _result(text, types, _matches(types, EVENT_TYPE_PATTERN.pattern))


def clean_coupon(series: pd.Series, _: Context) -> Cleaned:
    """Upper-cased with spaces and hyphens dropped (`wb-3k7q 9xz2` -> `WB3K7Q9XZ2`): codes are sent that way."""
    text = _text(series)
    codes = text.str.upper().str.replace(r"[\s\-]", "", regex=True).astype(object)
    return _result(text, codes, _matches(codes, r"[A-Z0-9]{1,64}"))


CHANNELS = ("EMAIL", "SMS")


def clean_channel(series: pd.Series, _: Context) -> Cleaned:
    """A Pinpoint ChannelType cadence can message (EMAIL, SMS), upper-cased; push, voice and custom are invalid."""
    text = _text(series).str.upper().astype(object)
    return _result(text, text, text.isin(CHANNELS))


# ---------- values ----------

_TRUE = {"true", "t", "yes", "y", "1", "on", "是", "同意"}
_FALSE = {"false", "f", "no", "n", "0", "off", "否", "不同意"}


def clean_bool(series: pd.Series, _: Context) -> Cleaned:
    text = _text(series)
    lowered = text.str.lower()
    values = _objects([True if v in _TRUE else False if v in _FALSE else None for v in lowered], text.index)
    return _result(text, values, values.notna())


def clean_consent(series: pd.Series, context: Context) -> Cleaned:
    """A yes only when the value clearly says yes; any other value (unsubscribed, opt-out, N/A) is no.

    An empty cell says nothing and leaves the profile's consent as it is.
    """
    read = clean_bool(series, context)
    values = read.values.where(~read.invalid, False).astype(object)
    return Cleaned(values, pd.Series(False, index=series.index), coerced=read.invalid)


def _numbers(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Floats from text such as '1,234.50', '¥ 99', '-3'; comma groups thousands, dot is the decimal point."""
    text = _text(series)
    compact = text.str.replace(r"[\s_'¥￥$€£]|^(?:CNY|RMB|USD|EUR)", "", regex=True).astype(object)
    grouped = _matches(compact, r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
    plain = _matches(compact, r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
    numbers = pd.to_numeric(compact.where(grouped | plain, None).str.replace(",", "", regex=False), errors="coerce")
    numbers = numbers.astype(float)
    finite = np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
    return text, pd.Series(numbers.where(finite), index=series.index)


def clean_decimal(series: pd.Series, _: Context) -> Cleaned:
    text, numbers = _numbers(series)
    values = _objects([None if pd.isna(v) else float(v) for v in numbers.round(4)], text.index)
    return _result(text, values, values.notna())


def clean_int(series: pd.Series, _: Context) -> Cleaned:
    text, numbers = _numbers(series)
    whole = numbers.notna() & (numbers % 1 == 0) & (numbers >= 0)
    values = _objects([int(v) if ok else None for v, ok in zip(numbers, whole, strict=True)], text.index)
    return _result(text, values, whole)


# ---------- dates and times ----------

_YMD = r"^(\d{4})(?:[-/.]|\s*年\s*)(\d{1,2})(?:[-/.]|\s*月\s*)(\d{1,2})(?:\s*日)?"
_COMPACT = r"^(\d{4})(\d{2})(\d{2})(?=$|[T\s])"
_OFFSET = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"


def _iso_date_prefix(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The leading year-month-day as 'YYYY-MM-DD' (from 2024-3-1, 2024/03/01, 2024.3.1, 2024年3月1日, 20240301)."""
    parts = text.str.extract(_YMD)
    compact = text.str.extract(_COMPACT)
    year = parts[0].fillna(compact[0])
    month = parts[1].fillna(compact[1]).str.zfill(2)
    day = parts[2].fillna(compact[2]).str.zfill(2)
    date = (year + "-" + month + "-" + day).astype(object)
    with_separators = parts[0].notna()
    rest = text.str.replace(_YMD, "", regex=True).where(with_separators, text.str.replace(_COMPACT, "", regex=True))
    return date.where(year.notna(), None).astype(object), rest


def clean_date(series: pd.Series, _: Context) -> Cleaned:
    """A calendar date as YYYY-MM-DD; any time part is ignored, so the date is the one written."""
    text = _text(series)
    date, _rest = _iso_date_prefix(text)
    parsed = pd.to_datetime(date, format="%Y-%m-%d", errors="coerce")
    valid = parsed.notna() & parsed.dt.year.between(1900, 2100).isin([True])
    return _result(text, parsed.dt.strftime("%Y-%m-%d").astype(object).where(valid, None), valid)


def clean_datetime(series: pd.Series, context: Context) -> Cleaned:
    """ISO-8601 UTC ('2024-03-01T02:00:00Z'); times without an offset are read in the default time zone.

    Accepts ISO 8601, Y/M/D and Y.M.D with an optional time, 年月日, YYYYMMDD and epoch seconds or
    milliseconds. Day-first forms (01/03/2024) are ambiguous and rejected.
    """
    text = _text(series)
    epoch = _matches(text, r"\d{10}(?:\.\d+)?|\d{13}")
    date, rest = _iso_date_prefix(text.where(~epoch, None))
    rest = rest.str.replace(r"^[T\s]+", " ", regex=True).str.replace(r"(?<=\d),(?=\d+\b)", ".", regex=True)
    rest = rest.str.replace(r"\s*(?:UTC|GMT)$", "Z", regex=True).str.replace(r"\s+(?=Z$|[+-]\d{2})", "", regex=True)
    normalised = (date + rest.fillna("")).where(date.notna(), None).astype(object)
    aware = text.str.contains(_OFFSET, regex=True).isin([True]) & normalised.notna()

    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    if aware.any():
        result[aware] = pd.to_datetime(normalised[aware], format="ISO8601", utc=True, errors="coerce")
    naive = normalised.notna() & ~aware
    if naive.any():
        local = pd.to_datetime(normalised[naive], format="ISO8601", errors="coerce")
        # ambiguous autumn hours read as the first (daylight) occurrence; skipped spring hours move forward.
        local = local.dt.tz_localize(
            context.default_timezone, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward"
        )
        result[naive] = local.dt.tz_convert("UTC")
    if epoch.any():
        numbers = pd.to_numeric(text[epoch], errors="coerce")
        milliseconds = text[epoch].str.len().eq(13)
        seconds = numbers.where(~milliseconds, numbers / 1000)
        result[epoch] = pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
    valid = result.notna() & result.dt.year.between(1900, 2100).isin([True])
    iso = result.dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype(object).where(valid, None)
    return _result(text, iso, valid)


CLEANERS: dict[Kind, Callable[[pd.Series, Context], Cleaned]] = {
    Kind.ID: clean_id,
    Kind.TEXT: clean_text,
    Kind.EMAIL: clean_email,
    Kind.PHONE: clean_phone,
    Kind.COUNTRY: clean_country,
    Kind.TIMEZONE: clean_timezone,
    Kind.LANGUAGE: clean_language,
    Kind.DATE: clean_date,
    Kind.DATETIME: clean_datetime,
    Kind.BOOL: clean_bool,
    Kind.CONSENT: clean_consent,
    Kind.DECIMAL: clean_decimal,
    Kind.INT: clean_int,
    Kind.CURRENCY: clean_currency,
    Kind.EVENT_TYPE: clean_event_type,
    Kind.JSON: clean_json,
    Kind.CHANNEL: clean_channel,
    Kind.COUPON: clean_coupon,
}


def stable_hash(*parts: str | None) -> str:
    """A digest that is the same in every process and pandas version (unlike pandas' own hashing)."""
    joined = json.dumps([part or "" for part in parts], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]
