"""Clean whole columns fast, with exactly the results of the cleaners in cadence.ingest.cleaning.

Three shortcuts, each exact by construction:

1. Distinct values: every cleaner works value by value, so a column is cleaned once per distinct value and
   the results are spread back: repeats (dates, countries, consent flags, the blank of every customer
   without a phone) cost one cleaning each, however many rows hold them. A column of Arrow strings (the CSV
   reader's, cadence.ingest.csv_blocks) has its distinct values found by Arrow, so only those become Python
   strings; one whose first values are all different (ids) is cleaned value by value, unhashed.
2. Common shapes in native code: a value already in its canonical, plain-ASCII shape (an id of printable
   ASCII, a lower- or upper-case ASCII email, a CN mobile or +CC number written as digits, an ISO time
   ending in Z, ...) is recognised and converted by pyarrow.compute (string predicates, or RE2 where a
   pattern is needed; C++), a whole column at a time.
   Only the values such a shape accepts are taken this way; every other value (invalid, padded, non-ASCII,
   written with separators) goes through the reference cleaner, which therefore decides every reason.
   The shapes are ASCII because there Python's `re` and RE2 agree on every class used here. A value a
   shape keeps as it is stays the Python string it was read as (no copy made back from Arrow).
3. Remembered answers: the reference cleaner's results for a few strings at a time (a chunk's distinct
   countries, zones, consent words) are kept from chunk to chunk, as each call costs milliseconds.

Without pyarrow (it is optional for the layer) only the first and third shortcuts apply; results are the same.
"""

import functools
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from cadence.ingest.cleaning import CLEANERS, Cleaned, Context
from cadence.ingest.schemas import Kind

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
if HAS_PYARROW:
    import pyarrow as pa
    import pyarrow.compute as pc

_EMAIL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL = rf"^{_EMAIL_ATOM}(?:\.{_EMAIL_ATOM})*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+[A-Za-z]{{2,63}}$"
_ISO_SECONDS = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_CN_MOBILE = r"^1[3-9][0-9]{9}$"
_NANP_NUMBER = r"^[2-9][0-9]{2}[2-9][0-9]{6}$"
# +CC numbers other than +86, whose national part has rules of its own (cleaning.clean_phone).
_E164_NOT_CN = r"^\+(?:[1-79][0-9]{7,14}|8[0-57-9][0-9]{6,13})$"
_PLAIN_NUMBER = r"^-?[0-9]{1,15}(?:\.[0-9]{1,15})?$"
_WHOLE_NUMBER = r"^[0-9]{1,15}$"

# A shape: (rows it accepts, their cleaned values as an object array) for an Arrow string array and the same
# values as the object array of Python strings they came from (what a value kept as it is keeps: no new string).
type Shape = Callable[["pa.Array", np.ndarray, Context], tuple[np.ndarray, np.ndarray]]


def clean_column(kind: Kind, series: pd.Series, context: Context, *, native: bool = HAS_PYARROW) -> Cleaned:
    """`CLEANERS[kind](series, context)`, computed faster (see the module docstring); `native` needs pyarrow.

    A column of Arrow strings (pandas' ArrowDtype, as the CSV reader gives) has its distinct values found by
    Arrow; only those become Python strings.
    """
    if native and isinstance(series.dtype, pd.ArrowDtype) and pa.types.is_string(series.dtype.pyarrow_dtype):
        return _clean_arrow(kind, series, context)
    codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
    if len(uniques) == len(series):  # no repeats and nothing missing (ids): nothing to spread back
        values = series.astype(object).reset_index(drop=True)
        return _clean_values(kind, values, context, native=native).reindexed(series.index)
    distinct = pd.Series(uniques.to_numpy(dtype=object), dtype=object)
    return _clean_values(kind, distinct, context, native=native).spread(codes, series.index)


def _clean_arrow(kind: Kind, series: pd.Series, context: Context) -> Cleaned:
    """`clean_column` of Arrow strings: dictionary-encoded (its dictionary holds each distinct value once, in
    the order of first appearance, as pd.factorize's uniques), cleaned, spread back."""
    values = pa.array(series.array)
    if _looks_distinct(values):  # ids, emails: hashing every value would find next to nothing to share
        cleaned = _clean_values(
            kind, pd.Series(values.to_numpy(zero_copy_only=False), dtype=object), context, native=True, arrow=values
        )
        return cleaned.reindexed(series.index)
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary
    values = pd.Series(distinct.to_numpy(zero_copy_only=False), dtype=object)
    result = _clean_values(kind, values, context, native=True, arrow=distinct)
    if len(distinct) == len(series):  # every value distinct, none missing: the dictionary is the column
        return result.reindexed(series.index)
    codes = np.asarray(pc.fill_null(encoded.indices, -1), dtype=np.int64)
    return result.spread(codes, series.index)


