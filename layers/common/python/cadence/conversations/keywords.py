"""SMS keywords in English and Chinese: STOP and its synonyms withdraw SMS consent, START gives it back, HELP asks
for the stack's help text. Anything else is a reply for a person (or the intent model) to read.

Matching is case- and width-insensitive (NFKC, then casefold: full-width "STOP" as a Chinese keyboard types it,
and "Stop", are STOP) and ignores punctuation around the words. A reply that is only a keyword is that keyword. A
longer reply counts only when its first word is an unmistakable opt-out ("STOP please", "退订 谢谢"): carriers and
regulators expect STOP to work however it is dressed, while "cancel my order" is a question for a person, not an
opt-out.
"""

import string
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Keyword(StrEnum):
    STOP = "STOP"
    START = "START"
    HELP = "HELP"


_KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(("stop", "unsubscribe", "stopall", "cancel", "end", "quit", "退订", "td"), Keyword.STOP),
    **dict.fromkeys(("start", "unstop", "subscribe", "订阅"), Keyword.START),
    **dict.fromkeys(("help", "info", "帮助"), Keyword.HELP),
}
# First words that opt out whatever follows them.
_OPT_OUT_LEADS = frozenset({"stop", "stopall", "unsubscribe", "退订"})
# ASCII and CJK punctuation around a word ("STOP!", "退订。"); NFKC has already folded the full-width forms of ASCII
# punctuation (the full-width comma, question mark, ...) to ASCII; curly quotes are written as escapes for ruff.
_PUNCTUATION = string.punctuation + "。、「」『』【】《》…·\u2018\u2019\u201c\u201d"


def normalised(text: str) -> str:
    """The reply as matching sees it: NFKC, casefolded, trimmed."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


@dataclass(frozen=True, slots=True)
class KeywordMatch:
    """The keyword a reply is, and the word that said it ("td", "退订", "stop"), as campaign counters count them."""

    keyword: Keyword
    word: str


def match(text: str) -> KeywordMatch | None:
    """The keyword a reply is (the whole reply, or an opt-out leading it); None for any other reply."""
    words = [word for word in (word.strip(_PUNCTUATION) for word in normalised(text).split()) if word]
    if not words:
        return None
    if len(words) == 1:
        keyword = _KEYWORDS.get(words[0])
        return KeywordMatch(keyword, words[0]) if keyword else None
    return KeywordMatch(Keyword.STOP, words[0]) if words[0] in _OPT_OUT_LEADS else None


def keyword_of(text: str) -> Keyword | None:
    """The keyword a reply is (see `match`), or None."""
    found = match(text)
    return found.keyword if found else None
