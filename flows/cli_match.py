"""CLI command `match` (flows/cli.py lists it): what a metadata list matches in some texts.

Prints one JSON line per text, in input order: {"text", "language" (worldwide metadata only),
"entries", "entry_ids"}. A debugging tool for metadata, and the simplest way to check the
matching semantics; it starts no Prefect or Dask. User mistakes: one line, exit 2.
"""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer

from metaclip.errors import UserError

EXIT_USAGE = 2


def match_command(
    texts: Annotated[
        str, typer.Argument(help="A text file (one text per line) or a Parquet file.")
    ],
    metadata: Annotated[
        str,
        typer.Option(
            help="A metadata list (English semantics) or a worldwide metadata's languages.json "
            "or folder (MetaCLIP 2 semantics, per language)."
        ),
    ],
    language: Annotated[
        str | None,
        typer.Option(
            help="Worldwide metadata: match every text against this language's list "
            "(default: each text's language from fastText lid.176)."
        ),
    ] = None,
    column: Annotated[str, typer.Option(help="The text column of a Parquet file.")] = "text",
) -> None:
    """Print the metadata entries each text matches, as JSON lines."""
    from metaclip.matching.explain import match_texts, read_texts

    try:
        records = match_texts(read_texts(texts, column), metadata, language)
        out = sys.stdout.buffer
        for record in records:
            out.write(orjson.dumps(record) + b"\n")
        out.flush()
    except UserError as exc:  # MetadataError included
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(code=EXIT_USAGE) from None
