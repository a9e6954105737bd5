"""The build-metadata and data-experts flows' configurations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from metaclip.config.checks import (
    CLUSTER_PARAMETERS,
    _fail,
    check_bool,
    check_choice,
    check_fraction,
    check_inside,
    check_int,
    check_location,
    check_locations,
    check_number,
    check_optional_location,
    check_output_location,
    contains,
    given_or_default,
    glob_base,
    optional_int,
    picked,
)
from metaclip.config.curation import ClusterConfig
from metaclip.config.storage import StorageConfig, check_read_write_storage
from metaclip.errors import UserError
from metaclip.experts.assign import N_EXAMPLES, OUTSIDE_BASES, OUTSIDE_SHARE
from metaclip.experts.embedding import BATCH_SIZE, DEFAULT_ENCODER, DTYPES, POOLER_PREFIX
from metaclip.experts.inputs import SAMPLE_SIZE
from metaclip.experts.kmeans import (
    CHUNK_ROWS,
    COARSE_ITER,
    DISTANCES,
    KMEANS_METHODS,
    N_COARSE,
    N_FINE,
    N_ITER,
)
from metaclip.io.storage import join as storage_join
from metaclip.metadata.ngrams import COUNT_LAYOUTS, TEXT_FORMATS
from metaclip.metadata.selection import Caps
from metaclip.metadata.sources import SOURCE_NAMES
from metaclip.metadata.wiki_titles import TITLE_PROJECTS
from metaclip.metadata.worldwide_plan import ALL, check_language

_PAGEVIEW_DOMAIN = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
MAX_PARTITIONS = 4096
MIN_MAX_ITEMS = 1000  # fewer n-grams per spill makes thousands of tiny files per task
SEED_MAX = 2**31 - 1  # faiss takes a C int seed
# The parameters these flows take besides their configuration's fields.
READ_WRITE_STORAGE = ("credentials", "input_options", "output_options")
READ_WRITE_EXTRA = (*READ_WRITE_STORAGE, *CLUSTER_PARAMETERS)
_CAPS = Caps()  # MetaCLIP 2's per-language caps: the worldwide build's defaults


@dataclass(frozen=True)
class BuildMetadataConfig:
    """The build-metadata flow's parameters, checked. Inputs (wordnet, wiki_text,
    unigram_counts, bigram_counts, pageviews, extra, base, wiki_text_root, english_metadata)
    are read with the `inputs` storage; `output` and `work_dir` (always a folder inside the
    output, default <output>/work, so that the output's lease and options cover it) are
    written with the `output` storage. With `languages`, the build is worldwide (MetaCLIP 2:
    one list per language, docs/metadata.md)."""

    output: str
    work_dir: str
    wordnet: str | None = None
    wiki_text: tuple[str, ...] = ()
    unigram_counts: tuple[str, ...] = ()
    bigram_counts: tuple[str, ...] = ()
    pageviews: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    base: str | None = None
    min_unigram_count: int = 100
    min_bigram_pmi: float = 30.0
    min_title_views: int = 70
    min_hourly_views: int = 50
    pageview_domains: tuple[str, ...] = ("en",)
    skip: tuple[str, ...] = ()
    max_entries: int | None = None
    partitions: int = 32
    batch_mb: int = 64
    text_format: str = "auto"
    count_layout: str = "auto"
    max_items: int = 1_000_000
    refresh: bool = False
    # A worldwide build (MetaCLIP 2): languages, inputs found by convention, per-language caps
    # (metaclip.metadata.worldwide_plan, metaclip.metadata.selection).
    languages: tuple[str, ...] = ()
    wiki_text_root: str | None = None
    english_metadata: str | None = None
    unigram_fraction: float = _CAPS.unigram_fraction
    max_unigrams: int = _CAPS.max_unigrams
    bigram_fraction: float = _CAPS.bigram_fraction
    max_bigrams: int = _CAPS.max_bigrams
    title_fraction: float = _CAPS.title_fraction
    max_titles: int = _CAPS.max_titles
    max_entry_length: int = _CAPS.max_length
    title_projects: str = "wikipedia"
    storage: StorageConfig = StorageConfig()
    cluster: ClusterConfig = ClusterConfig()

    @property
    def worldwide(self) -> bool:
        return bool(self.languages)

    @classmethod
    def from_params(cls, **given: Any) -> BuildMetadataConfig:
        p = given_or_default(cls, given, READ_WRITE_EXTRA)
        output = check_output_location("output", p["output"])
        work_dir = p["work_dir"]
        work = storage_join(output, "work") if work_dir in (None, "") else check_inside(
            "work_dir", check_output_location("work_dir", work_dir), output, "output"
        )  # fmt: skip
        wordnet = p["wordnet"]
        wordnet = (wordnet or None) if wordnet in (None, "", "nltk") else check_location(
            "wordnet", wordnet
        )  # fmt: skip
        wiki = check_locations("wiki_text", p["wiki_text"])
        unigrams = check_locations("unigram_counts", p["unigram_counts"])
        bigrams = check_locations("bigram_counts", p["bigram_counts"])
        if wiki and (unigrams or bigrams):
            raise UserError(
                "wiki_text and unigram_counts/bigram_counts: give either a Wikipedia text dump "
                "or precomputed counts, not both"
            )
        if bigrams and not unigrams:
            raise _fail("bigram_counts", "bigram PMI needs unigram counts: add unigram_counts")
        pageviews = check_locations("pageviews", p["pageviews"])
        extra = check_locations("extra", p["extra"])
        base = check_optional_location("base", p["base"])
        world = _worldwide(p, unigrams, extra, base)
        by_convention = world["wiki_text_root"] or world["english_metadata"]
        if not (wordnet or wiki or unigrams or pageviews or extra or base or by_convention):
            raise UserError(
                "nothing to build: give wordnet, wiki_text, unigram_counts, pageviews, extra "
                "or base"
            )
        return cls(
            output=output,
            work_dir=work,
            wordnet=wordnet,
            wiki_text=wiki,
            unigram_counts=unigrams,
            bigram_counts=bigrams,
            pageviews=pageviews,
            extra=extra,
            base=base,
            min_unigram_count=check_int("min_unigram_count", p["min_unigram_count"], 1),
            min_bigram_pmi=check_number("min_bigram_pmi", p["min_bigram_pmi"]),
            min_title_views=check_int("min_title_views", p["min_title_views"], 1),
            min_hourly_views=check_int("min_hourly_views", p["min_hourly_views"], 1),
            pageview_domains=_pageview_domains(p["pageview_domains"]),
            skip=_skip(p["skip"]),
            max_entries=optional_int("max_entries", p["max_entries"], 1),
            partitions=check_int("partitions", p["partitions"], 1, MAX_PARTITIONS),
            batch_mb=check_int("batch_mb", p["batch_mb"], 1, 1 << 20),
            text_format=check_choice("text_format", p["text_format"], TEXT_FORMATS),
            count_layout=check_choice("count_layout", p["count_layout"], COUNT_LAYOUTS),
            max_items=check_int("max_items", p["max_items"], MIN_MAX_ITEMS, 10**10),
            refresh=check_bool("refresh", p["refresh"]),
            **world,
            storage=check_read_write_storage(**picked(given, READ_WRITE_STORAGE)),
            cluster=ClusterConfig.from_params(**picked(given, CLUSTER_PARAMETERS)),
        )


def _worldwide(
    p: dict[str, Any], unigrams: tuple[str, ...], extra: tuple[str, ...], base: str | None
) -> dict[str, Any]:
    """The worldwide build's fields, checked; its options only with `languages`, and the
    English-only options (count files, base, extra, max_entries) only without."""
    languages = _languages(p["languages"])
    root = check_optional_location("wiki_text_root", p["wiki_text_root"])
    english = check_optional_location("english_metadata", p["english_metadata"])
    if not languages and (root or english):
        name = "wiki_text_root" if root else "english_metadata"
        raise _fail(name, "is for a worldwide build: add languages (a list, or 'all')")
    english_only = {"unigram_counts": unigrams, "extra": extra, "base": base,
                    "max_entries": p["max_entries"]}  # fmt: skip
    given = [name for name, value in english_only.items() if value]
    if languages and given:
        raise _fail(given[0], "is for the English build only, not with languages")
    return {
        "languages": languages,
        "wiki_text_root": root,
        "english_metadata": english,
        "unigram_fraction": check_fraction("unigram_fraction", p["unigram_fraction"]),
        "max_unigrams": check_int("max_unigrams", p["max_unigrams"], 0),
        "bigram_fraction": check_fraction("bigram_fraction", p["bigram_fraction"]),
        "max_bigrams": check_int("max_bigrams", p["max_bigrams"], 0),
        "title_fraction": check_fraction("title_fraction", p["title_fraction"]),
        "max_titles": check_int("max_titles", p["max_titles"], 0),
        "max_entry_length": check_int("max_entry_length", p["max_entry_length"], 1),
        "title_projects": check_choice("title_projects", p["title_projects"], TITLE_PROJECTS),
    }


def _languages(value: Any) -> tuple[str, ...]:
    """A language list: codes as a list or one comma-separated string; 'all' alone."""
    if value is None or value == "" or value == [] or value == ():
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise _fail("languages", f"must be language codes such as ['zh', 'ja'] or 'all', "
                    f"not {value!r}")  # fmt: skip
    codes = tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
    try:
        codes = tuple(check_language(c) for c in codes)
    except UserError as exc:
        raise _fail("languages", str(exc)) from None
    if ALL in codes and len(codes) > 1:
        raise _fail("languages", "'all' stands alone")
    return codes


def _pageview_domains(value: Any) -> tuple[str, ...]:
    if value is None or value == [] or value == ():
        return ("en",)
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _fail("pageview_domains", f"must be a list of domain codes such as ['en'], "
                    f"not {value!r}")  # fmt: skip
    bad = [v for v in value if not isinstance(v, str) or not _PAGEVIEW_DOMAIN.match(v)]
    if bad:
        raise _fail("pageview_domains", "not a Wikimedia domain code (like en or en.m): "
                    f"{', '.join(map(repr, bad))}")  # fmt: skip
    return tuple(dict.fromkeys(value))


def _skip(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _fail("skip", f"must be a list of sources ({', '.join(SOURCE_NAMES)}), "
                    f"not {value!r}")  # fmt: skip
    return tuple(dict.fromkeys(check_choice("skip", v, SOURCE_NAMES) for v in value))


@dataclass(frozen=True)
class ExpertsConfig:
    """The data-experts flow's parameters, checked: `curated` (a curation output root, its
    curated/ folder, a glob or files) is read with the `inputs` storage, `output` written with
    the `output` storage; neither may hold the other."""

    curated: str
    output: str
    encoder: str = DEFAULT_ENCODER
    n_fine: int = N_FINE
    n_coarse: int = N_COARSE
    kmeans: str = "balanced"
    distance: str = "euclidean"
    sample_size: int = SAMPLE_SIZE
    outside_share: float = OUTSIDE_SHARE
    outside_base: str = "outside"
    seed: int = 0
    niter: int = N_ITER
    coarse_niter: int = COARSE_ITER
    chunk_rows: int = CHUNK_ROWS
    n_examples: int = N_EXAMPLES
    normalize: bool = True
    dtype: str = "float16"
    batch_size: int = BATCH_SIZE
    storage: StorageConfig = StorageConfig()
    cluster: ClusterConfig = ClusterConfig()

    @classmethod
    def from_params(cls, **given: Any) -> ExpertsConfig:
        p = given_or_default(cls, given, READ_WRITE_EXTRA)
        curated = check_location("curated", p["curated"])
        output = check_output_location("output", p["output"])
        if contains(output, glob_base(curated)):
            raise _fail("output", f"{output} holds the curated input {curated}: write the "
                        "experts elsewhere")  # fmt: skip
        n_coarse = check_int("n_coarse", p["n_coarse"], 1, 32767)  # the expert column is int16
        n_fine = check_int("n_fine", p["n_fine"], 1, 1 << 20)
        if n_fine < n_coarse:
            raise _fail("n_fine", f"must be at least n_coarse ({n_coarse}), not {n_fine}")
        sample_size = check_int("sample_size", p["sample_size"], 1, 10**12)
        if sample_size < n_fine:
            raise _fail("sample_size", f"must be at least n_fine ({n_fine}): k-means needs a "
                        f"sample row per centre, not {sample_size}")  # fmt: skip
        kmeans = check_choice("kmeans", p["kmeans"], KMEANS_METHODS)
        distance = check_choice("distance", p["distance"], DISTANCES)
        if distance != "euclidean" and kmeans != "balanced":
            raise _fail("distance", f"kmeans={kmeans} clusters by Euclidean distance only")
        return cls(
            curated=curated,
            output=output,
            encoder=_encoder(p["encoder"]),
            n_fine=n_fine,
            n_coarse=n_coarse,
            kmeans=kmeans,
            distance=distance,
            sample_size=sample_size,
            outside_share=check_fraction("outside_share", p["outside_share"]),
            outside_base=check_choice("outside_base", p["outside_base"], OUTSIDE_BASES),
            seed=check_int("seed", p["seed"], 0, SEED_MAX),
            niter=check_int("niter", p["niter"], 1, 10_000),
            coarse_niter=check_int("coarse_niter", p["coarse_niter"], 1, 10_000),
            chunk_rows=check_int("chunk_rows", p["chunk_rows"], 1, 1 << 30),
            n_examples=check_int("n_examples", p["n_examples"], 0, 10_000),
            normalize=check_bool("normalize", p["normalize"]),
            dtype=check_choice("dtype", p["dtype"], DTYPES),
            batch_size=check_int("batch_size", p["batch_size"], 1, 1 << 16),
            storage=check_read_write_storage(**picked(given, READ_WRITE_STORAGE)),
            cluster=ClusterConfig.from_params(**picked(given, CLUSTER_PARAMETERS)),
        )


def _encoder(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail("encoder", "is empty: give all-MiniLM-L6-v2, a sentence-transformers "
                    "model, pooler:<name or folder> or a SimCSE name")  # fmt: skip
    if value != value.strip() or any(ch in value for ch in "\x00\n\r\t"):
        raise _fail("encoder", f"holds spaces or control characters: {value!r}")
    if value.startswith(POOLER_PREFIX) and not value.removeprefix(POOLER_PREFIX).strip():
        raise _fail("encoder", "pooler: needs a model name or folder after it")
    return value
