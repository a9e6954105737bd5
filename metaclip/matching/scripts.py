"""Character classes of MetaCLIP 2's worldwide matching, and its padding of metadata entries.

The specification is facebookresearch/MetaCLIP's metaclip/curation/substr_matching.py:
`is_punctuation`, `is_cjk_or_similar` and `get_spaced_metadata`. An entry gets a space before it
unless its first character is CJK-or-similar, and one after it unless its last character is:
"猫" stays "猫" (it matches inside "黑色的猫咪"), "cat" becomes " cat " (whole words only).

CJK-or-similar is exactly the reference's set: CJK ideographs and radicals, Thai, Lao, Burmese,
Khmer, Tibetan, and punctuation. Kana (U+3040-U+30FF) and Hangul (U+AC00-U+D7AF) are NOT in it,
although the feature request names them: the reference is the specification, so a Japanese
entry ending in kana gets a space after it, as in MetaCLIP 2.
"""

from __future__ import annotations

import string

import numpy as np

# substr_matching.py's `additional_punctuation`. It has no '¿', unlike the metadata builder's
# list (metaclip.metadata.text.CJK_PUNCTUATION): matching follows substr_matching.py, so an
# entry edged with '¿' is padded with a space on that side.
MATCHING_EXTRA_PUNCTUATION = "，。、；：？！“”‘’（）【】《》〈〉「」『』～—"
MATCHING_PUNCTUATION = frozenset(string.punctuation + MATCHING_EXTRA_PUNCTUATION)

# Inclusive code-point ranges of is_cjk_or_similar, in the reference's order.
CJK_OR_SIMILAR_RANGES: tuple[tuple[int, int], ...] = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0x2CEB0, 0x2EBEF),
    (0xF900, 0xFAFF),
    (0x2E80, 0x2EFF),
    (0x2F00, 0x2FDF),
    (0x2FF0, 0x2FFF),
    (0x0E00, 0x0E7F),  # Thai
    (0x0E80, 0x0EFF),  # Lao
    (0x1000, 0x109F),  # Burmese
    (0x1780, 0x17FF),  # Khmer
    (0x0F00, 0x0FFF),  # Tibetan
)


def is_punctuation(char: str) -> bool:
    return char in MATCHING_PUNCTUATION


def is_cjk_or_similar(char: str) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in CJK_OR_SIMILAR_RANGES) or is_punctuation(char)


def _range_bounds() -> np.ndarray:
    """Sorted [start, end + 1) bounds of the ranges: a code point is inside one exactly when
    the number of bounds <= it is odd."""
    return np.array(sorted(b for lo, hi in CJK_OR_SIMILAR_RANGES for b in (lo, hi + 1)))


_BOUNDS = _range_bounds()
_PUNCTUATION_CODES = np.array(sorted(map(ord, MATCHING_PUNCTUATION)))


def cjk_or_similar_mask(codes: np.ndarray) -> np.ndarray:
    """is_cjk_or_similar for an array of code points at once."""
    codes = np.asarray(codes, dtype=np.int64)
    in_range = np.searchsorted(_BOUNDS, codes, side="right") % 2 == 1
    return in_range | np.isin(codes, _PUNCTUATION_CODES)


def spaced_entry(entry: str) -> str:
    """The entry as MetaCLIP 2 looks for it (get_spaced_metadata); `entry` must not be empty."""
    if not is_cjk_or_similar(entry[0]):
        entry = f" {entry}"
    if not is_cjk_or_similar(entry[-1]):
        entry = f"{entry} "
    return entry
