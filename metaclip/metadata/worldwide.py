"""Writing a worldwide metadata folder (metaclip.metadata.multilingual owns its layout): each
language's metadata.json and provenance.json, English copied from a given list, and the index.

A language's list is selected Wikipedia by Wikipedia (metaclip.metadata.selection) from the
source lists the build wrote under `<output>/<language>/sources/<wiki>/`, then united. Its
provenance.json has the English build's format (metaclip.metadata.build) and more:
- `language`, and `wikis`: per Wikipedia its segmenter (name, version, MetaCLIP 2's tool), the
  caps applied and the entries its list added to the language's;
- `blocks`: the id ranges, named by source ("wordnet", ...) for the language's own Wikipedia
  and "<wiki>/<source>" for the others; `sources` the same names, each with its parameters,
  inputs, statistics, cap and counts; `overlaps` between the candidates each source looked at.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from metaclip import PIPELINE_VERSION, __version__
from metaclip.errors import MetadataError, UserError
from metaclip.io import storage
from metaclip.metadata import multilingual
from metaclip.metadata.build import PROVENANCE_FORMAT, inputs_record
from metaclip.metadata.languages import is_no_space
from metaclip.metadata.load import parse_metadata
from metaclip.metadata.segmenters import SEGMENTERS
from metaclip.metadata.selection import Block, Candidates, Caps, Selection, select_wiki, union
from metaclip.metadata.sources import SourceList, iter_rows
from metaclip.metadata.text import PUNCTUATION, SEED_ENTRIES, TOKENIZER_VERSION

if TYPE_CHECKING:  # metaclip.config imports metaclip.metadata's constants
    from metaclip.config import BuildMetadataConfig, Stores


@dataclass(frozen=True)
class WikiSources:
    """A Wikipedia's finished sources, as the merge reads them."""

    wiki: str
    segmenter: str | None = None
    segmenter_version: str | None = None
    sources: list[SourceList] = field(default_factory=list)

    def source(self, name: str) -> SourceList | None:
        return next((s for s in self.sources if s.name == name), None)


def caps_of(settings: BuildMetadataConfig) -> Caps:
    return Caps(
        unigram_fraction=settings.unigram_fraction, max_unigrams=settings.max_unigrams,
        bigram_fraction=settings.bigram_fraction, max_bigrams=settings.max_bigrams,
        title_fraction=settings.title_fraction, max_titles=settings.max_titles,
        min_bigram_pmi=settings.min_bigram_pmi, max_length=settings.max_entry_length,
    )  # fmt: skip


def _column(source: SourceList | None, opts: dict[str, Any]) -> Iterator[str]:
    if source is not None:
        for (entry,) in iter_rows(source.uri, ["entry"], opts):
            yield entry


def _bigrams(source: SourceList | None, opts: dict[str, Any]) -> Iterator[tuple[str, float]]:
    if source is not None:
        yield from iter_rows(source.uri, ["entry", "pmi"], opts)  # type: ignore[misc]


def candidates(wiki: WikiSources, opts: dict[str, Any]) -> Candidates:
    """A Wikipedia's source lists as the selection reads them (lazily, in rank order)."""
    unigram, title = wiki.source("unigram"), wiki.source("title")
    return Candidates(
        wordnet=_column(wiki.source("wordnet"), opts),
        unigrams=_column(unigram, opts),
        distinct_unigrams=unigram.stats.get("distinct_unigrams", 0) if unigram else 0,
        bigrams=_bigrams(wiki.source("bigram"), opts),
        titles=_column(title, opts),
        distinct_titles=title.stats.get("distinct_titles", 0) if title else 0,
    )


def _name(wiki: str, source: str, first: bool) -> str:
    return source if first else f"{wiki}/{source}"


def _source_records(
    wiki: WikiSources, selection: Selection, first: bool, folder: str, opts: dict[str, Any]
) -> dict[str, Any]:
    blocks = {b.source: b for b in selection.blocks}
    out = {}
    for source in wiki.sources:
        block: Block = blocks[source.name]
        name = _name(wiki.wiki, source.name, first)
        out[name] = {
            "entry_list": source.uri,
            "params": source.params,
            "inputs": inputs_record(name.replace("/", "-"), source.inputs, folder, opts),
            "stats": source.stats,
            "entries": source.entries,
            "cap": block.cap,
            "capped": block.capped,
            "valid_entries": len(block.looked_at),
            "dropped_empty_or_punctuation": block.dropped,
            "added": block.added,
            "truncated": 0,
        }
    return out


