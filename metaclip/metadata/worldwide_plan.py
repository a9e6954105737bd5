"""Planning a worldwide build (`--language L` or `--languages a,b,c|all`): the languages, the
Wikipedias that make up each one, every input found by convention, and the work laid out.

Languages: a metadata language (metaclip.metadata.languages.METADATA_LANGUAGES) or any Wikipedia
code of MetaCLIP 2's list (a code that is no metadata language, such as zh_yue or simple, is a
list of its own). "all": every metadata language with a text folder under `wiki_text_root` (for
one of its Wikipedias) or, when `wordnet` is given, an OMW language; English too when
`english_metadata` is given.

A metadata language's Wikipedias: its own (the first of languages.wikis_of) always, and each
other one (a variant, like zh_yue for zh) that has a text folder. Inputs per Wikipedia W:
- text: `<wiki_text_root>/W/` (or `W_text/`, as MetaCLIP 2's download script names it), every
  file below it; with one language, `wiki_text` instead gives its own Wikipedia's files;
- WordNet: the OMW language of W (languages.WIKI_TO_WORDNET), when `wordnet` holds its tab file;
- titles: the shared `pageviews` files, rows of W's domains (metaclip.metadata.wiki_titles).

English is MetaCLIP 1's list, as in MetaCLIP 2: `english_metadata` copied as it is, else built
by the English recipe (metaclip.metadata.plan.plan_build) into `<output>/en/` from
`<wiki_text_root>/en/`, `wordnet` (which must then hold WordNet 3.0: an NLTK data root, or
"nltk") and `pageviews`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.io.cachekeys import make_key
from metaclip.metadata import omw
from metaclip.metadata.languages import (
    METADATA_LANGUAGES,
    WIKI_CODES,
    WIKI_TO_WORDNET,
    merged_language,
    wikis_of,
)
from metaclip.metadata.plan import BuildPlan, Job, Thresholds, input_batches, plan_build
from metaclip.metadata.segmenters import check_installed, segmenter_name, segmenter_version
from metaclip.metadata.text import TOKENIZER_VERSION

if TYPE_CHECKING:  # metaclip.config imports metaclip.metadata's constants
    from metaclip.config import BuildMetadataConfig

ENGLISH = "en"
ALL = "all"


@dataclass(frozen=True)
class WikiPlan:
    """One Wikipedia's sources: where they are read from and written to."""

    wiki: str
    language: str
    sources_dir: str  # <output>/<language>/sources/<wiki>
    segmenter: str | None = None  # name; None: the space-delimited tokeniser
    segmenter_version: str | None = None
    omw: str | None = None
    omw_files: list[str] = field(default_factory=list)
    text_jobs: list[Job] = field(default_factory=list)
    ngram_stage: str | None = None

    def source_uri(self, name: str) -> str:
        return storage.join(self.sources_dir, f"{name}.parquet")


@dataclass(frozen=True)
class LanguagePlan:
    language: str
    folder: str  # <output>/<language>
    wikis: list[WikiPlan]


@dataclass(frozen=True)
class WorldwidePlan:
    output: str
    work_dir: str
    languages: list[LanguagePlan]
    title_jobs: list[Job] = field(default_factory=list)
    english: BuildPlan | None = None  # English by MetaCLIP 1's recipe
    english_copy: str | None = None  # or a copy of this list

    @property
    def wikis(self) -> list[WikiPlan]:
        return [w for lang in self.languages for w in lang.wikis]

    def names(self) -> list[str]:
        """Every language written, in code order."""
        built = [lang.language for lang in self.languages]
        english = [ENGLISH] if self.english or self.english_copy else []
        return sorted([*built, *english])


def check_language(code: str) -> str:
    """A language the build accepts, or UserError in one line listing valid ones."""
    if code == ALL or code in METADATA_LANGUAGES or code in WIKI_CODES:
        return code
    raise UserError(
        f"unknown language code {code!r}: give a metadata language or Wikipedia code such as "
        "en, zh, ja, fr, de, th (metaclip.metadata.languages lists them), or 'all'"
    )


def _text_folder(root: str, wiki: str, opts: dict[str, Any]) -> str | None:
    for name in (wiki, f"{wiki}_text"):
        folder = storage.join(root, name)
        fs, path = storage.filesystem(folder, **opts)
        if fs.isdir(path):
            return folder
    return None


def _root_wikis(root: str, opts: dict[str, Any]) -> list[str]:
    fs, path = storage.filesystem(root, **opts)
    if not fs.isdir(path):
        raise UserError(f"wiki_text_root is not a folder: {root}")
    names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]
    return [n.removesuffix("_text") for n in names if n.removesuffix("_text") in WIKI_CODES]


def resolve_languages(config: BuildMetadataConfig, opts: dict[str, Any]) -> list[str]:
    """The languages to build, "all" expanded (module docstring)."""
    if ALL not in config.languages:
        return sorted(set(config.languages))
    found: set[str] = set()
    if config.wiki_text_root:
        found |= {merged_language(w) or "" for w in _root_wikis(config.wiki_text_root, opts)}
    if config.wordnet and "wordnet" not in config.skip:
        found |= {
            merged_language(w) or ""
            for w, code in WIKI_TO_WORDNET.items()
            if omw.has_language(config.wordnet, code, opts)
        }
    if config.english_metadata:
        found.add(ENGLISH)
    found.discard("")
    if not found:
        raise UserError("languages=all found no language: give wiki_text_root, an OMW wordnet "
                        "or english_metadata")  # fmt: skip
    return sorted(found)


