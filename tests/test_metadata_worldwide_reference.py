"""MetaCLIP 2's metadata scripts, naively, as the worldwide tests' reference (no tests here:
tests/test_metadata_worldwide*.py import it).

Written straight from facebookresearch/MetaCLIP's metaclip/metadata/ (build_ngram.py's
tokenizer and count_ngrams, build_title.py's counting, build_multilingual_wordnet.py through
NLTK's own OMW reader, build_metadata.py's selection loop), with only what a test must change:
inputs passed in instead of read from fixed paths, the segmenter passed in (the tools differ:
docs/metadata.md), and this project's two documented tokenisation differences, marked
DEVIATION below. The n-gram PMI is NLTK's BigramCollocationFinder, as for English.
"""

# The reference's code is kept as it is written, simplifiable branches and all.
# ruff: noqa: SIM103, SIM110, SIM114

from __future__ import annotations

import gzip
import html
import re
import string
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from nltk.collocations import BigramAssocMeasures, BigramCollocationFinder
from nltk.probability import FreqDist

additional_punctuation = {k: 0 for k in [
    '，', '。', '、', '；', '：', '？', '¿', '！', '“', '”', '‘', '’', '（', '）', '【', '】', '《',
    '》', '〈', '〉', '「', '」', '『', '』', '～', '—'
]}  # fmt: skip

no_space_languages = {"bo", "dz", "ja", "km", "lo", "my", "ryu", "th", "zh", "zh_classical",
                      "zh_yue"}  # fmt: skip


def is_punctuation(char: str) -> bool:
    return char in string.punctuation or char in additional_punctuation


def is_pure_punctuations(s: str) -> bool:
    for c in s:
        if not is_punctuation(c):
            return False
    return True


def is_cjk_or_similar(char: str) -> bool:
    code_point = ord(char)
    if (
        0x4E00 <= code_point <= 0x9FFF or 0x3400 <= code_point <= 0x4DBF
        or 0x20000 <= code_point <= 0x2A6DF or 0x2A700 <= code_point <= 0x2B73F
        or 0x2B740 <= code_point <= 0x2B81F or 0x2B820 <= code_point <= 0x2CEAF
        or 0x2CEB0 <= code_point <= 0x2EBEF or 0xF900 <= code_point <= 0xFAFF
        or 0x2E80 <= code_point <= 0x2EFF or 0x2F00 <= code_point <= 0x2FDF
        or 0x2FF0 <= code_point <= 0x2FFF
    ):  # fmt: skip
        return True
    elif (
        0x0E00 <= code_point <= 0x0E7F or 0x0E80 <= code_point <= 0x0EFF
        or 0x1000 <= code_point <= 0x109F or 0x1780 <= code_point <= 0x17FF
        or 0x0F00 <= code_point <= 0x0FFF
    ):  # fmt: skip
        return True
    elif is_punctuation(char):
        return True
    else:
        return False


def check_weird_token(token: str) -> bool:
    paired_punc = [
        ["(", ")"], ["[", "]"], ["{", "}"], ["“", "”"], ["‘", "’"], ["（", "）"], ["【", "】"],
        ["《", "》"], ["〈", "〉"], ["「", "」"], ["『 ", "』"],
    ]  # fmt: skip
    if is_punctuation(token[0]):
        return True
    for pair in paired_punc:
        if (pair[0] in token and pair[1] not in token) or (
            pair[1] in token and pair[0] not in token
        ):
            return True
    return False


def simple_tokenizer(text: str) -> list[str]:
    tokens = []
    current_token: list[str] = []
    for char in text:
        if is_cjk_or_similar(char):
            if current_token:
                tokens.append("".join(current_token))
                current_token = []
            tokens.append(char)
        elif char.isspace():
            if current_token:
                tokens.append("".join(current_token))
                current_token = []
        else:
            current_token.append(char)
    if current_token:
        tokens.append("".join(current_token))
    return tokens


def count_ngrams(tokens: list[str], ngram_counts: dict, lang_code: str) -> None:
    prev_token = None
    for token in tokens:
        token = token.strip()
        if len(token) == 0:
            continue
        if is_pure_punctuations(token):
            prev_token = None
            continue
        if check_weird_token(token) and lang_code in no_space_languages:
            prev_token = None
            continue
        ngram_counts["unigram"][token] += 1
        if prev_token is not None:
            ngram_counts["bigram"][f"{prev_token} {token}"] += 1
        prev_token = token


def build_ngrams(texts: Iterable[str], lang_code: str, segment: Callable[[str], list[str]] | None
                 ) -> dict:  # fmt: skip
    ngram_counts: dict = {"unigram": defaultdict(int), "bigram": defaultdict(int)}
    for text in texts:
        text = re.sub(r"(&lt;.*?&gt;|<.*?>)", "", text)
        text = html.unescape(text)  # DEVIATION 1: entities decoded (no 'amp' word)
        for line in text.split("\n"):  # DEVIATION 2: a line break ends a bigram chain
            if segment is None:
                tokens = simple_tokenizer(line)
            else:  # tokenize(): the segmenter on each whitespace-separated piece
                tokens = [t for piece in line.split() for t in segment(piece)]
            count_ngrams(tokens, ngram_counts, lang_code)
    return ngram_counts


def nltk_pmi(ngram_counts: dict) -> list[tuple[str, float]]:
    """(bigram, NLTK PMI) of every bigram whose words are counted unigrams."""
    words = FreqDist(dict(ngram_counts["unigram"]))
    pairs = FreqDist({tuple(k.split(" ")): v for k, v in ngram_counts["bigram"].items()})
    finder = BigramCollocationFinder(words, pairs)
    return [(f"{a} {b}", s) for (a, b), s in finder.score_ngrams(BigramAssocMeasures.pmi)]


