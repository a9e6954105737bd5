"""The Parquet schemas: every table the pipeline writes is defined here and only here."""

from __future__ import annotations

import pyarrow as pa

# Which attribute of the <img> the text came from.
TEXT_KEYS = ("alt", "title", "data-image-title")

# One (image, text) pair as extracted from a WAT/WARC record.
PAIRS = pa.schema(
    [
        pa.field("uuid", pa.string(), nullable=False),  # sha224(url)[:24], as MetaCLIP
        pa.field("url", pa.string(), nullable=False),  # absolute http(s) image URL
        pa.field("text", pa.string(), nullable=False),
        pa.field("text_key", pa.string(), nullable=False),
        pa.field("page_url", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # input file URI
        pa.field("record_offset", pa.int64(), nullable=False),  # record start in that file
    ]
)

ENTRY_IDS = pa.field("entry_ids", pa.list_(pa.int32()), nullable=False)

# Language of the text (fastText lid.176); null where identification was not asked for.
LANGUAGE = (pa.field("lang", pa.string()), pa.field("lang_score", pa.float32()))

# A pair with at least one metadata match: its language and sorted, distinct entry ids.
MATCHED = pa.schema([*PAIRS, *LANGUAGE, ENTRY_IDS])

# The worldwide recipe: the metadata language a text was matched in (metaclip.metadata.languages:
# its LID label mapped to a metadata language). Its entry ids are global (all languages' lists
# numbered one after another: metaclip.metadata.multilingual).
METADATA_LANGUAGE = pa.field("language", pa.string(), nullable=False)
MATCHED_WORLDWIDE = pa.schema([*PAIRS, *LANGUAGE, METADATA_LANGUAGE, ENTRY_IDS])

# Curated output: img2dataset reads `url` and `caption` as they are.
CURATED = pa.schema(
    [
        pa.field("url", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("uuid", pa.string(), nullable=False),
        ENTRY_IDS,
        pa.field("text_key", pa.string(), nullable=False),
    ]
)
# The worldwide recipe's curated rows: the same, and the metadata language last.
CURATED_WORLDWIDE = pa.schema([*CURATED, METADATA_LANGUAGE])

# The matched pool for online balancing (metaclip.online): every candidate a curation draws
# from, kept or not, as curated rows plus the pair's 64-bit key (metaclip.online.decide.pair_keys
# of uuid and caption), so that a training loader draws each epoch without hashing text.
PAIR_KEY = pa.field("pair_key", pa.uint64(), nullable=False)
POOL = pa.schema([*CURATED, PAIR_KEY])
POOL_WORLDWIDE = pa.schema([*CURATED_WORLDWIDE, PAIR_KEY])

# Global entry counts: one row per metadata entry.
ENTRY_COUNTS = pa.schema(
    [
        pa.field("entry_id", pa.int32(), nullable=False),
        pa.field("entry", pa.string(), nullable=False),
        pa.field("count", pa.uint64(), nullable=False),
    ]
)
# The worldwide recipe's: each entry's metadata language too (global ids, languages in order).
ENTRY_COUNTS_WORLDWIDE = pa.schema([*ENTRY_COUNTS, METADATA_LANGUAGE])
COUNTS_META_SHA256 = b"metadata_sha256"
COUNTS_META_URI = b"metadata_uri"


def empty(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


def matched_schema(worldwide: bool) -> pa.Schema:
    return MATCHED_WORLDWIDE if worldwide else MATCHED


def pool_from_matched(matched: pa.Table, pair_keys: pa.Array, worldwide: bool = False) -> pa.Table:
    """Matched rows as pool rows: curated columns, then each pair's key."""
    curated = curated_from_matched(matched, worldwide)
    return curated.append_column(PAIR_KEY, pair_keys)


def curated_from_matched(matched: pa.Table, worldwide: bool = False) -> pa.Table:
    """Project matched rows onto the curated schema (text becomes caption; the worldwide
    recipe's rows keep their metadata language)."""
    columns = {
        "url": matched["url"],
        "caption": matched["text"],
        "uuid": matched["uuid"],
        "entry_ids": matched["entry_ids"],
        "text_key": matched["text_key"],
    }
    if worldwide:
        return pa.table({**columns, "language": matched["language"]}, schema=CURATED_WORLDWIDE)
    return pa.table(columns, schema=CURATED)
