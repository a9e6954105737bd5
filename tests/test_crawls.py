"""metaclip.curation.crawls: the crawl list, the choice of crawl, per-crawl paths, the lock."""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import threading
from pathlib import Path

import pytest

from metaclip.curation import crawls
from metaclip.errors import UserError
from metaclip.io import lease

COLLINFO = [  # the shape of index.commoncrawl.org/collinfo.json, deliberately out of order
    {"id": "CC-MAIN-2024-10", "name": "February/March 2024 Index"},
    {"id": "CC-MAIN-2024-22", "name": "May 2024 Index"},
    {"id": "CC-MAIN-2023-50", "name": "November/December 2023 Index"},
    {"id": "CC-NEWS-2024", "name": "not a main crawl"},
    {"name": "no id"},
]


def test_parse_collinfo_keeps_main_crawls_newest_first():
    assert crawls.parse_collinfo(json.dumps(COLLINFO)) == [
        "CC-MAIN-2024-22", "CC-MAIN-2024-10", "CC-MAIN-2023-50",
    ]  # fmt: skip


@pytest.mark.parametrize("blob", ["{", '{"id": "CC-MAIN-2024-22"}'])
def test_malformed_collinfo_is_a_user_error(blob):
    with pytest.raises(UserError, match="collinfo"):
        crawls.parse_collinfo(blob)


def test_read_collinfo_from_a_local_file(tmp_path):
    path = tmp_path / "collinfo.json"
    path.write_text(json.dumps(COLLINFO))
    assert crawls.read_collinfo(str(path))[0] == "CC-MAIN-2024-22"
    with pytest.raises(UserError, match="not found"):
        crawls.read_collinfo(str(tmp_path / "missing.json"))


def test_choose_newest_not_done_within_lookback():
    ids = crawls.parse_collinfo(json.dumps(COLLINFO))
    assert crawls.choose_crawl(ids, lambda c: False) == ["CC-MAIN-2024-22"]
    assert crawls.choose_crawl(ids, lambda c: c == "CC-MAIN-2024-22") == []  # done: skipped
    done = {"CC-MAIN-2024-22"}
    assert crawls.choose_crawl(ids, done.__contains__, lookback=3) == [
        "CC-MAIN-2024-10", "CC-MAIN-2023-50",
    ]  # fmt: skip


def test_done_means_summary_json_in_the_crawls_output(tmp_path):
    root = str(tmp_path / "out")
    assert crawls.crawl_output(root, "CC-MAIN-2024-22") == f"{root}/CC-MAIN-2024-22"
    assert not crawls.is_done(root, "CC-MAIN-2024-22")
    summary = Path(crawls.summary_uri(root, "CC-MAIN-2024-22"))
    summary.parent.mkdir(parents=True)
    summary.write_text("{}")
    assert crawls.is_done(root, "CC-MAIN-2024-22")


def test_wat_inputs_resolve_against_the_data_root(tmp_path):
    listing = Path(crawls.wat_paths_uri(str(tmp_path), "CC-MAIN-2024-22"))
    assert listing == tmp_path / "crawl-data" / "CC-MAIN-2024-22" / "wat.paths.gz"
    listing.parent.mkdir(parents=True)
    rel = [f"crawl-data/CC-MAIN-2024-22/segments/1/wat/f-{i}.warc.wat.gz" for i in range(3)]
    listing.write_bytes(gzip.compress(("\n".join(rel) + "\n").encode()))
    got = crawls.wat_inputs(str(tmp_path), "CC-MAIN-2024-22")
    assert got == [f"{tmp_path}/{r}" for r in rel]
    assert crawls.wat_inputs(str(tmp_path), "CC-MAIN-2024-22", limit=2) == got[:2]
    with pytest.raises(UserError, match="CC-MAIN-2023-50"):
        crawls.wat_inputs(str(tmp_path), "CC-MAIN-2023-50")