def _wiki_record(wiki: WikiSources, selection: Selection, added: int) -> dict[str, Any]:
    info = SEGMENTERS.get(wiki.segmenter or "")
    segmenter = {"name": wiki.segmenter, "version": wiki.segmenter_version,
                 "metaclip2": info.reference if info else None}  # fmt: skip
    if wiki.segmenter is None:
        segmenter = {"name": "space-delimited", "version": TOKENIZER_VERSION,
                     "metaclip2": "simple_tokenizer"}  # fmt: skip
    caps = {b.source: b.cap for b in selection.blocks if b.cap is not None}
    return {"wiki": wiki.wiki, "segmenter": segmenter, "caps": caps,
            "entries": len(selection.entries), "added_to_language": added}  # fmt: skip


def _rules(caps: Caps) -> dict[str, Any]:
    return {
        "seeds": f"{SEED_ENTRIES[0]}..{SEED_ENTRIES[-1]}",
        "cleaning": "strip whitespace; drop empty or punctuation-only entries, and entries "
        f"over {caps.max_length} characters (WordNet's excepted, as MetaCLIP 2)",
        "punctuation": "".join(sorted(PUNCTUATION)),
        "order": "per Wikipedia: seeds; wordnet, unigram, bigram, title, each in rank order up "
        "to its cap; then the other Wikipedias' new entries",
        "selection": "MetaCLIP 2 build_metadata.py (caps count new entries only)",
        "caps": {**caps.__dict__, "bigram_rule": "int(unigrams added * bigram_fraction)",
                 "pmi_rule": "pmi > min_bigram_pmi"},  # fmt: skip
        "max_entries": None,
    }


def _overlaps(blocks: dict[str, set[str]]) -> dict[str, dict[str, int]]:
    return {a: {b: len(sa & sb) for b, sb in blocks.items() if b != a} for a, sa in blocks.items()}


def language_provenance(
    language: str,
    wikis: Sequence[WikiSources],
    selections: Sequence[Selection],
    entries: list[str],
    sha256: str,
    caps: Caps,
    folder: str,
    opts: dict[str, Any],
) -> dict[str, Any]:
    """A language's provenance.json (module docstring)."""
    _, blocks = union([(w.wiki, s) for w, s in zip(wikis, selections, strict=True)])
    firsts = {w.wiki: i == 0 for i, w in enumerate(wikis)}
    sources: dict[str, Any] = {}
    looked_at: dict[str, set[str]] = {}
    for wiki, selection in zip(wikis, selections, strict=True):
        sources.update(_source_records(wiki, selection, firsts[wiki.wiki], folder, opts))
        for b in selection.blocks:
            looked_at[_name(wiki.wiki, b.source, firsts[wiki.wiki])] = b.looked_at
    added = {w.wiki: sum(b.entries for b in blocks if b.wiki == w.wiki) for w in wikis}
    return {
        "format": PROVENANCE_FORMAT,
        "metadata": "metadata.json",
        "language": language,
        "total": len(entries),
        "sha256": sha256,
        "builder": {"package": "metaclip-prefect", "version": __version__,
                    "pipeline_version": PIPELINE_VERSION, "tokenizer_version": TOKENIZER_VERSION},
        "rules": _rules(caps),
        "base": None,
        "wikis": [_wiki_record(w, s, added[w.wiki]) for w, s in zip(wikis, selections,
                                                                       strict=True)],
        "blocks": [{"source": _name(b.wiki, b.source, firsts[b.wiki]), "first_id": b.first_id,
                    "entries": b.entries} for b in blocks if b.entries or firsts[b.wiki]],
        "sources": sources,
        "overlaps": _overlaps({k: v for k, v in looked_at.items() if k != "seeds"}),
    }  # fmt: skip


