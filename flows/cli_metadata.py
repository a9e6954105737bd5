"""CLI commands `build-metadata` and `inspect-metadata` (flows/cli.py lists them)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from metaclip.config import BuildMetadataConfig
from metaclip.errors import UserError
from metaclip_prefect.flows.cli_common import Debug, FlowCall, OptionsJSON, credentials_type

_URIS = "Path, glob, folder or URI (s3://, https://); repeat for more."
Credentials = credentials_type("inputs, output")
BUILD = FlowCall(
    "metaclip_prefect.flows.build_metadata:build_metadata",
    rename={"pageview_domain": "pageview_domains", "workers": "n_workers"},
    cli_only=("debug", "language"),  # --language L is --languages L
)
_B = BuildMetadataConfig  # the defaults are the configuration's (metaclip.config), written there


def _print_summary(prov: dict[str, Any], output: str) -> None:
    from metaclip.metadata.inspection import source_table

    table = Table(title=f"{output}/metadata.json: {prov['total']:,} entries")
    for column in ("source", "kept", "added", "first id"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for row in source_table(prov):
        table.add_row(
            row["source"], f"{row['kept']:,}", f"{row['added']:,}", f"{row['first_id']:,}"
        )
    console = Console()
    console.print(table)
    console.print(f"sha256 {prov['sha256']}")


def _print_languages(result: dict[str, Any]) -> None:
    table = Table(title=f"{result['index']}: {len(result['languages'])} languages")
    for column in ("language", "entries", "Wikipedias", "sha256"):
        table.add_column(column, justify="right" if column == "entries" else "left")
    for language, prov in sorted(result["languages"].items()):
        wikis = ", ".join(w["wiki"] for w in prov.get("wikis", [])) or "-"
        table.add_row(language, f"{prov['total']:,}", wikis, prov["sha256"][:16])
    console = Console()
    console.print(table)
    console.print(f"index sha256 {result['index_sha256']}")


def _one_language(language: str | None, languages: str | None) -> str | None:
    if language and languages:
        from metaclip_prefect.flows.cli_common import fail

        fail("give --language or --languages, not both")
    return language or languages


def build_metadata_command(
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="Folder (or URI) for metadata.json, provenance.json and sources/.",
        ),
    ],
    wordnet: Annotated[
        str | None,
        typer.Option(
            help="WordNet: 'nltk' (NLTK's download), a WordNet 3.0 folder or an archive of one."
        ),
    ] = None,
    wiki_text: Annotated[
        list[str] | None,
        typer.Option(help=f"Wikipedia text dump (plain text or WikiExtractor JSON lines). {_URIS}"),
    ] = None,
    text_format: Annotated[str, typer.Option(help="auto, text or jsonl.")] = _B.text_format,
    unigram_counts: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Precomputed unigram counts ('word<TAB|space|;>count' lines or Parquet). {_URIS}"
        ),
    ] = None,
    bigram_counts: Annotated[
        list[str] | None,
        typer.Option(help=f"Precomputed bigram counts ('w1 w2 count' lines or Parquet). {_URIS}"),
    ] = None,
    count_layout: Annotated[
        str, typer.Option(help="Where the count is on a count-file line: auto, last or first.")
    ] = _B.count_layout,
    pageviews: Annotated[
        list[str] | None,
        typer.Option(help=f"Wikimedia hourly pageview files (pageviews-*.gz). {_URIS}"),
    ] = None,
    pageview_domain: Annotated[
        list[str] | None,
        typer.Option(help="Pageview domain codes to read (default: en, as MetaCLIP)."),
    ] = None,
    extra: Annotated[
        list[str] | None,
        typer.Option(help="Extra entry list to add (JSON list or .txt, one per line); repeatable."),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            help="Extend this metadata.json (e.g. MetaCLIP's published one): its entries keep "
            "their ids."
        ),
    ] = None,
    min_unigram_count: Annotated[
        int, typer.Option(help="Keep unigrams counted this often.")
    ] = _B.min_unigram_count,
    min_bigram_pmi: Annotated[
        float, typer.Option(help="Keep bigrams with this PMI or more.")
    ] = _B.min_bigram_pmi,
    min_title_views: Annotated[
        int, typer.Option(help="Keep titles with this many views.")
    ] = _B.min_title_views,
    min_hourly_views: Annotated[
        int,
        typer.Option(help="Count an hourly pageview row only from this many views (MetaCLIP: 50)."),
    ] = _B.min_hourly_views,
    skip: Annotated[
        list[str] | None,
        typer.Option(help="Leave out a source: wordnet, unigram, bigram or title; repeatable."),
    ] = None,
    max_entries: Annotated[
        int | None, typer.Option(help="Stop adding entries at this many (default: no limit).")
    ] = None,
    partitions: Annotated[
        int, typer.Option(help="Hash partitions for n-gram counts.")
    ] = _B.partitions,
    batch_mb: Annotated[
        int, typer.Option(help="Input megabytes per counting task.")
    ] = _B.batch_mb,
    max_items: Annotated[
        int, typer.Option(help="Distinct n-grams a counting task holds before spilling to disk.")
    ] = _B.max_items,
    work_dir: Annotated[
        str | None,
        typer.Option(
            help="Intermediate counts and task results, a folder inside OUTPUT (default: "
            "OUTPUT/work); reused by reruns."
        ),
    ] = None,
    dask_address: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: a local cluster).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Local cluster worker processes.")] = None,
    refresh: Annotated[
        bool, typer.Option(help="Ignore the stored task results (finished outputs are reused).")
    ] = _B.refresh,
    input_options: Annotated[
        str | None,
        typer.Option(help="fsspec options of every input, as a JSON object (no credentials)."),
    ] = None,
    output_options: OptionsJSON = None,
    credentials: Credentials = None,
    language: Annotated[
        str | None,
        typer.Option(
            help="Build one language's list (MetaCLIP 2): a metadata language or Wikipedia code; "
            "writes OUTPUT/L/metadata.json and OUTPUT/languages.json.",
            rich_help_panel="Worldwide",
        ),
    ] = None,
    languages: Annotated[
        str | None,
        typer.Option(
            help="Build several languages' lists: codes separated by commas, or 'all' (every "
            "language with inputs).", rich_help_panel="Worldwide",
        ),
    ] = None,
    wiki_text_root: Annotated[
        str | None,
        typer.Option(
            help="Folder of WikiExtractor output per Wikipedia: ROOT/<wiki code>/ (or "
            "<code>_text/).", rich_help_panel="Worldwide",
        ),
    ] = None,
    english_metadata: Annotated[
        str | None,
        typer.Option(
            help="English list to copy as OUTPUT/en/metadata.json (MetaCLIP 1's, as MetaCLIP 2 "
            "does); without it English is built by the English recipe.",
            rich_help_panel="Worldwide",
        ),
    ] = None,
    unigram_fraction: Annotated[
        float, typer.Option(help="Unigrams kept: this share of the distinct unigrams.",
                            rich_help_panel="Worldwide")
    ] = _B.unigram_fraction,
    max_unigrams: Annotated[
        int, typer.Option(help="At most this many unigrams.", rich_help_panel="Worldwide")
    ] = _B.max_unigrams,
    bigram_fraction: Annotated[
        float, typer.Option(help="Bigrams kept: this share of the unigrams kept.",
                            rich_help_panel="Worldwide")
    ] = _B.bigram_fraction,
    max_bigrams: Annotated[
        int, typer.Option(help="At most this many bigrams.", rich_help_panel="Worldwide")
    ] = _B.max_bigrams,
    title_fraction: Annotated[
        float, typer.Option(help="Titles kept: this share of the distinct titles.",
                            rich_help_panel="Worldwide")
    ] = _B.title_fraction,
    max_titles: Annotated[
        int, typer.Option(help="At most this many titles.", rich_help_panel="Worldwide")
    ] = _B.max_titles,
    max_entry_length: Annotated[
        int, typer.Option(help="Drop longer entries (characters).", rich_help_panel="Worldwide")
    ] = _B.max_entry_length,
    title_projects: Annotated[
        str,
        typer.Option(
            help="Pageview domains of a Wikipedia: 'wikipedia' (W, W.m) or 'all' (every project "
            "of the language, as MetaCLIP 2's code).", rich_help_panel="Worldwide",
        ),
    ] = _B.title_projects,
    debug: Debug = False,
) -> None:
    """Build MetaCLIP's metadata entry list from WordNet, Wikipedia n-grams and titles; with
    --language or --languages, MetaCLIP 2's per-language lists."""
    options = dict(locals())
    options["languages"] = _one_language(language, languages)
    result = BUILD.run(options)
    if "index" in result:
        _print_languages(result)
    else:
        _print_summary(result, output)


def inspect_metadata_command(
    output: Annotated[str, typer.Argument(help="A folder written by build-metadata.")],
    entry: Annotated[
        list[str] | None,
        typer.Option(help="Show this entry's id and the sources holding it; repeatable."),
    ] = None,
    output_options: OptionsJSON = None,
) -> None:
    """Summarise a built metadata folder, or tell where given entries come from."""
    from metaclip.config import parse_options
    from metaclip.metadata.inspection import lookup, read_provenance
    from metaclip_prefect.flows.cli_common import fail, json_option

    try:
        opts = parse_options("--output-options", json_option("--output-options", output_options))
        prov = read_provenance(output, opts)
        infos = lookup(output, entry, opts) if entry else []
    except UserError as exc:
        fail(str(exc))
    _print_summary(prov, output)
    for info in infos:
        where = "absent" if info.entry_id is None else f"id {info.entry_id} (from {info.block})"
        found = ", ".join(f"{k} {v}" for k, v in info.sources.items()) or "in no source list"
        typer.echo(f"{info.entry!r}: {where}; {found}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`, as flows/cli.py lists them."""
    from metaclip_prefect.flows.cli import register as register_commands

    register_commands(app, __name__)