def build_titles(files: Iterable[Path], wikipedia: str | None = None) -> dict[str, dict[str, int]]:
    """build_title.py's process_date (for the given files) and wiki_multilingual_title.
    `wikipedia`: read only that Wikipedia's domains, desktop and mobile (this project's default,
    title_projects="wikipedia"); None: every domain, as the reference."""
    title_per_lang: Any = defaultdict(lambda: defaultdict(int))
    for local_path in files:
        with gzip.open(local_path) as fr:
            for line in fr:
                line = line.decode().strip()
                if line.startswith('"" '):
                    continue
                line = line.split(" ")
                if len(line) != 4:
                    continue
                lang_code, title, count, hour = line
                domain = wikipedia.replace("_", "-") if wikipedia else None
                if domain and lang_code not in (domain, f"{domain}.m"):
                    continue
                if ".m" in lang_code:
                    lang_code = lang_code.replace(".m", "")
                title = title.strip().replace("_", " ")
                count = int(count)
                if count == 0 or ":" in title:
                    continue
                title_per_lang[lang_code][title] += count
    all_title_per_lang: Any = defaultdict(lambda: defaultdict(int))
    for lang_code in title_per_lang:
        for title in title_per_lang[lang_code]:
            all_title_per_lang[lang_code.split(".")[0]][title] += title_per_lang[lang_code][title]
    return {k.replace("-", "_"): dict(v) for k, v in all_title_per_lang.items()}


def multilingual_wordnet(reader: Any, lang: str) -> list[str]:
    """build_multilingual_wordnet.py for one language, with NLTK's reader (its custom_lemmas
    reads the tab file the way _load_lang_data would)."""
    multilingual_synsets = set()
    for ss in reader.all_synsets(lang=lang):
        names = ss.lemma_names(lang)
        for name in names:
            name = name.replace("_", " ").replace("+", "")
            multilingual_synsets.add(name)
    return sorted(list(multilingual_synsets))


max_len = 256


def build_metadata(
    lang_code: str,
    wordnet_per_lang: list[str],
    data_ngram: dict,
    title_per_lang: dict[str, int],
    *,
    threshold_unigram: float = 0.1,
    threshold_bigram: float = 30.0,
    upper_bound_unigram: int = 251_465,
    upper_bound_bigram: int = 100_646,
    fraction_bigram: float = 0.4,
    threshold_title: float = 0.76,
    upper_bound_title: int = 61_235,
) -> dict[str, str]:
    """build_metadata.py's build_metadata; the bigram cap follows its docs (40% of the
    unigrams kept) where its code says min(100,646, distinct bigrams): the one place marked
    DOCS."""
    wordnet_num = len(wordnet_per_lang)
    unigram_num = len(data_ngram["unigram"])
    title_num = len(title_per_lang)
    capped_unigram_num = min(upper_bound_unigram, int(unigram_num * threshold_unigram))
    capped_title_num = min(upper_bound_title, int(title_num * threshold_title))

    metadata: dict[str, str] = {}
    for m in range(100):
        m = str(m)
        if m not in metadata:
            metadata[m] = ""
    if wordnet_num:
        for m in wordnet_per_lang:
            if lang_code in ["zh", "ja", "fr"] and "+" in m:
                m = m.replace("+", "")
            m = m.strip()
            if len(m) == 0:
                continue
            if is_pure_punctuations(m):
                continue
            if m not in metadata:
                metadata[m] = "w"

    # Ties by code point (the reference's order is its JSON file's).
    data_list_unigram = sorted(sorted(data_ngram["unigram"].items()), key=lambda x: x[1],
                               reverse=True)  # fmt: skip
    unigram_cnt = 0
    for m, _ in data_list_unigram:
        m = m.strip()
        if len(m) == 0 or len(m) > max_len:
            continue
        if is_pure_punctuations(m):
            continue
        if m not in metadata:
            metadata[m] = "u"
            unigram_cnt += 1
            if unigram_cnt >= capped_unigram_num:
                break

    capped_bigram_num = min(upper_bound_bigram, int(unigram_cnt * fraction_bigram))  # DOCS
    is_not_split_by_space = lang_code in no_space_languages
    pmi_scores = {}
    for m, pmi in data_ngram["pmi"]:
        if pmi > threshold_bigram:
            pmi_scores[m] = pmi
    # Ties by count, then code point (the reference's order is its JSON file's).
    counts = data_ngram["bigram"]
    pmi_scores = sorted(pmi_scores.items(), key=lambda x: (-x[1], -counts[x[0]], x[0]))
    bigram_cnt = 0
    for m, _ in pmi_scores:
        if is_not_split_by_space:
            m = "".join(m.split(" "))
        m = m.strip()
        if len(m) == 0 or len(m) > max_len:
            continue
        if is_pure_punctuations(m):
            continue
        if m not in metadata:
            metadata[m] = "b"
            bigram_cnt += 1
            if bigram_cnt >= capped_bigram_num:
                break

    title_scores = sorted(sorted(title_per_lang.items()), key=lambda x: x[1], reverse=True)
    title_cnt = 0
    for m, _ in title_scores:
        m = m.strip()
        if len(m) == 0 or len(m) > max_len:
            continue
        if is_pure_punctuations(m):
            continue
        if m not in metadata:
            metadata[m] = "t"
            title_cnt += 1
            if title_cnt >= capped_title_num:
                break
    return metadata


def merge_wikis(lists: list[list[str]]) -> list[str]:
    """align_lid_to_wiki.py's union of a language's Wikipedias, in the order this project fixes
    (the reference takes a set)."""
    return list(dict.fromkeys(e for entries in lists for e in entries))