def _looks_distinct(values: "pa.Array") -> bool:
    """The column's first values are all different and present: cleaned value by value, not by distinct value.
    Only a question of speed: a value's cleaning is the same however often it comes (see _reference)."""
    head = values.slice(0, _DISTINCT_SAMPLE)
    return len(values) > _DISTINCT_SAMPLE and head.null_count == 0 and pc.count_distinct(head).as_py() == len(head)


_DISTINCT_SAMPLE = 1_024


def _clean_values(
    kind: Kind, series: pd.Series, context: Context, *, native: bool, arrow: "pa.Array | None" = None
) -> "_Result":
    """The cleaned values of a 0-based object Series (`arrow`: the same as Arrow strings, when at hand): native
    shapes first, the reference cleaner for the rest."""
    shape = _SHAPES.get(kind) if native else None
    values = series.to_numpy(dtype=object)
    if shape is None or not len(series):
        return _reference(kind, series, context)
    if arrow is None:
        arrow = pa.array(values, type=pa.string(), from_pandas=True)
    accepted, cleaned = shape(arrow, values, context)
    if accepted.all():
        return _Result(cleaned, np.zeros(len(series), dtype=bool), None)
    rest = ~accepted
    reference = _reference_distinct(kind, series[rest].reset_index(drop=True), context)
    out = cleaned.copy()
    out[rest] = reference.values
    invalid = np.zeros(len(series), dtype=bool)
    invalid[rest] = reference.invalid
    coerced = None
    if reference.coerced is not None:
        coerced = np.zeros(len(series), dtype=bool)
        coerced[rest] = reference.coerced
    return _Result(out, invalid, coerced)


def _reference_distinct(kind: Kind, series: pd.Series, context: Context) -> "_Result":
    """`_reference` of each distinct value once, spread back (the values shapes left may repeat: blanks)."""
    if len(series) <= _REMEMBER_AT_MOST:
        return _reference(kind, series, context)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if len(uniques) == len(series):
        return _reference(kind, series, context)
    return _reference(kind, pd.Series(uniques.to_numpy(dtype=object), dtype=object), context).taken(codes)


def _reference(kind: Kind, series: pd.Series, context: Context) -> "_Result":
    """`CLEANERS[kind]` of a 0-based object Series. A few strings at a time (a chunk's distinct countries, zones,
    consent words) are remembered across chunks: a reference cleaner costs milliseconds a call however few its
    values, and every chunk of a file brings the same ones. Exact: a cleaner is a function of the value and
    the context alone, and only `str` values are remembered (equal strings are the same text)."""
    values = series.tolist()
    if not values or len(values) > _REMEMBER_AT_MOST or not all(type(value) is str for value in values):
        return _Result.of(CLEANERS[kind](series, context))
    keys = [(kind, context, value) for value in values]
    known = {key: _REMEMBERED[key] for key in keys if key in _REMEMBERED}
    unknown = [row for row, key in enumerate(keys) if key not in known]
    if unknown:
        fresh = _Result.of(CLEANERS[kind](series.iloc[unknown].reset_index(drop=True), context))
        coerced = fresh.coerced
        learned = {
            keys[row]: (fresh.values[at], bool(fresh.invalid[at]), None if coerced is None else bool(coerced[at]))
            for at, row in enumerate(unknown)
        }
        if len(_REMEMBERED) + len(learned) > _REMEMBERED_LIMIT:
            _REMEMBERED.clear()
        _REMEMBERED.update(learned)
        known |= learned
    results = [known[key] for key in keys]
    out = np.empty(len(results), dtype=object)
    out[:] = [value for value, _, _ in results]
    invalid = np.array([was_invalid for _, was_invalid, _ in results], dtype=bool)
    coerced_flags = [was_coerced for _, _, was_coerced in results]
    coerced_out = None if None in coerced_flags else np.array(coerced_flags, dtype=bool)
    return _Result(out, invalid, coerced_out)


