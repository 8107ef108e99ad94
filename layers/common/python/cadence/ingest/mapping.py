"""Source column names onto canonical ones, driven by column_mapping.json plus an optional override.

Names compare after Unicode NFKC, case-folding and treating runs of spaces, '_', '-' and '.' alike,
so "Email Address", "email_address" and "E-Mail  Address" are the same header.
"""

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cadence.errors import InvalidInputError
from cadence.ingest.schemas import FEEDS, Feed

_SEPARATORS = re.compile(r"[\s_\-.]+")


def normalise_header(name: str) -> str:
    """The comparable form of a column name."""
    folded = unicodedata.normalize("NFKC", name).replace("\ufeff", "").strip().casefold()
    return _SEPARATORS.sub("_", folded).strip("_")


@dataclass(frozen=True, slots=True)
class HeaderMap:
    """How one file's columns map: source name -> canonical name, plus the columns we ignore."""

    columns: dict[str, str]
    ignored: tuple[str, ...]


class ColumnMapping:
    """Aliases per feed; canonical names always map to themselves."""

    def __init__(self, aliases: Mapping[str, Mapping[str, str]]) -> None:
        self._aliases = {feed: dict(names) for feed, names in aliases.items()}

    @classmethod
    def from_config(cls, *configs: Mapping[str, Any]) -> "ColumnMapping":
        """Merge configs shaped like column_mapping.json; a later config wins where two claim one alias.

        Raises:
            InvalidInputError: a config names an unknown feed or canonical column, or is not shaped right.
        """
        aliases: dict[str, dict[str, str]] = {feed.name: {} for feed in FEEDS}
        known = {feed.name: set(feed.names) for feed in FEEDS}
        for config in configs:
            for feed_name, columns in config.items():
                if feed_name.startswith("_"):
                    continue
                if feed_name not in known or not isinstance(columns, Mapping):
                    raise InvalidInputError(f"column mapping: unknown feed {feed_name!r}")
                for canonical, names in columns.items():
                    if canonical not in known[feed_name] or not isinstance(names, list):
                        raise InvalidInputError(f"column mapping: {feed_name}.{canonical} is not a canonical column")
                    for name in names:
                        aliases[feed_name][normalise_header(str(name))] = canonical
        return cls(aliases)

    def canonical(self, feed: Feed, name: str) -> str | None:
        """The canonical column a source name maps to, or None when the feed does not use it."""
        normalised = normalise_header(name)
        if normalised in feed.names:
            return normalised
        return self._aliases.get(feed.name, {}).get(normalised)

    def resolve(self, feed: Feed, header: Sequence[str]) -> HeaderMap:
        """Map a file's header, refusing one where two columns claim the same canonical name.

        Raises:
            InvalidInputError: a canonical column appears twice.
        """
        columns: dict[str, str] = {}
        ignored: list[str] = []
        seen: dict[str, str] = {}
        for name in header:
            canonical = self.canonical(feed, name)
            if canonical is None:
                ignored.append(name)
                continue
            if canonical in seen:
                raise InvalidInputError(f"duplicate_column:{canonical}")
            seen[canonical] = name
            columns[name] = canonical
        return HeaderMap(columns=columns, ignored=tuple(ignored))


def default_config() -> dict[str, Any]:
    """The mapping shipped in the package."""
    text = resources.files("cadence.ingest").joinpath("column_mapping.json").read_text(encoding="utf-8")
    config: dict[str, Any] = json.loads(text)
    return config


def load_mapping(overrides: Iterable[Mapping[str, Any]] = ()) -> ColumnMapping:
    """The shipped mapping extended by any overrides (e.g. the JSON object named by INGEST_MAPPING_KEY)."""
    return ColumnMapping.from_config(default_config(), *overrides)
