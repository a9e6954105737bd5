"""Word segmenters for the languages written without spaces, and their tokens counted the way
MetaCLIP 2's build_ngram.py counts them.

MetaCLIP 2 (metaclip/metadata/lang_tokenizers/) splits a text on whitespace and segments each
piece with a per-language tool. Ours, by Wikipedia code, with the reference's tool beside it:

| wikis | segmenter | MetaCLIP 2 |
|---|---|---|
| zh, zh_classical, zh_yue | jieba (precise mode, HMM on) | ckip-transformers BERT, on a GPU |
| ja (ryu) | fugashi with unidic-lite | MeCab with ipadic (-Owakati) |
| th | pythainlp, engine newmm | thai-segmenter |
| km | khmer-nltk | a CRF model (segmentation-crf-khmer) |
| lo | laonlp | laonlp |
| bo, dz | syllables, split after each tsheg | botok (downloads a dialect pack at run time) |
| my | syllables by Ye Kyaw Thu's sylbreak rules | mmCRFseg (downloads its model at run time) |

The two syllable splitters are our fallbacks for tools that download data at run time. A
Tibetan syllable keeps its tsheg (U+0F0B, U+0F0C), so two joined syllables read as botok's word
would; the Tibetan marks (shad U+0F0D and its kin, head marks, brackets) and the Burmese section
marks (U+104A, U+104B) end a phrase like punctuation; zero-width spaces separate like spaces.
Text outside the script (digits, Latin words) is tokenised as in space-delimited languages.

Counting (build_ngram.py's count_ngrams, per text line: a line break ends a bigram chain, as
for every language here): each token is stripped; an empty one is skipped; a token of
punctuation only, or a "weird" one (check_weird_token: it starts with punctuation, or holds one
of a bracket pair without the other), is not counted and ends the chain; every other token is a
unigram, and with the previous one a bigram.

The tools are optional (the `worldwide` extra) and imported only when a language needs them.
jieba writes its dictionary cache into the folder given to `load_segmenter` (the build's work
folder, never the system's temporary folder); pythainlp is put in read-only, offline mode
before it is imported, so that it writes nothing (it would create ~/pythainlp-data).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from metaclip.errors import UserError
from metaclip.metadata.text import BREAK, is_punctuation_only, plain_tokens_with_breaks

# Bump when the counting rules or a segmenter's use change: part of every segmented count's key.
SEGMENTATION_VERSION = "1"
EXTRA = "metaclip-prefect[worldwide]"

Segment = Callable[[str], list[str]]


@dataclass(frozen=True)
class SegmenterInfo:
    name: str
    modules: tuple[str, ...]  # what must be importable
    packages: tuple[str, ...]  # distributions whose versions the counts depend on
    reference: str  # what MetaCLIP 2 uses instead


SEGMENTERS: dict[str, SegmenterInfo] = {
    s.name: s
    for s in (
        SegmenterInfo("jieba", ("jieba",), ("jieba",), "ckip-transformers (BERT, GPU)"),
        SegmenterInfo(
            "fugashi-unidic-lite", ("fugashi", "unidic_lite"), ("fugashi", "unidic-lite"),
            "MeCab + ipadic",
        ),  # fmt: skip
        SegmenterInfo("pythainlp-newmm", ("pythainlp",), ("pythainlp",), "thai-segmenter"),
        SegmenterInfo("khmer-nltk", ("khmernltk",), ("khmer-nltk",), "segmentation-crf-khmer"),
        SegmenterInfo("laonlp", ("laonlp",), ("laonlp",), "laonlp"),
        SegmenterInfo("tibetan-syllables", (), (), "botok"),
        SegmenterInfo("burmese-sylbreak", (), (), "mmCRFseg"),
    )
}

_BY_WIKI = {
    **dict.fromkeys(("zh", "zh_classical", "zh_yue"), "jieba"),
    **dict.fromkeys(("ja", "ryu"), "fugashi-unidic-lite"),
    "th": "pythainlp-newmm",
    "km": "khmer-nltk",
    "lo": "laonlp",
    **dict.fromkeys(("bo", "dz"), "tibetan-syllables"),
    "my": "burmese-sylbreak",
}


def segmenter_name(wiki: str) -> str | None:
    """The segmenter of a Wikipedia's text, or None for a space-delimited language."""
    return _BY_WIKI.get(wiki)


