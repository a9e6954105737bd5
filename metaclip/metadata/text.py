"""Punctuation, entry cleaning and the tokeniser used for Wikipedia unigram and bigram counts.

Tokenisation (MetaCLIP 2's simple tokeniser for space-delimited languages, plus line breaks):
1. HTML tags and escaped tags (`<...>`, `&lt;...&gt;`) are removed, as WikiExtractor output
   still holds `<doc ...>` lines, then HTML entities are decoded (WikiExtractor escapes `&`, `<`
   and `>`: `AT&amp;T` is `AT&T`, two tokens, not three with a spurious `amp`).
2. Every punctuation character (ASCII `string.punctuation` and MetaCLIP's CJK punctuation list)
   and every line break ends a segment; punctuation is not counted.
3. Within a segment, tokens are split on Unicode whitespace, and each CJK, Thai, Lao, Burmese,
   Khmer or Tibetan character is a token of its own.
4. Case is kept. Unigrams are all tokens; bigrams are adjacent tokens within one segment, so no
   bigram spans punctuation or a line break (WikiExtractor writes one paragraph per line).
"""

from __future__ import annotations

import html
import re
import string

from metaclip.matching.scripts import CJK_OR_SIMILAR_RANGES

# Bump when the tokeniser changes: it is part of every n-gram cache key.
TOKENIZER_VERSION = "1"

# MetaCLIP's extra punctuation (build_metadata.py / build_ngram.py), besides string.punctuation.
CJK_PUNCTUATION = "，。、；：？¿！“”‘’（）【】《》〈〉「」『』～—"
PUNCTUATION = frozenset(string.punctuation + CJK_PUNCTUATION)

SEED_ENTRIES: tuple[str, ...] = tuple(str(i) for i in range(100))

# Code-point ranges MetaCLIP 2 splits into one-character tokens (is_cjk_or_similar, the same
# ranges as its matching: one table, in metaclip.matching.scripts).
_SPLIT_RANGES = CJK_OR_SIMILAR_RANGES

_HTML_RE = re.compile(r"&lt;.*?&gt;|<.*?>")
_BREAK_RE = re.compile("[" + re.escape("".join(sorted(PUNCTUATION))) + "\n]+")
_SPLIT_RE = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _SPLIT_RANGES) + "]")

# Stands for a segment break in token streams: a punctuation character can never be a token.
BREAK = "|"


def is_punctuation_only(entry: str) -> bool:
    """True when every character is punctuation (so also for the empty string)."""
    return all(ch in PUNCTUATION for ch in entry)


def clean_entry(entry: str) -> str | None:
    """The entry as it goes into metadata, or None when it is empty or punctuation only."""
    entry = entry.strip()
    return None if is_punctuation_only(entry) else entry


def strip_markup(text: str) -> str:
    """`text` without HTML tags and escaped tags, its entities decoded (rule 1)."""
    return html.unescape(_HTML_RE.sub("", text))


def plain_tokens_with_breaks(text: str) -> list[str]:
    """Rules 2 and 3 on text already without markup: tokens, with BREAK where a segment ends."""
    text = _BREAK_RE.sub(f" {BREAK} ", text)
    text = _SPLIT_RE.sub(r" \g<0> ", text)
    return text.split()


def tokens_with_breaks(text: str) -> list[str]:
    """Tokens of `text`, with BREAK wherever a segment ends (see the module docstring)."""
    return plain_tokens_with_breaks(strip_markup(text))


def segments(text: str) -> list[list[str]]:
    """Token segments of `text`: unigrams are their tokens, bigrams their adjacent pairs."""
    out: list[list[str]] = []
    current: list[str] = []
    for token in tokens_with_breaks(text):
        if token == BREAK:
            if current:
                out.append(current)
            current = []
        else:
            current.append(token)
    if current:
        out.append(current)
    return out
