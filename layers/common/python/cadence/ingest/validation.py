"""Apply a feed's schema to a chunk: cleaned accepted rows, rejected rows with reasons, counts of both."""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cadence import collector
from cadence.ingest.cleaning import Context
from cadence.ingest.columns import clean_column, contains
from cadence.ingest.readers import RawChunk
from cadence.ingest.schemas import Feed

LINE = "line"
REASON = "reason"
RAW = "raw"


@dataclass(slots=True)
class Validated:
    """`accepted`: cleaned canonical columns + line. `rejected`: raw columns + line, reason (all reasons, ';')."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    values_cleared: Counter[str] = field(default_factory=Counter)
    # Unreadable values replaced by a safe one, e.g. "unreadable_as_no:consent_email".
    values_coerced: Counter[str] = field(default_factory=Counter)
    # By column, which accepted rows hold a value (`accepted[name].notna()`), known from cleaning.
    present: dict[str, np.ndarray] = field(default_factory=dict)


def rejected_columns(feed: Feed) -> list[str]:
    return [LINE, REASON, *feed.names, RAW]


@collector.paused()
def validate(chunk: RawChunk, feed: Feed, context: Context) -> Validated:
    """Clean every column; a row is rejected for its first failing rule, counted once under that reason.

    Rules in order: a line break in a single-line column, undecodable bytes, then each column in schema
    order (required: missing or invalid), then `any_of` (customers need a valid email or phone). Invalid
    optional values are cleared and counted; unreadable consent is read as no and counted.
    """
    raw = chunk.frame.reset_index(drop=True)
    reasons = pd.Series("", index=raw.index, dtype=object)

    def mark(mask: pd.Series, code: str) -> None:
        reasons.loc[mask] = reasons.loc[mask] + code + ";"

    if not chunk.plain:  # the reader saw no line break and no U+FFFD in a plain chunk
        garbled = pd.Series(False, index=raw.index)
        for column in feed.columns:
            found = contains(raw[column.name], {"line_break": "[\r\n]", "garbled": "\ufffd"})
            if not column.multiline:
                mark(found["line_break"], f"line_break:{column.name}")
            garbled |= found["garbled"]
        mark(garbled, "invalid_encoding")

    clean: dict[str, pd.Series] = {}
    present: dict[str, np.ndarray] = {}
    cleared_masks: dict[str, pd.Series] = {}
    coerced_masks: dict[str, pd.Series] = {}
    for column in feed.columns:
        result = clean_column(column.kind, raw[column.name], context)
        clean[column.name] = result.values
        present[column.name] = result.values.notna().to_numpy() if result.present is None else result.present
        if result.coerced is not None:
            coerced_masks[column.name] = result.coerced
        if column.required:
            mark(pd.Series(~present[column.name], index=raw.index) & ~result.invalid, f"missing:{column.name}")
            mark(result.invalid, f"invalid:{column.name}")
        elif result.invalid.any():
            cleared_masks[column.name] = result.invalid
    if feed.any_of:
        # No usable contact: name the invalid value when there was one, else say both are missing.
        no_contact = pd.Series(~np.logical_or.reduce([present[name] for name in feed.any_of]), index=raw.index)
        explained = pd.Series(False, index=raw.index)
        for name in feed.any_of:
            if name in cleared_masks:
                mark(no_contact & cleared_masks[name], f"invalid:{name}")
                explained |= cleared_masks[name]
        mark(no_contact & ~explained, "missing:" + "|".join(feed.any_of))

    bad = reasons != ""
    kept = ~bad.to_numpy(dtype=bool)
    lines = np.asarray(chunk.lines, dtype=np.int64)
    # One 2-D block, rows kept in one step (a frame of 13 Series, then filtered, costs twice as much).
    # Stacked as pandas lays a block out (a column per row), so each column stays contiguous.
    table = np.stack([clean[name].to_numpy(dtype=object)[kept] for name in feed.names])
    accepted = pd.DataFrame(table.T, columns=list(feed.names), dtype=object, copy=False)
    accepted.insert(0, LINE, lines[kept])
    cleared = Counter({f"invalid:{name}": int((mask & ~bad).sum()) for name, mask in cleared_masks.items()})
    coerced = Counter({f"unreadable_as_no:{name}": int((mask & ~bad).sum()) for name, mask in coerced_masks.items()})

    rejected = raw[bad].astype(object)  # values as read: Arrow strings (the CSV reader's) become Python ones
    rejected.insert(0, LINE, lines[~kept])
    rejected.insert(1, REASON, reasons[bad].str.rstrip(";"))
    rejected[RAW] = None
    malformed = pd.DataFrame(
        [{LINE: m.line, REASON: m.reason, RAW: m.raw} for m in chunk.malformed], columns=rejected_columns(feed)
    )
    rejected = (
        pd.concat([rejected.astype(object), malformed.astype(object)], ignore_index=True)
        if len(malformed)
        else rejected
    )
    rejected = rejected[rejected_columns(feed)].sort_values(LINE, kind="stable").reset_index(drop=True)
    by_reason = Counter(rejected[REASON].str.split(";").str[0].tolist())
    accepted_present = {name: mask[kept] for name, mask in present.items()}
    return Validated(accepted.reset_index(drop=True), rejected, by_reason, +cleared, +coerced, accepted_present)