def _wikis(language: str, config: BuildMetadataConfig, opts: dict[str, Any]) -> list[str]:
    if language not in METADATA_LANGUAGES:
        return [language]
    own, *variants = wikis_of(language)
    root = config.wiki_text_root
    return [own, *(w for w in variants if root and _text_folder(root, w, opts))]


def _text_files(
    wiki: str, own: bool, config: BuildMetadataConfig, opts: dict[str, Any]
) -> list[str]:
    if {"unigram", "bigram"} <= set(config.skip):
        return []
    if config.wiki_text:
        return list(config.wiki_text) if own else []
    folder = _text_folder(config.wiki_text_root, wiki, opts) if config.wiki_text_root else None
    return [folder] if folder else []


def _omw(
    wiki: str, config: BuildMetadataConfig, opts: dict[str, Any]
) -> tuple[str | None, list[str]]:
    """(OMW language, its key files) of a Wikipedia; none when `wordnet` lacks its file."""
    code = WIKI_TO_WORDNET.get(wiki)
    if not (config.wordnet and code and "wordnet" not in config.skip):
        return None, []
    files = omw.omw_key_files(config.wordnet, code, opts)
    return (code, files) if files else (None, [])


def _text_jobs(
    files: list[str], version: str | None, config: BuildMetadataConfig, opts: dict[str, Any]
) -> list[Job]:
    if not files:
        return []
    params = {"partitions": config.partitions, "tokenizer": TOKENIZER_VERSION,
              "text_format": config.text_format, "segmenter": version}  # fmt: skip
    base = storage.join(config.work_dir, "ngrams", "batches")
    return [
        Job(b, storage.join(base, make_key("text", params, b, opts)))
        for b in input_batches(files, config.batch_mb << 20, opts)
    ]


def _wiki_plan(
    wiki: str, language: str, own: bool, config: BuildMetadataConfig, opts: dict[str, Any]
) -> WikiPlan:
    name = segmenter_name(wiki)
    version = segmenter_version(name) if name else None  # UserError when not installed
    code, omw_files = _omw(wiki, config, opts)
    jobs = _text_jobs(_text_files(wiki, own, config, opts), version, config, opts)
    stage_key = {"batches": [j.target for j in jobs], "partitions": config.partitions}
    stage = storage.join(config.work_dir, "ngrams", make_key("reduce", stage_key))
    return WikiPlan(
        wiki=wiki,
        language=language,
        sources_dir=storage.join(config.output, language, "sources", wiki),
        segmenter=name,
        segmenter_version=version,
        omw=code,
        omw_files=omw_files,
        text_jobs=jobs,
        ngram_stage=stage if jobs else None,
    )


def _language_plan(
    language: str, config: BuildMetadataConfig, opts: dict[str, Any]
) -> LanguagePlan:
    wikis = _wikis(language, config, opts)
    plans = [_wiki_plan(w, language, i == 0, config, opts) for i, w in enumerate(wikis)]
    return LanguagePlan(language, storage.join(config.output, language), plans)


def _english(config: BuildMetadataConfig, opts: dict[str, Any]) -> BuildPlan:
    wiki = list(config.wiki_text) if config.wiki_text else _text_files(ENGLISH, True, config, opts)
    if not (config.wordnet or wiki or config.pageviews):
        raise UserError("English: give english_metadata (MetaCLIP 1's metadata.json, as MetaCLIP "
                        "2 does) or English inputs")  # fmt: skip
    try:
        return plan_build(
            storage.join(config.output, ENGLISH), wordnet=config.wordnet, wiki_text=wiki,
            pageviews=config.pageviews, skip=config.skip,
            thresholds=Thresholds(config.min_unigram_count, config.min_bigram_pmi,
                                  config.min_title_views, config.min_hourly_views),
            pageview_domains=config.pageview_domains, partitions=config.partitions,
            batch_bytes=config.batch_mb << 20, text_format=config.text_format,
            work_dir=config.work_dir, input_options=opts,
        )  # fmt: skip
    except UserError as exc:
        raise UserError(f"English (MetaCLIP 1's recipe; or give english_metadata): {exc}") from exc


def _title_jobs(
    config: BuildMetadataConfig, wikis: Sequence[WikiPlan], opts: dict[str, Any]
) -> list[Job]:
    if not config.pageviews or "title" in config.skip or not wikis:
        return []
    params = {"wikis": sorted(w.wiki for w in wikis), "projects": config.title_projects}
    base = storage.join(config.work_dir, "titles")
    return [
        Job(b, storage.join(base, make_key("wiki-pageviews", params, b, opts)))
        for b in input_batches(config.pageviews, config.batch_mb << 20, opts)
    ]


def plan_worldwide(config: BuildMetadataConfig, opts: dict[str, Any]) -> WorldwidePlan:
    """Check a worldwide build's inputs and lay out its work (UserError on a mistake). Reads
    only the inputs (with `opts`): it lists them and takes their identities."""
    languages = resolve_languages(config, opts)
    if config.wiki_text and len(languages) != 1:
        raise UserError("wiki_text is one language's text: give wiki_text_root for several")
    for name in {segmenter_name(w) for lang in languages for w in _wikis(lang, config, opts)}:
        if name:
            check_installed(name)
    plans = [_language_plan(lang, config, opts) for lang in languages if lang != ENGLISH]
    english = ENGLISH in languages and not config.english_metadata
    if config.english_metadata:
        storage.expand_inputs([config.english_metadata], **opts)  # exists?
    wikis = [w for lang in plans for w in lang.wikis]
    return WorldwidePlan(
        output=config.output,
        work_dir=config.work_dir,
        languages=plans,
        title_jobs=_title_jobs(config, wikis, opts),
        english=_english(config, opts) if english else None,
        english_copy=config.english_metadata if ENGLISH in languages else None,
    )
