"""The worldwide (MetaCLIP 2) metadata build as plain function calls, against a naive copy of the
reference's scripts (tests/test_metadata_worldwide_reference.py), on the real-text fixtures of
tests/data/worldwide_sources (see its PROVENANCE.txt): OMW tab files, WikiExtractor text and
pageview files of a dozen languages, six of them written without spaces.

The stage calls follow flows/build_metadata.py (run_worldwide) one Wikipedia at a time; the flow
itself runs in tests/test_metadata_worldwide_flow.py.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tarfile
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from metaclip.config import BuildMetadataConfig, Stores
from metaclip.errors import UserError
from metaclip.metadata import multilingual, ngrams, omw, pmi, wiki_titles, worldwide
from metaclip.metadata.languages import WIKI_TO_WORDNET, is_no_space, wikis_of
from metaclip.metadata.segmenters import check_installed, load_segmenter, segmenter_name
from metaclip.metadata.selection import Candidates, Caps, select_wiki
from metaclip.metadata.sources import SourceList
from metaclip.metadata.worldwide import WikiSources
from metaclip.metadata.worldwide_plan import WikiPlan, plan_worldwide
from tests import test_metadata_worldwide_reference as ref

SOURCES = Path(__file__).parent / "data" / "worldwide_sources"
WIKI, OMW = SOURCES / "wiki", SOURCES / "omw"
PAGEVIEWS = sorted((SOURCES / "pageviews").glob("*.gz"))
ARCHIVE = Path(__file__).parent / "data" / "wordnet" / "wordnet-3.0-nltk-minimal.tar.xz"
SEGMENTED = ["zh", "ja", "th", "km", "lo"]
# Caps small enough that every cap binds on the fixtures, and a PMI threshold they reach.
SMALL = {"unigram_fraction": 0.5, "max_unigrams": 9, "bigram_fraction": 1.0, "max_bigrams": 4,
         "title_fraction": 0.5, "max_titles": 5, "min_bigram_pmi": 4.0}  # fmt: skip


def installed(wiki: str) -> bool:
    name = segmenter_name(wiki)
    try:
        if name:
            check_installed(name)
    except UserError:
        return False
    return True


def config(tmp: Path, languages: list[str] | str | None, **changed: Any) -> BuildMetadataConfig:
    params: dict[str, Any] = dict(
        output=str(tmp / "out"), languages=languages, wiki_text_root=str(WIKI), wordnet=str(OMW),
        pageviews=[str(p) for p in PAGEVIEWS], partitions=2, max_items=1000,
    )  # fmt: skip
    return BuildMetadataConfig.from_params(**{**params, **changed})


# --- ours: the stages as plain calls ------------------------------------------------------


def wiki_sources(
    settings: BuildMetadataConfig, stores: Stores, wiki: WikiPlan, titles: list[Any]
) -> list[SourceList]:
    """One Wikipedia's source lists, stage by stage as the flow chains them."""
    out = []
    if wiki.omw:
        out.append(omw.omw_source(settings, stores, wiki.omw, wiki.source_uri("wordnet")))
    if wiki.ngram_stage:
        stage, parts = wiki.ngram_stage, range(settings.partitions)
        batches = [
            ngrams.count_segmented_batch(settings, stores, j.files, j.target, wiki.wiki)
            if wiki.segmenter else ngrams.count_text_batch(settings, stores, j.files, j.target)
            for j in wiki.text_jobs
        ]  # fmt: skip
        unigrams = [pmi.reduce_unigram_partition(settings, stores, batches, p, stage)
                    for p in parts]  # fmt: skip
        reserve = 100 + sum(s.entries for s in out)
        out.append(pmi.top_unigram_source(
            settings, stores, unigrams, batches, wiki.source_uri("unigram"), reserve))
        joined = [pmi.join_first_word(settings, stores, batches, p, unigrams, stage) for p in parts]
        scored = [pmi.score_second_word(settings, stores, joined, q, unigrams, stage)
                  for q in parts]  # fmt: skip
        out.append(pmi.bigram_source(
            settings, stores, scored, joined, unigrams, batches, wiki.source_uri("bigram")))
    if titles:
        out.append(wiki_titles.wiki_title_source(
            settings, stores, titles, wiki.wiki, wiki.source_uri("title")))
    return out


