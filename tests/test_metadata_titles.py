"""Title source: hourly pageview rows counted the way MetaCLIP's builder counts them."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow.parquet as pq

from metaclip.config import BuildMetadataConfig, Stores
from metaclip.metadata.titles import count_title_batch, parse_pageview_line, title_source


def _pageviews(path: Path, lines: list[bytes]) -> str:
    with gzip.open(path, "wb") as fh:
        fh.write(b"".join(line + b"\n" for line in lines))
    return str(path)


HOUR_0 = [
    b"en Main_Page 300 0",
    b"en Main_Page 20 0",  # under 50 in this hour: not counted at all
    b"en.m Main_Page 500 0",  # mobile: another domain code
    b"en Talk:Main_Page 900 0",  # ':' -> another namespace
    b"de Berlin 999 0",
    b"en Hot_dog 60 0",
    b"en Caf\xc3\xa9 80 0",
    b"en broken line",
    b"en Bad\xff 100 0",
]
HOUR_1 = [b"en Hot_dog 55 0", b"en Hot_dog 49 0", b"en Ice_cream 69 0", b"en Main_Page 50 0"]


def test_hourly_rows_count_from_50_views_and_sum_over_files(tmp_path: Path) -> None:
    files = [
        _pageviews(tmp_path / "pageviews-20240101-000000.gz", HOUR_0),
        _pageviews(tmp_path / "pageviews-20240101-010000.gz", HOUR_1),
    ]
    s = BuildMetadataConfig(str(tmp_path), str(tmp_path / "work"), min_title_views=70)
    batches = [
        count_title_batch(s, Stores(), [f], str(tmp_path / f"b{i}.parquet"))
        for i, f in enumerate(files)
    ]
    uri = str(tmp_path / "title.parquet")
    source = title_source(s, Stores(), batches, {"domains": ["en"]}, uri)
    rows = pq.read_table(uri).to_pylist()
    assert rows == [
        {"entry": "Main Page", "count": 350},
        {"entry": "Hot dog", "count": 115},
        {"entry": "Café", "count": 80},
    ]  # Ice cream: 69 < 70
    assert source.stats["malformed_lines"] == 2
    assert source.stats["distinct_titles"] == 4
    assert len(source.inputs) == 2 and source.params["min_views"] == 70


def test_other_domains_and_thresholds_are_options(tmp_path: Path) -> None:
    f = _pageviews(tmp_path / "p.gz", HOUR_0)
    s = BuildMetadataConfig(
        str(tmp_path), str(tmp_path / "work"), pageview_domains=("en", "en.m"), min_hourly_views=1
    )
    batch = count_title_batch(s, Stores(), [f], str(tmp_path / "b.parquet"))
    views = {r["title"]: r["views"] for r in pq.read_table(batch.uri).to_pylist()}
    assert views["Main Page"] == 820 and "Berlin" not in views


def test_pageview_line_parsing() -> None:
    assert parse_pageview_line(b"en Ice_cream 69 0\n", (b"en ",)) == ("Ice cream", 69)
    assert parse_pageview_line(b"en.m Ice_cream 69 0", (b"en ",)) is None
    assert parse_pageview_line(b"de Eis 3 0", (b"en ", b"de ")) == ("Eis", 3)
