"""Inputs and outputs by URI: WordNet over https, n-grams and titles on s3:// (moto server)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from metaclip.config import BuildMetadataConfig, Stores
from metaclip.io import storage
from metaclip.metadata.build import build_metadata_files
from metaclip.metadata.load import load_metadata
from metaclip.metadata.ngrams import count_text_batch
from metaclip.metadata.pmi import reduce_unigram_partition, unigram_source
from metaclip.metadata.titles import count_title_batch, title_source
from metaclip.metadata.wordnet import wordnet_names

DATA = Path(__file__).parent / "data" / "wordnet"
ARCHIVE = DATA / "wordnet-3.0-nltk-minimal.tar.xz"
# Servers on loopback (http, moto's S3) and a WordNet build from the archive: seconds.
pytestmark = pytest.mark.slow


@pytest.fixture
def http_url() -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(DATA))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_wordnet_archive_over_http(http_url: str) -> None:
    names = wordnet_names(f"{http_url}/{ARCHIVE.name}", pos="r")
    assert names.synsets == 3_621 and names.version == "3.0"
    assert names.inputs[0].sha256 == hashlib.sha256(ARCHIVE.read_bytes()).hexdigest()


@pytest.fixture
def s3() -> Iterator[dict]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    opts = {
        "key": "test",
        "secret": "test",
        "client_kwargs": {"endpoint_url": f"http://{host}:{port}", "region_name": "eu-west-1"},
    }
    fs, _ = storage.filesystem("s3://bucket", **opts)
    if not fs.exists("bucket"):  # moto's state is per process: a later server still has it
        fs.mkdir("bucket")
    yield opts
    server.stop()


def test_sources_read_and_write_s3(s3: dict, tmp_path: Path) -> None:
    text = b"The ice cream melts.\nIce cream, again: ice cream!\n" * 60
    pageviews = gzip.compress(b"en Ice_cream 80 0\nen Main_Page 10 0\n")
    storage.write_bytes_atomic("s3://bucket/in/text/wiki_00", text, **s3)
    storage.write_bytes_atomic("s3://bucket/in/pageviews-20240101-000000.gz", pageviews, **s3)
    files = storage.expand_inputs(["s3://bucket/in/text"], **s3)
    s = BuildMetadataConfig("s3://bucket/out", "s3://bucket/work", partitions=2)
    stores = Stores(inputs=s3, output=s3)
    batch = count_text_batch(s, stores, files, "s3://bucket/work/b0")
    assert batch.inputs[0].sha256 == hashlib.sha256(text).hexdigest()
    parts = [
        reduce_unigram_partition(s, stores, [batch], p, "s3://bucket/work/st") for p in range(2)
    ]
    uni = unigram_source(s, stores, parts, [batch], "s3://bucket/out/sources/unigram.parquet")
    titles = count_title_batch(
        s, stores, ["s3://bucket/in/pageviews-20240101-000000.gz"], "s3://bucket/work/t.parquet"
    )
    title = title_source(s, stores, [titles], {}, "s3://bucket/out/sources/title.parquet")
    prov = build_metadata_files(
        [uni, title], "s3://bucket/out", input_options=s3, output_options=s3
    )
    meta = load_metadata("s3://bucket/out/metadata.json", **s3)
    # 'cream' and 'ice' are counted 180 and 120 times; then the title
    assert meta.entries[100:] == ["cream", "ice", "Ice cream"]
    assert prov["sources"]["unigram"]["entries"] == 2 and meta.sha256 == prov["sha256"]
    assert storage.exists("s3://bucket/out/provenance.json", **s3)


def test_inputs_and_output_have_their_own_options(http_url: str, s3: dict) -> None:
    """A public input over https (no options: the S3 endpoint option would break the HTTP
    client) and a private output on S3, in one call."""
    from metaclip.metadata.wordnet import wordnet_source

    uri = "s3://bucket/out/sources/wordnet.parquet"
    settings = BuildMetadataConfig("s3://bucket/out", "s3://bucket/out/work",
                                   wordnet=f"{http_url}/{ARCHIVE.name}")  # fmt: skip
    source = wordnet_source(settings, Stores(inputs={}, output=s3), uri, pos="r")
    assert source.entries > 3000 and source.intact(s3)
    assert storage.read_parquet(uri, **s3).num_rows == source.entries