def build_plain(settings: BuildMetadataConfig) -> dict[str, dict[str, Any]]:
    """The worldwide build as plain calls: each language's row (merge_language's result)."""
    plan, stores = plan_worldwide(settings, {}), Stores()
    names = sorted({w.wiki for w in plan.wikis})
    titles = [wiki_titles.count_wiki_titles(settings, stores, j.files, j.target, names)
              for j in plan.title_jobs]  # fmt: skip
    rows = {}
    for lang in plan.languages:
        group = [WikiSources(w.wiki, w.segmenter, w.segmenter_version,
                             wiki_sources(settings, stores, w, titles)) for w in lang.wikis]
        rows[lang.language] = worldwide.merge_language(
            settings, stores, lang.language, group, lang.folder)  # fmt: skip
    worldwide.write_language_index(
        settings, stores, [{"language": k, "path": r["path"]} for k, r in rows.items()])
    return rows


# --- the reference's -------------------------------------------------------------------------


def naive_omw(wiki: str) -> list[str]:
    """The reference's per-language WordNet list, reading the tab file as NLTK's custom_lemmas
    does (tested against NLTK itself in test_omw_lemmas_are_nltks)."""
    code = WIKI_TO_WORDNET.get(wiki)
    path = OMW / str(code) / f"wn-data-{code}.tab"
    if code is None or not path.exists():
        return []
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.strip().split("\t")
        if line.startswith("#") or len(fields) < 3:
            continue
        if fields[1].split(":")[-1] == "lemma" and fields[1].split(":")[0] in (code, "lemma"):
            names.add(fields[-1].strip().replace(" ", "_").replace("_", " ").replace("+", ""))
    return sorted(names)