# The cleaned strings _reference remembers: (kind, context, value) -> (value, invalid, coerced or None).
_REMEMBERED: dict[tuple[Kind, Context, str], tuple[Any, bool, bool | None]] = {}
_REMEMBER_AT_MOST = 64  # values in one call
_REMEMBERED_LIMIT = 4_096  # entries in all, forgotten together when full


class _Result:
    """A Cleaned as plain arrays, before it is given the chunk's index."""

    __slots__ = ("coerced", "invalid", "values")

    def __init__(self, values: np.ndarray, invalid: np.ndarray, coerced: np.ndarray | None) -> None:
        self.values, self.invalid, self.coerced = values, invalid, coerced

    @classmethod
    def of(cls, cleaned: Cleaned) -> "_Result":
        coerced = None if cleaned.coerced is None else cleaned.coerced.to_numpy(dtype=bool)
        return cls(cleaned.values.to_numpy(dtype=object), cleaned.invalid.to_numpy(dtype=bool), coerced)

    def reindexed(self, index: pd.Index, present: np.ndarray | None = None) -> Cleaned:
        """As a Cleaned of `index`, with where the values are not None (`present`, when already known)."""
        coerced = None if self.coerced is None else pd.Series(self.coerced, index=index)
        values = pd.Series(self.values, index=index, dtype=object)
        held = pd.notna(self.values) if present is None else present
        return Cleaned(values, pd.Series(self.invalid, index=index), coerced, held)

    def taken(self, codes: np.ndarray) -> "_Result":
        """Each row takes the result of its distinct value; a missing row (code -1) is missing, not invalid."""
        missing = codes < 0
        values = np.append(self.values, np.array([None], dtype=object))[codes]  # code -1 takes the appended None
        invalid = np.append(self.invalid, False)[codes]
        coerced = None if self.coerced is None else np.append(self.coerced, False)[codes]
        return _Result(values, invalid & ~missing, None if coerced is None else coerced & ~missing)

    def spread(self, codes: np.ndarray, index: pd.Index) -> Cleaned:
        """`taken(codes)` as a Cleaned of `index`.

        Which rows hold a value comes with it, spread from the distinct values (a later look at every row's
        object costs more than the cleaning of a column of few distinct values)."""
        present = np.append(pd.notna(self.values), False)[codes]
        return self.taken(codes).reindexed(index, present)


# ---------- native shapes (pyarrow) ----------


def _matches(values: "pa.Array", pattern: str) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.match_substring_regex(values, pattern), False), dtype=bool)


def _objects(values: "pa.Array") -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)


def _kept(accepted: np.ndarray, values: np.ndarray, otherwise: np.ndarray | None = None) -> np.ndarray:
    """`values` where `accepted`, else `otherwise` (None when not given)."""
    out = np.full(len(values), None, dtype=object) if otherwise is None else otherwise.copy()
    out[accepted] = values[accepted]
    return out


def _as_is(pattern: str) -> Shape:
    """Values matching `pattern` are their own cleaned value."""

    def shape(values: "pa.Array", objects: np.ndarray, _: Context) -> tuple[np.ndarray, np.ndarray]:
        accepted = _matches(values, pattern)
        return accepted, _kept(accepted, objects)

    return shape


def _trimmed_ascii(max_chars: int, *, single_spaces: bool = False) -> Shape:
    """Printable ASCII of 1 to `max_chars` characters, not starting or ending with a space (`single_spaces`:
    nor holding two in a row) is its own cleaned value: `^[!-~](?:[ -~]*[!-~])?$`, tested by Arrow's string
    predicates, which cost a tenth of the regular expression."""

    def shape(values: "pa.Array", objects: np.ndarray, _: Context) -> tuple[np.ndarray, np.ndarray]:
        length = pc.binary_length(values)  # printable ASCII: a byte a character
        checks = [
            pc.ascii_is_printable(values),
            pc.greater(length, 0),
            pc.less_equal(length, max_chars),
            pc.invert(pc.starts_with(values, " ")),
            pc.invert(pc.ends_with(values, " ")),
        ]
        if single_spaces:
            checks.append(pc.invert(pc.match_substring(values, "  ")))
        accepted = np.asarray(pc.fill_null(functools.reduce(pc.and_, checks), False), dtype=bool)
        return accepted, _kept(accepted, objects)

    return shape


