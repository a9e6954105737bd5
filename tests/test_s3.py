"""Inputs, metadata and outputs on S3: a real S3-compatible server (moto) on loopback, s3fs.

The Dask workers are separate processes: they get credentials from the environment (as they
would from an instance profile) and the endpoint through each location's options."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import s3fs

from metaclip.io.cachekeys import file_identity
from metaclip_prefect.flows.curate import curate

WAT = Path(__file__).parent / "data" / "wat"
FILES = sorted(WAT.glob("fixture-*.warc.wat.gz"))
ENTRIES = ["Home", "Logo", "the", "Foto", "image", "of", "und", "der", "die"]

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    from moto.server import ThreadedMotoServer

    mp = pytest.MonkeyPatch()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        mp.setenv(key, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    fs.mkdir("inputs")
    fs.mkdir("results")
    for path in FILES:
        fs.put(str(path), f"inputs/wat/{path.name}")
    fs.pipe("inputs/metadata.json", json.dumps(ENTRIES).encode())
    yield fs, {"client_kwargs": {"endpoint_url": endpoint}}
    server.stop()
    mp.undo()


def run(**params):
    state = curate(t=2, seed=3, batch_size=1, n_buckets=3, n_workers=2, languages=None,
                   dashboard_address=":0", return_state=True, **params)
    assert state.is_completed(), state.message
    return state.result()


def located(opts: dict) -> dict:
    """The same fsspec options for each location of the run (one S3 server here)."""
    return {"input_options": opts, "metadata_options": opts, "output_options": opts}


def rows(table) -> set:
    return set(zip(table["uuid"].to_pylist(), table["caption"].to_pylist(), strict=True))


def test_curation_from_and_to_s3_equals_local(s3, tmp_path):
    fs, opts = s3
    (tmp_path / "metadata.json").write_text(json.dumps(ENTRIES))
    local = run(inputs=[str(WAT)], metadata=str(tmp_path / "metadata.json"),
                output=str(tmp_path / "local"))
    remote = run(inputs=["s3://inputs/wat/"], metadata="s3://inputs/metadata.json",
                 output="s3://results/run1", **located(opts))
    assert remote["pairs_curated"] == local["pairs_curated"] > 0
    curated = [f for f in fs.ls("results/run1/curated") if f.endswith(".parquet")]
    with fs.open(curated[0], "rb") as fh:
        assert {"url", "caption"} <= set(pq.read_schema(fh).names)
    remote_rows = set()
    for path in curated:
        with fs.open(path, "rb") as fh:
            remote_rows |= rows(pq.read_table(fh))
    assert remote_rows == rows(pq.read_table(tmp_path / "local" / "curated"))
    summary = json.loads(fs.cat("results/run1/summary.json"))
    assert summary["pairs_curated"] == remote["pairs_curated"]


def test_rerun_on_s3_reuses_work_and_identity_is_the_etag(s3):
    fs, opts = s3
    manifests = sorted(fs.ls("results/run1/_work/manifests"))
    before = {m: fs.info(m)["ETag"] + str(fs.info(m)["LastModified"]) for m in manifests}
    run(inputs=["s3://inputs/wat/"], metadata="s3://inputs/metadata.json",
        output="s3://results/run1", **located(opts))
    fs.invalidate_cache()
    after = {m: fs.info(m)["ETag"] + str(fs.info(m)["LastModified"]) for m in manifests}
    assert after == before  # no batch was extracted again
    identity = file_identity("s3://inputs/metadata.json", **opts)
    assert fs.info("inputs/metadata.json")["ETag"] in identity


def test_changed_input_object_is_reprocessed(s3):
    fs, opts = s3
    name = FILES[0].name
    before = file_identity(f"s3://inputs/wat/{name}", **opts)
    fs.pipe(f"inputs/wat/{name}", FILES[1].read_bytes())  # new content, new ETag
    fs.invalidate_cache()
    assert file_identity(f"s3://inputs/wat/{name}", **opts) != before
    fs.put(str(FILES[0]), f"inputs/wat/{name}")  # restore