def test_s3_style_uris_keep_their_scheme():
    assert crawls.wat_paths_uri("s3://commoncrawl", "CC-MAIN-2024-22") == (
        "s3://commoncrawl/crawl-data/CC-MAIN-2024-22/wat.paths.gz"
    )
    blob = gzip.compress(b"crawl-data/CC-MAIN-2024-22/segments/1/wat/a.warc.wat.gz\n")
    assert crawls.parse_wat_paths(blob, "s3://commoncrawl") == [
        "s3://commoncrawl/crawl-data/CC-MAIN-2024-22/segments/1/wat/a.warc.wat.gz"
    ]


def test_lock_is_exclusive_and_released_by_its_owner_only(tmp_path):
    uri = crawls.lock_uri(str(tmp_path), "CC-MAIN-2024-22")
    taken, mine = lease.try_acquire(uri, "run-a", now=1000.0)
    assert taken and mine.owner == "run-a"
    assert json.loads(Path(uri).read_text())["owner"] == "run-a"
    assert lease.try_acquire(uri, "run-b", now=1001.0) == (False, mine)  # held and fresh
    assert lease.try_acquire(uri, "run-a", now=1002.0)[0]  # a retry of the owner keeps it
    assert not lease.release(uri, "run-b") and Path(uri).exists()
    assert lease.release(uri, "run-a") and not Path(uri).exists()
    assert lease.try_acquire(uri, "run-b", now=1003.0)[0]


def test_stale_locks_are_taken_over(tmp_path):
    uri = crawls.lock_uri(str(tmp_path), "CC-MAIN-2024-22")
    lease.try_acquire(uri, "crashed", now=0.0)
    taken, lock = lease.try_acquire(uri, "new", now=lease.LEASE_TTL_S + 1.0)
    assert taken and lock.owner == "new"  # too old
    taken, lock = lease.try_acquire(uri, "newer", now=1e9, owner_ended=lambda o: o == "new")
    assert taken and lock.owner == "newer"  # its owner's run has ended
    Path(uri).write_text("not json")
    assert lease.try_acquire(uri, "after-garbage", now=1e9)[0]


@pytest.mark.parametrize("stale_lock", [False, True])
def test_only_one_of_many_concurrent_takers_wins(tmp_path, stale_lock):
    uri = crawls.lock_uri(str(tmp_path), "CC-MAIN-2024-22")
    if stale_lock:  # all of them try to take over the same leftover at once
        lease.try_acquire(uri, "crashed", now=0.0)
    wins: list[str] = []
    barrier = threading.Barrier(8)

    def take(owner: str) -> None:
        barrier.wait()
        if lease.try_acquire(uri, owner)[0]:
            wins.append(owner)

    threads = [threading.Thread(target=take, args=(f"run-{i}",)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(wins) == 1 and lease.read_lock(uri).owner == wins[0]


@pytest.mark.slow
def test_lock_on_s3_uses_a_conditional_put():
    """Against moto's S3 server: the second taker is refused by If-None-Match."""
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        opts = {"endpoint_url": f"http://{host}:{port}", "key": "k", "secret": "s"}
        import s3fs

        s3fs.S3FileSystem(**opts).mkdir("crawls-test")
        uri = crawls.lock_uri("s3://crawls-test/out", "CC-MAIN-2024-22")
        assert lease.try_acquire(uri, "run-a", now=10.0, **opts)[0]
        taken, holder = lease.try_acquire(uri, "run-b", now=11.0, **opts)
        assert not taken and holder.owner == "run-a"
        assert lease.release(uri, "run-a", **opts)
        assert lease.try_acquire(uri, "run-b", now=12.0, **opts)[0]
    finally:
        server.stop()


def test_read_collinfo_over_http_from_a_local_server(tmp_path):
    """The default crawl list is an https URL: the same code path, served on loopback."""
    (tmp_path / "collinfo.json").write_text(json.dumps(COLLINFO))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{httpd.server_address[1]}/collinfo.json"
            assert crawls.read_collinfo(url)[0] == "CC-MAIN-2024-22"
        finally:
            httpd.shutdown()