def merge_language(
    settings: BuildMetadataConfig, stores: Stores, language: str, wikis: list[WikiSources],
    folder: str,
) -> dict[str, Any]:  # fmt: skip
    """Select each Wikipedia's list from its sources, unite them and write `folder`'s
    metadata.json and provenance.json; the language's index row and its provenance."""
    opts, caps = stores.output, caps_of(settings)
    selections = [
        select_wiki(candidates(w, opts), caps, is_no_space(w.wiki))
        for w in wikis
    ]
    entries, _ = union([(w.wiki, s) for w, s in zip(wikis, selections, strict=True)])
    data = orjson.dumps(entries)
    sha256 = hashlib.sha256(data).hexdigest()
    prov = language_provenance(language, wikis, selections, entries, sha256, caps, folder, opts)
    _write(folder, data, prov, opts)
    return {"language": language, "path": f"{language}/metadata.json", "sha256": sha256,
            "entries": len(entries), "provenance": prov}  # fmt: skip


def _write(folder: str, data: bytes, prov: dict[str, Any], opts: dict[str, Any]) -> None:
    storage.write_bytes_atomic(storage.join(folder, "metadata.json"), data, **opts)
    body = orjson.dumps(prov, option=orjson.OPT_INDENT_2)
    storage.write_bytes_atomic(storage.join(folder, "provenance.json"), body, **opts)


def copy_english(
    settings: BuildMetadataConfig, stores: Stores, uri: str, folder: str
) -> dict[str, Any]:
    """Copy a given English list (MetaCLIP 1's metadata.json, as MetaCLIP 2 does) to `folder`:
    a JSON list as its bytes are, a .txt list as JSON; with a provenance naming its source."""
    try:
        raw = storage.read_bytes(uri, **stores.inputs)
        entries = parse_metadata(raw, uri)
    except FileNotFoundError as exc:
        raise UserError(f"english_metadata not found: {uri}") from exc
    except MetadataError as exc:
        raise UserError(f"english_metadata: {exc}") from exc
    data = orjson.dumps(entries) if uri.endswith(".txt") else raw
    sha256 = hashlib.sha256(data).hexdigest()
    prov = {
        "format": PROVENANCE_FORMAT, "metadata": "metadata.json", "language": "en",
        "total": len(entries), "sha256": sha256,
        "builder": {"package": "metaclip-prefect", "version": __version__,
                    "pipeline_version": PIPELINE_VERSION},
        "copied_from": {"uri": uri, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()},
        "rules": {"english": "MetaCLIP 1's list, copied (as MetaCLIP 2 does)"},
        "base": None, "blocks": [{"source": "copy", "first_id": 0, "entries": len(entries)}],
        "sources": {}, "overlaps": {},
    }  # fmt: skip
    _write(folder, data, prov, stores.output)
    return {"language": "en", "path": "en/metadata.json", "sha256": sha256,
            "entries": len(entries), "provenance": prov}  # fmt: skip


def write_language_index(
    settings: BuildMetadataConfig, stores: Stores, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """`<output>/languages.json` listing the languages written (`rows`: language and path),
    each row read back from its list; rows of other languages an earlier run wrote into the
    same output are kept while their lists still match the index."""
    folder, opts = settings.output, stores.output
    built = {r["language"]: r["path"] for r in rows}
    lists = [multilingual.language_list(folder, lang, path, **opts) for lang, path in built.items()]
    lists += [item for item in _earlier(folder, opts) if item.language not in built]
    sha256 = multilingual.write_index(folder, lists, **opts)
    return {"index": storage.join(folder, multilingual.INDEX_NAME), "sha256": sha256,
            "languages": sorted(item.language for item in lists)}  # fmt: skip


def _earlier(folder: str, opts: dict[str, Any]) -> list[multilingual.LanguageList]:
    """The index rows of an earlier run whose lists are unchanged."""
    try:
        index = multilingual.load_index(folder, **opts)
    except MetadataError:
        return []
    kept = []
    for item in index.lists:
        try:
            multilingual.load_language(index, item.language, **opts)
        except (MetadataError, FileNotFoundError):
            continue
        kept.append(item)
    return kept