def check_installed(name: str) -> None:
    """UserError naming the extra to install when the segmenter's packages are missing."""
    info = SEGMENTERS[name]
    missing = [m for m in info.modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(
            f"segmenter {name} needs {', '.join(info.packages)}: pip install '{EXTRA}'"
        )


def segmenter_version(name: str) -> str:
    """The segmenter with its packages' versions (counts made by another version differ)."""
    check_installed(name)
    versions = [f"{p}=={importlib.metadata.version(p)}" for p in SEGMENTERS[name].packages]
    return " ".join([f"{name}/{SEGMENTATION_VERSION}", *versions])


# --- the segmenters ----------------------------------------------------------------------


def _jieba(cache_dir: str) -> Segment:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    os.makedirs(cache_dir, exist_ok=True)
    tokenizer.tmp_dir = cache_dir  # its dictionary cache goes here, not to the system's /tmp
    return lambda piece: list(tokenizer.cut(piece))


def _fugashi(cache_dir: str) -> Segment:
    import fugashi
    import unidic_lite

    # unidic-lite's dictionary and its mecabrc, named explicitly (a full `unidic` install or a
    # system mecabrc would win otherwise).
    rc = os.path.join(unidic_lite.DICDIR, "mecabrc")
    tagger = fugashi.Tagger(f'-d "{unidic_lite.DICDIR}" -r "{rc}"')
    return lambda piece: [word.surface for word in tagger(piece)]


def _pythainlp(cache_dir: str) -> Segment:
    if "PYTHAINLP_READ_MODE" not in os.environ:  # setting both is an error in pythainlp
        os.environ.setdefault("PYTHAINLP_READ_ONLY", "1")  # no ~/pythainlp-data
    os.environ.setdefault("PYTHAINLP_OFFLINE", "1")  # never a download
    from pythainlp.tokenize import word_tokenize

    return lambda piece: word_tokenize(piece, engine="newmm", keep_whitespace=False)


def _khmer(cache_dir: str) -> Segment:
    from khmernltk import word_tokenize

    logging.getLogger("khmer-nltk").setLevel(logging.WARNING)  # not a line per model load
    return lambda piece: word_tokenize(piece, return_tokens=True)


def _lao(cache_dir: str) -> Segment:
    from laonlp.tokenize import word_tokenize

    return lambda piece: list(word_tokenize(piece))


# Tibetan: a syllable ends with its tsheg; these marks end a phrase (shad and its kin, head
# marks, gter tsheg, brackets).
_TIBETAN = re.compile("([\u0f00-\u0fff]+)")
_TIBETAN_MARKS = re.compile("([\u0f01-\u0f0a\u0f0d-\u0f14\u0f3a-\u0f3d])")
_TSHEG_END = re.compile("(?<=[\u0f0b\u0f0c])")


def tibetan_syllables(piece: str) -> list[str]:
    """Syllables of a Tibetan run (each with its tsheg); BREAK for a mark."""
    out: list[str] = []
    for part in _TIBETAN_MARKS.split(piece):
        if _TIBETAN_MARKS.fullmatch(part):
            out.append(BREAK)
        elif part:
            out.extend(s for s in _TSHEG_END.split(part) if s)
    return out


# Burmese (sylbreak's rules): a syllable starts at a consonant that neither follows a virama
# (U+1039, stacked) nor is followed by an asat or virama (U+103A, U+1039: a final), and at an
# independent vowel, a digit or a symbol; the section marks U+104A, U+104B end a phrase.
_MYANMAR = re.compile("([\u1000-\u109f]+)")
_MYANMAR_MARKS = re.compile("([\u104a\u104b])")
_SYLLABLE_START = re.compile(
    "(?<!\u1039)([\u1000-\u1021](?![\u103a\u1039])"
    "|[\u1023-\u1027\u1029\u102a\u103f\u104c\u104d\u104f\u1040-\u1049])"
)


def burmese_syllables(piece: str) -> list[str]:
    """Syllables of a Burmese run; BREAK for a section mark."""
    out: list[str] = []
    for part in _MYANMAR_MARKS.split(piece):
        if _MYANMAR_MARKS.fullmatch(part):
            out.append(BREAK)
        elif part:
            out.extend(_SYLLABLE_START.sub(r" \1", part).split())
    return out


def _by_script(script: re.Pattern[str], syllables: Segment) -> Segment:
    """Split runs of `script` into syllables, tokenise the rest as space languages do."""

    def segment(piece: str) -> list[str]:
        out: list[str] = []
        for run in script.split(piece.replace("\u200b", " ")):
            out.extend(syllables(run) if script.fullmatch(run) else plain_tokens_with_breaks(run))
        return out

    return segment


_LOADERS: dict[str, Callable[[str], Segment]] = {
    "jieba": _jieba,
    "fugashi-unidic-lite": _fugashi,
    "pythainlp-newmm": _pythainlp,
    "khmer-nltk": _khmer,
    "laonlp": _lao,
    "tibetan-syllables": lambda _: _by_script(_TIBETAN, tibetan_syllables),
    "burmese-sylbreak": lambda _: _by_script(_MYANMAR, burmese_syllables),
}


@cache
def load_segmenter(name: str, cache_dir: str) -> Segment:
    """The segmenter `name` (loaded once per process); `cache_dir`: a local folder it may
    write its caches to (jieba's dictionary)."""
    check_installed(name)
    return _LOADERS[name](cache_dir)


# --- counting (build_ngram.py) -----------------------------------------------------------

# check_weird_token's pairs, as in the reference (its '『 ' with a space never matches a token:
# a lone '『' is still weird when it comes first, being punctuation).
_PAIRS = (
    ("(", ")"), ("[", "]"), ("{", "}"), ("“", "”"), ("‘", "’"), ("（", "）"), ("【", "】"),
    ("《", "》"), ("〈", "〉"), ("「", "」"), ("『 ", "』"),
)  # fmt: skip


def is_weird_token(token: str) -> bool:
    """build_ngram.py's check_weird_token: starts with punctuation, or has half a pair."""
    if is_punctuation_only(token[0]):
        return True
    return any((a in token) != (b in token) for a, b in _PAIRS)


def segmented_tokens(text: str, segment: Segment) -> list[str]:
    """Counted tokens of `text` (without markup) with BREAK where a bigram chain ends: at each
    line end and at each punctuation or weird token (module docstring)."""
    out: list[str] = []
    for line in text.split("\n"):
        for piece in line.split():
            for raw in segment(piece):
                token = raw.strip()
                if not token:
                    continue
                weird = is_punctuation_only(token) or is_weird_token(token)
                out.append(BREAK if weird else token)
        out.append(BREAK)
    return out