@cache
def naive_ngrams(wiki: str, cache_dir: str) -> dict:
    """The reference's n-gram counts and PMI of a Wikipedia's fixture text (computed once)."""
    folder = WIKI / wiki
    texts = [p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*")) if p.is_file()]
    name = segmenter_name(wiki)
    counts = ref.build_ngrams(texts, wiki, load_segmenter(name, cache_dir) if name else None)
    return {**counts, "pmi": ref.nltk_pmi(counts)}


def naive_wiki(wiki: str, settings: BuildMetadataConfig, cache_dir: Path) -> list[str]:
    data = naive_ngrams(wiki, str(cache_dir))
    all_titles = ref.build_titles(PAGEVIEWS, None if settings.title_projects == "all" else wiki)
    meta = ref.build_metadata(
        wiki, naive_omw(wiki), data, all_titles.get(wiki, {}),
        threshold_unigram=settings.unigram_fraction, upper_bound_unigram=settings.max_unigrams,
        threshold_bigram=settings.min_bigram_pmi, upper_bound_bigram=settings.max_bigrams,
        fraction_bigram=settings.bigram_fraction, threshold_title=settings.title_fraction,
        upper_bound_title=settings.max_titles,
    )  # fmt: skip
    return list(meta)


# --- the tests -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def naive_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the reference's segmenters keep their caches (jieba's dictionary)."""
    return tmp_path_factory.mktemp("naive-segmenters")

LANGUAGES = ["fr", "de", "ko", "ar", *SEGMENTED]
CASES = {"defaults": {}, "small caps": SMALL, "all projects": {**SMALL, "title_projects": "all"}}


@pytest.fixture(
    scope="module",
    params=[pytest.param(case, marks=[] if case == "small caps" else [pytest.mark.slow])
            for case in CASES],  # fmt: skip
)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("worldwide")
    languages = [lang for lang in LANGUAGES if installed(lang)]
    settings = config(tmp, languages, **CASES[request.param])
    return {"settings": settings, "rows": build_plain(settings), "tmp": tmp}


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_list_is_the_references(built: dict, language: str, naive_cache: Path) -> None:
    if not installed(language):
        pytest.skip(f"{segmenter_name(language)} is not installed")
    settings = built["settings"]
    wikis = [w for w in wikis_of(language) if w == language or (WIKI / w).is_dir()]
    expected = ref.merge_wikis([naive_wiki(w, settings, naive_cache) for w in wikis])
    row = built["rows"][language]
    entries = json.loads((Path(settings.output) / row["path"]).read_text(encoding="utf-8"))
    assert entries == expected
    prov = row["provenance"]
    assert prov["language"] == language and prov["total"] == len(entries)
    assert [b["source"] for b in prov["blocks"]][:2] == ["seeds", "wordnet"]


def test_small_caps_bind_on_every_source(tmp_path: Path) -> None:
    settings = config(tmp_path, ["fr"], **SMALL)
    prov = build_plain(settings)["fr"]["provenance"]
    caps = prov["wikis"][0]["caps"]
    for source in ("unigram", "bigram", "title"):
        record = prov["sources"][source]
        assert record["capped"] and record["added"] == caps[source] > 0
    assert caps["unigram"] == SMALL["max_unigrams"]
    assert caps["bigram"] == min(SMALL["max_bigrams"], int(caps["unigram"] * 1.0))
    assert prov["rules"]["caps"]["max_titles"] == SMALL["max_titles"]


@pytest.mark.slow
def test_a_variant_wikipedia_adds_its_new_entries_after_the_own_list(
    tmp_path: Path, naive_cache: Path
) -> None:
    if not installed("zh"):
        pytest.skip("jieba is not installed")
    settings = config(tmp_path, ["zh"])
    row = build_plain(settings)["zh"]
    entries = json.loads((Path(settings.output) / row["path"]).read_text(encoding="utf-8"))
    own = naive_wiki("zh", settings, naive_cache)
    variant = naive_wiki("zh_yue", settings, naive_cache)
    assert entries == ref.merge_wikis([own, variant])
    assert [w["wiki"] for w in row["provenance"]["wikis"]] == ["zh", "zh_yue"]
    assert len(entries) > len(own)  # zh_yue added entries of its own
    blocks = row["provenance"]["blocks"]
    assert blocks[-1]["source"].startswith("zh_yue/")
    assert sum(b["entries"] for b in blocks) == len(entries)


def test_no_space_bigrams_are_joined_and_space_ones_are_not(built: dict) -> None:
    settings, out = built["settings"], Path(built["settings"].output)
    if settings.min_bigram_pmi >= 30:
        pytest.skip("no bigram of the small fixtures reaches a PMI of 30")
    for language in (lang for lang in LANGUAGES if installed(lang)):
        table = pq.read_table(out / language / "sources" / language / "bigram.parquet")
        entries = set(json.loads((out / language / "metadata.json").read_text()))
        kept = [r["entry"] for r in table.to_pylist() if r["pmi"] > settings.min_bigram_pmi]
        joined = {e.replace(" ", "") if is_no_space(language) else e for e in kept}
        assert joined & entries, language  # some bigram made it into the list
        assert all(" " not in e for e in joined) == is_no_space(language)


def test_the_index_names_every_list_with_its_sha256(built: dict) -> None:
    settings = built["settings"]
    index = multilingual.load_index(settings.output)
    assert index.languages == sorted(built["rows"])
    for language, row in built["rows"].items():
        meta = multilingual.load_language(index, language)
        assert meta.sha256 == row["sha256"] and len(meta) == row["entries"]


def test_a_later_run_keeps_other_languages_in_the_index(tmp_path: Path) -> None:
    build_plain(config(tmp_path, ["fr"]))
    build_plain(config(tmp_path, ["de"]))
    assert multilingual.load_index(str(tmp_path / "out")).languages == ["de", "fr"]
    (tmp_path / "out" / "fr" / "metadata.json").write_text('["changed"]')
    build_plain(config(tmp_path, ["de"]))  # a list that no longer matches is left out
    assert multilingual.load_index(str(tmp_path / "out")).languages == ["de"]


def test_english_is_copied_as_given(tmp_path: Path) -> None:
    given = tmp_path / "metaclip1.json"
    given.write_bytes(b'["0", "1", "ice cream", "hot dog"]')
    settings = config(tmp_path, ["en"], english_metadata=str(given), wordnet=None,
                      wiki_text_root=None, pageviews=None)  # fmt: skip
    plan = plan_worldwide(settings, {})
    assert plan.languages == [] and plan.english_copy == str(given) and plan.english is None
    row = worldwide.copy_english(settings, Stores(), str(given), str(tmp_path / "out" / "en"))
    assert (tmp_path / "out" / "en" / "metadata.json").read_bytes() == given.read_bytes()
    assert row["provenance"]["copied_from"]["uri"] == str(given)


def test_all_finds_the_languages_with_inputs(tmp_path: Path) -> None:
    # en has a text folder, but the English recipe needs WordNet 3.0, not OMW files
    with pytest.raises(UserError, match="English .*give english_metadata"):
        plan_worldwide(config(tmp_path, ["all"]), {})
    given = tmp_path / "en.json"
    given.write_text('["ice cream"]')
    plan = plan_worldwide(config(tmp_path, ["all"], english_metadata=str(given)), {})
    folders = {p.name for p in WIKI.iterdir()} - {"zh_yue"}  # zh_yue goes into zh
    with_omw = {w for w, code in WIKI_TO_WORDNET.items() if (OMW / code).is_dir()}
    assert set(plan.names()) == folders | with_omw
    assert plan.english is None and plan.english_copy == str(given)


# --- reading the inputs ----------------------------------------------------------------------


def test_omw_reads_folders_and_archives_alike(tmp_path: Path) -> None:
    zipped = tmp_path / "omw.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for path in sorted(OMW.rglob("*.tab")):
            zf.write(path, f"omw-1.4/{path.relative_to(OMW)}")
    tarred = tmp_path / "omw.tar.gz"
    with tarfile.open(tarred, "w:gz") as tf:
        tf.add(OMW, "omw-1.4")
    for code in ("cmn", "fra", "tha"):
        expected = naive_omw({v: k for k, v in WIKI_TO_WORDNET.items()}[code])
        for source in (OMW, zipped, tarred):
            assert list(omw.omw_lemmas(str(source), code).synsets) == expected
    assert not omw.has_language(str(zipped), "kor") and omw.omw_key_files(str(OMW), "kor") == []


def test_omw_keeps_lemma_rows_of_its_language_only(tmp_path: Path) -> None:
    lines = (OMW / "fra" / "wn-data-fra.tab").read_text(encoding="utf-8").splitlines()
    rows = [line for line in lines if not line.startswith("#")]
    other = [r.replace("fra:lemma", "fra:def") for r in rows[:5]]
    foreign = [r.replace("fra:lemma", "spa:lemma").replace("\t", "\tx", 1) for r in rows[5:9]]
    (tmp_path / "fra").mkdir()
    (tmp_path / "fra" / "wn-data-fra.tab").write_text("\n".join(lines + other + foreign))
    (tmp_path / "zzz").mkdir()  # a later project with the same language is not read
    shutil.copy(OMW / "spa" / "wn-data-spa.tab", tmp_path / "zzz" / "wn-data-fra.tab")
    assert list(omw.omw_lemmas(str(tmp_path), "fra").synsets) == naive_omw("fr")


@pytest.mark.slow
@pytest.mark.parametrize("code", sorted(p.name for p in OMW.iterdir()))
def test_omw_lemmas_are_nltks(code: str, english_wordnet: Any) -> None:
    """NLTK's own OMW reader, as build_multilingual_wordnet.py runs it, reads the same."""
    with open(OMW / code / f"wn-data-{code}.tab", encoding="utf-8") as fh:
        english_wordnet.custom_lemmas(fh, code)
    english_wordnet.provenances[code] = code  # what _load_lang_data registers
    expected = ref.multilingual_wordnet(english_wordnet, code)
    assert list(omw.omw_lemmas(str(OMW), code).synsets) == expected


@pytest.fixture(scope="module")
def english_wordnet() -> Any:
    from metaclip.metadata.wordnet import wordnet_reader

    with wordnet_reader(str(ARCHIVE)) as (reader, _):
        yield reader


def test_title_domains(tmp_path: Path) -> None:
    assert wiki_titles.wiki_of_domain("zh-yue.m", "wikipedia") == "zh_yue"
    assert wiki_titles.wiki_of_domain("fr.d", "wikipedia") is None
    assert wiki_titles.wiki_of_domain("fr.m.d", "all") == "fr"
    damaged = tmp_path / "pageviews-x.gz"  # lines the reference would stop on: skipped
    with gzip.open(damaged, "wb") as fh:
        for src in PAGEVIEWS:
            fh.write(gzip.decompress(src.read_bytes()))
        fh.write(b'"" x 5 0\nfr Bad 5\nfr \xff\xfe 3 0\nfr Paris notanumber 0\n')
    for projects in wiki_titles.TITLE_PROJECTS:
        settings = config(tmp_path, ["fr"], title_projects=projects)
        batch = wiki_titles.count_wiki_titles(
            settings, Stores(), [str(damaged)], str(tmp_path / projects), ["fr", "zh_yue"])
        for wiki in ("fr", "zh_yue"):
            table = pq.read_table(batch.uri(wiki)).to_pylist()
            expected = ref.build_titles(PAGEVIEWS, None if projects == "all" else wiki)[wiki]
            assert {r["title"]: r["views"] for r in table} == expected
        assert batch.stats["malformed_lines"] == 2


# --- checked up front ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"languages": ["xx"]}, "unknown language code 'xx'"),
        ({"languages": "zh,all"}, "'all' stands alone"),
        ({"languages": None}, "wiki_text_root: is for a worldwide build"),
        ({"unigram_fraction": 1.5}, "unigram_fraction: must be between 0 and 1"),
        ({"max_titles": -1}, "max_titles"),
        ({"title_projects": "wiktionary"}, "title_projects: must be one of"),
        ({"extra": ["x.txt"]}, "extra: is for the English build only"),
    ],
)
def test_configuration_mistakes_are_one_line(tmp_path: Path, given: dict, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        config(tmp_path, **{"languages": ["fr"], **given})  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_wiki_text_is_one_languages(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="wiki_text is one language's text"):
        plan_worldwide(config(tmp_path, ["fr", "de"], wiki_text=[str(WIKI / "fr")],
                              wiki_text_root=None), {})  # fmt: skip
    plan = plan_worldwide(config(tmp_path, ["fr"], wiki_text=[str(WIKI / "fr")],
                                 wiki_text_root=None), {})  # fmt: skip
    assert [len(w.text_jobs) for w in plan.wikis] == [1]


def test_selection_counts_only_new_entries_toward_a_cap() -> None:
    caps = Caps(unigram_fraction=1.0, max_unigrams=2, bigram_fraction=1.0)
    words = ["10", "Paris", "Lyon", "Nice"]  # "10" is a seed: skipped, not counted
    chosen = select_wiki(Candidates(unigrams=words, distinct_unigrams=4), caps, no_space=False)
    naive = ref.build_metadata("fr", [], {"unigram": {w: 9 - i for i, w in enumerate(words)},
                                          "bigram": {}, "pmi": []}, {},  # fmt: skip
                               threshold_unigram=1.0, upper_bound_unigram=2)
    assert chosen.entries == list(naive) and chosen.entries[-2:] == ["Paris", "Lyon"]