def _email(values: "pa.Array", objects: np.ndarray, _: Context) -> tuple[np.ndarray, np.ndarray]:
    """An ASCII address: lower-casing ASCII is the same in Python and Arrow (one already lower case is kept)."""
    short = np.asarray(pc.fill_null(pc.less_equal(pc.binary_length(values), 254), False), dtype=bool)
    accepted = _matches(values, _EMAIL) & short
    lowered = pc.ascii_lower(values)
    unchanged = np.asarray(pc.fill_null(pc.equal(lowered, values), False), dtype=bool)
    if (accepted <= unchanged).all():
        return accepted, _kept(accepted, objects)
    return accepted, _kept(accepted, _objects(lowered))


def _phone(values: "pa.Array", objects: np.ndarray, context: Context) -> tuple[np.ndarray, np.ndarray]:
    """+CC numbers (not +86) as written; national numbers of CN mobiles and NANP in the default region."""
    accepted = _matches(values, _E164_NOT_CN)
    cleaned = _kept(accepted, objects)
    national = {"CN": (_CN_MOBILE, "+86"), "US": (_NANP_NUMBER, "+1"), "CA": (_NANP_NUMBER, "+1")}
    if context.phone_region in national:
        pattern, prefix = national[context.phone_region]
        local = _matches(values, pattern)
        if local.any():  # only the national numbers become new strings
            cleaned[local] = _objects(pc.binary_join_element_wise(prefix, pc.filter(values, pa.array(local)), ""))
        accepted |= local
    return accepted, cleaned


def _moment(pattern: str, pattern_format: str) -> Shape:
    """Canonical times that parse back to themselves within 1900-2100 (an impossible day like 02-30 does not)."""

    def shape(values: "pa.Array", objects: np.ndarray, _: Context) -> tuple[np.ndarray, np.ndarray]:
        shaped = pc.if_else(pc.match_substring_regex(values, pattern), values, None)
        parsed = pc.strptime(shaped, format=pattern_format, unit="s", error_is_null=True)
        year = pc.year(parsed)
        in_range = pc.and_(pc.greater_equal(year, 1900), pc.less_equal(year, 2100))
        same = pc.equal(pc.strftime(parsed, format=pattern_format), shaped)
        accepted = np.asarray(pc.fill_null(pc.and_(same, in_range), False), dtype=bool)
        return accepted, _kept(accepted, objects)

    return shape


def _decimal(values: "pa.Array", objects: np.ndarray, _: Context) -> tuple[np.ndarray, np.ndarray]:
    """Plain decimals, parsed and rounded as clean_decimal does (pandas' parser, 4 places)."""
    accepted = _matches(values, _PLAIN_NUMBER)
    numbers = pd.to_numeric(pd.Series(objects[accepted], dtype=object)).astype(float).round(4)
    cleaned = np.full(len(values), None, dtype=object)
    cleaned[accepted] = np.asarray(numbers.tolist(), dtype=object)
    return accepted, cleaned


def _int(values: "pa.Array", _: np.ndarray, __: Context) -> tuple[np.ndarray, np.ndarray]:
    """Whole numbers of up to 15 digits (exact as floats, so clean_int gives the same int)."""
    accepted = _matches(values, _WHOLE_NUMBER)
    numbers = pc.cast(pc.if_else(pa.array(accepted), values, None), pa.int64())
    cleaned = _kept(accepted, _objects(numbers))
    return accepted, cleaned


def contains(series: pd.Series, patterns: Mapping[str, str], *, native: bool = HAS_PYARROW) -> dict[str, pd.Series]:
    """By name, whether each value holds a match of the pattern (a class of literal characters); None is False.

    The column goes to Arrow once for all the patterns (`native`, which needs pyarrow).
    """
    if not native:
        return {name: series.str.contains(pattern, regex=True).isin([True]) for name, pattern in patterns.items()}
    values = pa.array(series.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    return {name: pd.Series(_matches(values, pattern), index=series.index) for name, pattern in patterns.items()}


_SHAPES: dict[Kind, Shape] = {
    # Printable ASCII, not starting or ending with a space: strip and NFKC leave it as it is (and for text,
    # words split by single spaces: the whitespace rule leaves it as it is).
    Kind.ID: _trimmed_ascii(128),
    Kind.TEXT: _trimmed_ascii(256, single_spaces=True),
    Kind.JSON: _trimmed_ascii(4096),
    Kind.EMAIL: _email,
    Kind.PHONE: _phone,
    Kind.DATETIME: _moment(_ISO_SECONDS, "%Y-%m-%dT%H:%M:%SZ"),
    Kind.DATE: _moment(_ISO_DATE, "%Y-%m-%d"),
    Kind.DECIMAL: _decimal,
    Kind.INT: _int,
}
