"""The download round trip: a pool Parquet -> img2dataset -> webdataset shards -> read back.

Two pools: one made here to the POOL schema (real COCO captions, pair keys at the extremes of
uint64), and a real one, written by the pipeline's own stages from the real WAT and WARC
fixtures (tests/stages.py), whose URLs are rewritten to the loopback server; its shards are read
back through the online balancing stage (metaclip.online.webdataset_stage).

A pool (metaclip.io.schemas.POOL: url, caption, uuid, entry_ids, text_key, pair_key) whose URLs
point at a loopback HTTP server is downloaded by img2dataset (the real CLI, in a subprocess,
webdataset output, the pool's own columns saved beside each image), and the shards are read back
with webdataset: every row comes back once, with its uuid, caption, entry_ids (a JSON list of
ints) and pair_key (an exact JSON integer, the full uint64 range) and an image Pillow decodes.
Nothing may leave the machine: a trap proxy records any request that is not for the loopback
server, and img2dataset's wandb logging and albumentations' update check are off.

The images are real files shipped by installed packages, read at test time (nothing is copied
into the repository; a package that is absent just contributes nothing):
  sklearn/datasets/images/china.jpg, flower.jpg  (scikit-learn; its README.txt there: Flickr
      photographs, Creative Commons Attribution 2.0, "Some rights reserved by danielbuechele",
      retrieved 2011 by Robert Layton; flower.jpg's source link is flickr.com/photos/vultilion)
  matplotlib/mpl-data/sample_data/grace_hopper.jpg  (a US Navy photograph, public domain),
      sample_data/*.png and mpl-data/images/*.png  (matplotlib's logo and toolbar icons,
      distributed with matplotlib under its license; no separate note is shipped)
The photographs (china, flower, grace_hopper) are also cut into TILES crops (seeded boxes of
32-160 px, saved as JPEG with Pillow), so that a few hundred distinct real images are served.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.util
import io
import json
import os
import random
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from metaclip.io.schemas import POOL
from metaclip.online.decide import CURATION_DRAW, OnlineBalance
from metaclip.online.pool import read_pool
from tests.stages import curate_plain, make_inputs, make_metadata, run_curated, run_pool

wds = pytest.importorskip("webdataset")
pytest.importorskip("img2dataset")

pytestmark = pytest.mark.slow  # a subprocess (img2dataset and its spawned worker): 10-25 s

CAPTIONS = Path(__file__).parent / "data" / "captions" / "coco_val2017_5000.txt"
# (package, path inside it): photographs, also cut into tiles; then whole files only.
PHOTOS = [("sklearn", "datasets/images/china.jpg"), ("sklearn", "datasets/images/flower.jpg"),
          ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")]  # fmt: skip
OTHER_GLOBS = [("matplotlib", "mpl-data/sample_data/*.png"),
               ("matplotlib", "mpl-data/images/*.png")]  # fmt: skip
TILES = 300
PER_SHARD = 100  # a power of ten: img2dataset's sample key is then the pool row's index
IMAGE_SIZE = 64
SAVED_COLUMNS = ["uuid", "entry_ids", "text_key", "pair_key"]  # the pool's, besides url/caption
UINT64_MAX = 2**64 - 1


# --- real images, served on loopback --------------------------------------------------------------


def _package_dir(name: str) -> Path | None:
    """Where an installed package lies, without importing it (None where it is absent)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _shipped(package: str, pattern: str) -> list[Path]:
    root = _package_dir(package)
    return sorted(p for p in root.glob(pattern) if p.is_file()) if root else []


def _write_images(folder: Path) -> list[str]:
    """The real images (whole files, then tiles of the photographs) written into folder, no two
    with the same bytes; returns their file names in pool order."""
    photos = [(package, p) for package, path in PHOTOS for p in _shipped(package, path)]
    others = [(package, p) for package, glob in OTHER_GLOBS for p in _shipped(package, glob)]
    assert photos, "matplotlib (a runtime dependency) ships sample_data/grace_hopper.jpg"
    names: list[str] = []
    seen: set[str] = set()

    def add(name: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        if digest not in seen:
            seen.add(digest)
            (folder / name).write_bytes(data)
            names.append(name)

    for package, path in photos + others:
        add(f"{package}-{path.parent.name}-{path.name}", path.read_bytes())
    opened = []
    for _, path in photos:
        with Image.open(path) as image:
            opened.append(image.convert("RGB"))
    rng = random.Random(0)
    for i in range(TILES):
        image = opened[i % len(opened)]
        w, h = rng.randint(32, 160), rng.randint(32, 160)
        x, y = rng.randrange(image.width - w + 1), rng.randrange(image.height - h + 1)
        buffer = io.BytesIO()
        image.crop((x, y, x + w, y + h)).save(buffer, "JPEG", quality=90)
        add(f"tile-{i:03d}.jpg", buffer.getvalue())
    return names


class _Files(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; records every path asked for."""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.server.asked.append(self.path)
        super().do_GET()


class _Trap(http.server.BaseHTTPRequestHandler):
    """The proxy for everything that is not loopback: records the request and refuses it."""

    def log_message(self, format, *args):
        pass

    def _refuse(self):
        self.server.asked.append(self.requestline)
        self.send_error(403, "offline test")

    do_GET = do_POST = do_HEAD = do_PUT = do_CONNECT = _refuse


@contextmanager
def _serving(handler) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server in a thread: its base URL and the list of requests it saw."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.asked = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- the pool -------------------------------------------------------------------------------------


def _pool_table(urls: list[str]) -> pa.Table:
    """The pool img2dataset downloads, one row per URL (in this order), as POOL.

    Real captions (COCO val2017); a uuid as MetaCLIP's (sha224 of the URL, 24 hex digits);
    sorted distinct entry ids, 1 to 4 of them, up to the size of a MetaCLIP metadata list; a
    text_key; pair_keys that span the uint64 range (the extremes included, about half of them
    above 2**63, where a signed or floating-point reading would go wrong).
    """
    n = len(urls)
    captions = CAPTIONS.read_text(encoding="utf-8").splitlines()[:n]
    assert len(captions) == n
    rng = random.Random(1)
    entry_ids = [sorted(rng.sample(range(500_000), rng.randint(1, 4))) for _ in range(n)]
    pair_keys = [0, UINT64_MAX, 2**63, 2**63 - 1] + [rng.getrandbits(64) for _ in range(n - 4)]
    columns = {
        "url": urls,
        "caption": captions,
        "uuid": [hashlib.sha224(u.encode()).hexdigest()[:24] for u in urls],
        "entry_ids": entry_ids,
        "text_key": [("alt", "title", "data-image-title")[i % 3] for i in range(n)],
        "pair_key": pair_keys[:n],
    }
    return pa.Table.from_pydict(columns, schema=POOL)


# --- img2dataset ----------------------------------------------------------------------------------


def _img2dataset(pool: Path, output: Path, proxy: str) -> None:
    """img2dataset's CLI (its console script) on the pool, offline: every proxy is the trap."""
    cli = Path(sys.executable).with_name("img2dataset")
    assert cli.is_file(), f"img2dataset's console script is not beside {sys.executable}"
    cmd = [
        str(cli),
        f"--url_list={pool}",
        "--input_format=parquet",
        "--url_col=url",
        "--caption_col=caption",
        f"--save_additional_columns={json.dumps(SAVED_COLUMNS)}",
        f"--output_folder={output}",
        "--output_format=webdataset",
        f"--number_sample_per_shard={PER_SHARD}",
        f"--image_size={IMAGE_SIZE}",
        "--resize_mode=border",
        "--encode_format=jpg",
        "--compute_hash=sha256",
        "--processes_count=1",  # one spawned worker: on 2 cores, 2 only add start-up time
        "--thread_count=8",
        "--distributor=multiprocessing",
        "--retries=0",
        "--max_shard_retry=0",
        "--timeout=10",
        "--enable_wandb=False",
        # No --incremental_mode=overwrite (the default, incremental, on a fresh folder): in 1.47.0
        # it deletes the _tmp folder just made, and every shard fails after ~3 min of retries.
    ]
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {k: v for k, v in os.environ.items() if k.lower() not in proxies}
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = proxy
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(WANDB_MODE="disabled", WANDB_SILENT="true", NO_ALBUMENTATIONS_UPDATE="1")
    done = subprocess.run(cmd, env=env, cwd=output.parent, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, f"$ {' '.join(cmd)}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


def test_pool_round_trips_through_img2dataset_and_webdataset(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    names = _write_images(images)
    assert len(names) >= TILES, len(names)
    served = {name: (images / name).read_bytes() for name in names}

    with _serving(_Trap) as (proxy, escaped), _serving(
        functools.partial(_Files, directory=str(images))
    ) as (base, asked):
        table = _pool_table([f"{base}/{name}" for name in names])
        assert table.schema == POOL
        pool = tmp_path / "pool.parquet"
        pq.write_table(table, pool)
        output = tmp_path / "shards"
        _img2dataset(pool, output, proxy)
        rows = table.to_pylist()

    # Offline, no retries: each image asked for once, nothing else asked for anywhere.
    assert escaped == []
    assert Counter(asked) == Counter(f"/{name}" for name in names)

    # img2dataset's own account: every row a success, in ceil(n / PER_SHARD) shards.
    n = len(rows)
    shards = -(-n // PER_SHARD)
    stats = [json.loads(p.read_text()) for p in sorted(output.glob("*_stats.json"))]
    assert len(stats) == shards
    assert sum(s["count"] for s in stats) == n
    assert sum(s["successes"] for s in stats) == n, [s["status_dict"] for s in stats]
    assert sum(s["failed_to_download"] + s["failed_to_resize"] for s in stats) == 0
    statuses = pa.concat_tables(pq.read_table(p) for p in sorted(output.glob("*.parquet")))
    successes = {uuid for uuid, status in zip(statuses["uuid"].to_pylist(),
                                              statuses["status"].to_pylist(), strict=True)
                 if status == "success"}  # fmt: skip
    assert successes == {row["uuid"] for row in rows}

    tars = sorted(output.glob("*.tar"))
    assert len(tars) == shards
    dataset = wds.WebDataset([str(t) for t in tars], shardshuffle=False).decode()
    seen: set[int] = set()
    for sample in dataset:
        index = int(sample["__key__"])
        assert index not in seen, sample["__key__"]
        seen.add(index)
        row, meta = rows[index], sample["json"]
        assert meta["status"] == "success"
        assert meta["url"] == row["url"]
        assert meta["uuid"] == row["uuid"]
        assert meta["caption"] == row["caption"] == sample["txt"]
        assert meta["text_key"] == row["text_key"]
        assert meta["entry_ids"] == row["entry_ids"]
        assert all(type(i) is int for i in meta["entry_ids"])
        assert type(meta["pair_key"]) is int and meta["pair_key"] == row["pair_key"]
        data = served[row["url"].rsplit("/", 1)[1]]
        assert meta["sha256"] == hashlib.sha256(data).hexdigest()  # of the bytes served
        with Image.open(io.BytesIO(data)) as original:
            assert (meta["original_width"], meta["original_height"]) == original.size
        with Image.open(io.BytesIO(sample["jpg"])) as image:
            image.load()
            assert image.format == "JPEG"
            assert image.size == (meta["width"], meta["height"]) == (IMAGE_SIZE, IMAGE_SIZE)
    assert seen == set(range(n))


# --- a real pool, through the online balancing stage ---------------------------------------------


def _real_pool(root: Path) -> tuple[pa.Table, object]:
    """The pipeline's pool of the real fixtures (and the run, for its curated set)."""
    files = make_inputs(root / "inputs")
    make_metadata(root / "metadata.json", files)
    run = curate_plain(files, str(root / "metadata.json"), root / "out", n_buckets=4)
    run_pool(run)
    return pa.concat_tables(pq.read_table(p.uri) for p in read_pool(run.output).parts), run


def test_a_real_pool_downloads_and_balances_online_as_the_parquet(tmp_path):
    from metaclip.online.webdataset_stage import BalancedShards

    images = tmp_path / "images"
    images.mkdir()
    names = _write_images(images)
    pool, run = _real_pool(tmp_path / "curation")
    assert 150 <= pool.num_rows <= len(names)  # a few hundred real pairs, one image each
    with _serving(_Trap) as (proxy, escaped), _serving(
        functools.partial(_Files, directory=str(images))
    ) as (base, asked):
        served = [f"{base}/{name}" for name in names[: pool.num_rows]]
        downloadable = pool.set_column(0, "url", pa.array(served, pa.string()))
        pq.write_table(downloadable, tmp_path / "pool.parquet")
        _img2dataset(tmp_path / "pool.parquet", tmp_path / "shards", proxy)
    assert escaped == [] and len(asked) == pool.num_rows
    shards = [str(t) for t in sorted((tmp_path / "shards").glob("*.tar"))]

    balance = OnlineBalance.from_pool(run.output)  # the curation's t and seed
    for epoch in range(3):
        kept = balance.keep_mask(epoch, pool["entry_ids"], keys=pool["pair_key"])
        expected = sorted(pool.filter(pa.array(kept))["uuid"].to_pylist())
        got = [json.loads(s["json"])["uuid"] for s in BalancedShards(shards, balance, epoch)]
        assert sorted(got) == expected and 0 < len(got) < pool.num_rows

    # The curation's own draw, from what the download kept in each sample's json: the curated set.
    metas = [json.loads(s["json"]) for s in wds.WebDataset(shards, shardshuffle=False)]
    ids = pa.array([m["entry_ids"] for m in metas], pa.list_(pa.int32()))
    mask = balance.keep_mask(CURATION_DRAW, ids, uuids=[m["uuid"] for m in metas],
                             texts=[m["caption"] for m in metas])  # fmt: skip
    kept_rows = {(m["uuid"], m["caption"], tuple(m["entry_ids"]))
                 for m, keep in zip(metas, mask, strict=True) if keep}  # fmt: skip
    assert kept_rows == run_curated(run)
