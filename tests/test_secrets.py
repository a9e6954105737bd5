"""Secrets never travel as flow parameters, nor anywhere a run writes (issue "Safe to operate").

Two S3 servers, each its own moto_server process on loopback (tests.support.s3servers):

- A stands in for the public crawl: bucket `commoncrawl` laid out as CommonCrawl does, read
  anonymously (input_options={"anon": True, ...}).
- B is a private store that enforces authentication: its first calls (an IAM user, its
  allow-all inline policy, its access key, the bucket) run unauthenticated, and every later
  call must be signed with that access key (moto checks the SigV4 signature). The key's secret
  (the sentinel) lives only in a Prefect Secret block named in `credentials={"output": ...}`;
  the environment has no AWS credentials.

A curation from A into B must complete, and neither the secret nor the access key id may
appear in anything the run left behind: the objects on B, the test's tmp dirs, the logs and
output of the run, the Prefect database (where the block itself is stored encrypted), the flow
run's parameters, task runs, logs and artifacts read back through the API, the summary.
Credentials given as parameters are refused in one line that names the parameter and does not
echo the value, before anything is written.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import boto3
import pyarrow.parquet as pq
import pytest
import s3fs

from metaclip.errors import UserError
from metaclip_prefect.flows.curate import curate
from tests.support.s3servers import MotoServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.usefixtures("prefect_server")]

WAT = Path(__file__).parent / "data" / "wat"
FILES = sorted(WAT.glob("fixture-*.warc.wat.gz"))
ENTRIES = ["Home", "Logo", "the", "Foto", "image", "of", "und", "der", "die"]
CRAWL = "CC-MAIN-2099-05"  # far in the future: never a real crawl
BUCKET = "private"
ALLOW_ALL = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}  # fmt: skip
# create_user, put_user_policy, create_access_key, create_bucket: then signed calls only.
SETUP_CALLS = 4


@dataclass(frozen=True)
class PrivateStore:
    endpoint: str
    key_id: str
    secret: str  # the sentinel

    def fs(self) -> s3fs.S3FileSystem:
        """The store as its owner sees it (the real credentials, given here in memory)."""
        return s3fs.S3FileSystem(key=self.key_id, secret=self.secret, skip_instance_cache=True,
                                 client_kwargs={"endpoint_url": self.endpoint})  # fmt: skip

    def objects(self) -> dict[str, bytes]:
        fs = self.fs()
        return {path: fs.cat_file(path) for path in fs.find(BUCKET)}

    def needles(self) -> list[bytes]:
        return [v.encode() for s in (self.secret, self.key_id) for v in {s, quote(s, safe="")}]

    def block_value(self, form: str) -> dict:
        """What the Secret block of each form holds: s3fs's own option names (the form the docs
        give), or botocore's client arguments (the endpoint with them: the block's keys replace
        the location's, so its client_kwargs must be whole)."""
        if form == "key-secret":
            return {"key": self.key_id, "secret": self.secret}
        return {"client_kwargs": {"endpoint_url": self.endpoint, "aws_access_key_id": self.key_id,
                                  "aws_secret_access_key": self.secret}}  # fmt: skip


# The Secret blocks, by form: {"output": BLOCKS[form]} names the output's credentials.
BLOCKS = {"key-secret": "private-store", "client-kwargs": "private-store-client-kwargs"}


@pytest.fixture(autouse=True)
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing but the Secret block can sign: no AWS_* variables, no config files, no IMDS (the
    Dask workers inherit this environment)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="module")
def public_crawl() -> Iterator[str]:
    """Server A: s3://commoncrawl with crawl-data/<id>/wat.paths.gz listing WAT paths relative
    to the data root, as CommonCrawl lays it out; public-read, as the real bucket is (moto
    applies object ACLs to unsigned requests)."""
    with MotoServer() as server:
        s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id="public", aws_secret_access_key="public")  # fmt: skip
        s3.create_bucket(Bucket="commoncrawl", ACL="public-read")
        rel = [f"crawl-data/{CRAWL}/segments/0/wat/{f.name}" for f in FILES]
        for src, key in zip(FILES, rel, strict=True):
            s3.put_object(Bucket="commoncrawl", Key=key, Body=src.read_bytes(), ACL="public-read")
        listing = gzip.compress("\n".join(rel).encode())
        s3.put_object(Bucket="commoncrawl", Key=f"crawl-data/{CRAWL}/wat.paths.gz",
                      Body=listing, ACL="public-read")  # fmt: skip
        yield server.endpoint


@pytest.fixture(scope="module")
def private_store(prefect_server: None) -> Iterator[PrivateStore]:
    """Server B, enforcing authentication after SETUP_CALLS unauthenticated calls; its access
    key saved in the Prefect Secret blocks BLOCKS (one for each form)."""
    from prefect.blocks.system import Secret

    with MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS)}) as server:
        setup = {"endpoint_url": server.endpoint, "region_name": "us-east-1",
                 "aws_access_key_id": "setup", "aws_secret_access_key": "setup"}  # fmt: skip
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="curator")
        iam.put_user_policy(UserName="curator", PolicyName="allow-all",
                            PolicyDocument=json.dumps(ALLOW_ALL))  # fmt: skip
        key = iam.create_access_key(UserName="curator")["AccessKey"]
        boto3.client("s3", **setup).create_bucket(Bucket=BUCKET)
        store = PrivateStore(server.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        for form, block in BLOCKS.items():
            Secret(value=store.block_value(form)).save(block, overwrite=True)
        # From here on every call must be signed: the setup key no longer opens anything.
        setup_fs = s3fs.S3FileSystem(key="setup", secret="setup", skip_instance_cache=True,
                                     client_kwargs={"endpoint_url": server.endpoint})  # fmt: skip
        with pytest.raises(PermissionError):
            setup_fs.ls(BUCKET)
        yield store


# --- grepping ------------------------------------------------------------------------------


def readable(name: str, data: bytes) -> list[bytes]:
    """The bytes of a file and, for a compressed one, what it holds (gzip, Parquet)."""
    forms = [data]
    if data[:2] == b"\x1f\x8b":
        forms.append(gunzip(data))
    if data[:4] == b"PAR1":
        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - an unreadable part is still grepped raw
            forms.append(f"{name}: unreadable parquet {exc}".encode())
        else:
            forms.append(repr(table.schema.metadata).encode())
            forms.append(json.dumps(table.to_pylist(), default=str).encode())
    return forms


def gunzip(data: bytes, cap: int = 256 * 2**20) -> bytes:
    """Every gzip member's content, up to damage or `cap` bytes: the scan also meets other
    tests' files, among them the hostile corpus's bombs and corrupt members."""
    out: list[bytes] = []
    size = 0
    while data[:2] == b"\x1f\x8b" and size < cap:
        inflater = zlib.decompressobj(31)
        try:
            out.append(inflater.decompress(data, cap - size))
        except zlib.error:
            break
        size += len(out[-1])
        if not inflater.eof:
            break
        data = inflater.unused_data
    return b"".join(out)


def leaks(where: str, data: bytes, needles: list[bytes]) -> list[str]:
    return [f"{where} holds {n[:4].decode()}..." for form in readable(where, data)
            for n in needles if n in form]  # fmt: skip


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def prefect_database() -> Path:
    """The harness's SQLite database (prefect_test_harness: a temporary folder)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url.get_secret_value()
    path = Path(unquote(urlparse(url.replace("sqlite+aiosqlite", "sqlite", 1)).path))
    assert path.name.endswith(".db") and path.exists(), url
    return path


def flush_prefect() -> None:
    """Logs and events still on their way to the API, sent; the server's event persister
    flushes every few seconds."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    EventsWorker.drain_all(timeout=30)
    time.sleep(6)


def api_records(flow_run_id) -> dict[str, str]:
    """The flow run, its task runs, logs and artifacts, as the API returns them."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(flow_run_filter=runs)
        artifacts = client.read_artifacts(flow_run_filter=runs)
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return {
        "flow run": flow_run.model_dump_json(),
        "flow run parameters": json.dumps(flow_run.parameters, default=str),
        "task runs": json.dumps([t.model_dump(mode="json") for t in task_runs]),
        "artifacts": json.dumps([a.model_dump(mode="json") for a in artifacts]),
        "logs": json.dumps([entry.model_dump(mode="json") for entry in logs]),
        "_counts": json.dumps([len(task_runs), len(artifacts), len(logs)]),
    }


# --- the run -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", list(BLOCKS))
def test_curation_into_an_authenticated_store_leaks_no_secret(
    form: str,
    public_crawl: str,
    private_store: PrivateStore,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
):
    caplog.set_level(logging.INFO)
    store = private_store
    needles = store.needles()
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps(ENTRIES))
    crawl_options = {"anon": True, "client_kwargs": {"endpoint_url": public_crawl}}
    output_options = {"client_kwargs": {"endpoint_url": store.endpoint}}
    output = f"{BUCKET}/run-{form}"

    state = curate(
        crawl=CRAWL, crawl_data_root="s3://commoncrawl", input_options=crawl_options,
        metadata=str(metadata), output=f"s3://{output}", output_options=output_options,
        credentials={"output": BLOCKS[form]}, t=2, seed=3, batch_size=1, n_buckets=2, n_workers=1,
        dashboard_address=":0", languages=None, return_state=True,
    )  # fmt: skip
    assert state.is_completed(), state.message
    result = state.result()
    assert result["files"] == len(FILES) and result["pairs_curated"] > 0

    # The curated set is on B, readable with the real credentials.
    objects = store.objects()
    curated = [p for p in objects if p.startswith(f"{output}/curated/") and
               p.endswith(".parquet")]  # fmt: skip
    assert curated, sorted(objects)
    rows = sum(pq.read_table(io.BytesIO(objects[p])).num_rows for p in curated)
    assert rows == result["pairs_curated"]
    summary = json.loads(objects[f"{output}/summary.json"])
    assert summary["pairs_curated"] == result["pairs_curated"]

    # B refuses what is not signed by the block's key: the run's writes were signed with it.
    refused_anonymous_write(store)
    wrong = s3fs.S3FileSystem(key=store.key_id, secret="0" * 40, skip_instance_cache=True,
                              client_kwargs={"endpoint_url": store.endpoint})  # fmt: skip
    with pytest.raises(PermissionError):
        wrong.pipe(f"{BUCKET}/forged.txt", b"forged")
    assert f"{BUCKET}/forged.txt" not in store.fs().find(BUCKET)

    # The secret and the access key id appear nowhere the run left anything.
    assert leaks("probe", gzip.compress(b"x" + store.secret.encode()), needles)  # grep works
    flush_prefect()
    found: list[str] = []
    for path, data in objects.items():
        found += leaks(f"s3://{path}", data, needles)
    found += leaks("the flow's result", json.dumps(result).encode(), needles)
    found += leaks("summary.json", json.dumps(summary).encode(), needles)

    captured = capfd.readouterr()
    log_text = caplog.text + captured.out + captured.err
    assert "input files" in log_text  # the run's own log lines were captured
    found += leaks("the run's logs and output", log_text.encode(), needles)

    database = prefect_database()
    db_files = sorted(database.parent.glob(database.name + "*"))
    db_bytes = b"".join(p.read_bytes() for p in db_files)
    assert f"s3://{output}".encode() in db_bytes  # the run's records are in these files
    assert BLOCKS[form].encode() in db_bytes  # and so is the block, encrypted
    for path in db_files:
        found += leaks(f"Prefect database {path.name}", path.read_bytes(), needles)

    records = api_records(state.state_details.flow_run_id)
    n_tasks, n_artifacts, n_logs = json.loads(records.pop("_counts"))
    assert n_tasks > 0 and n_artifacts > 0 and n_logs > 0
    assert json.loads(records["flow run parameters"])["output_options"] == output_options
    for where, text in records.items():
        found += leaks(where, text.encode(), needles)

    from prefect.settings import get_current_settings

    results_dir = Path(get_current_settings().results.local_storage_path).expanduser()
    grepped = 0
    for path in files_under(tmp_path_factory.getbasetemp(), database.parent, results_dir):
        try:
            data = path.read_bytes()
        except OSError:
            continue  # removed while we looked (another test's scratch)
        grepped += 1
        found += leaks(str(path), data, needles)
    assert grepped > 0
    assert not found, "\n".join(found)


def refused_anonymous_write(store: PrivateStore) -> None:
    anonymous = s3fs.S3FileSystem(anon=True, skip_instance_cache=True,
                                  client_kwargs={"endpoint_url": store.endpoint},
                                  config_kwargs={"retries": {"max_attempts": 1}})  # fmt: skip
    # moto answers an unsigned request to an authenticating server with an error (500, from its
    # missing Authorization header): the write fails, and nothing is stored.
    with pytest.raises(OSError):
        anonymous.pipe(f"{BUCKET}/anonymous.txt", b"anonymous")
    assert f"{BUCKET}/anonymous.txt" not in store.fs().find(BUCKET)


# --- refusals ------------------------------------------------------------------------------


REFUSALS = {
    "key and secret in the output's options": (
        {"output_options": {"key": "AKIAEXAMPLEEXAMPLE12", "secret": "s3cr3t"}},
        "output_options", ["s3cr3t", "AKIAEXAMPLEEXAMPLE12"],
    ),
    "a secret nested in client_kwargs": (
        {"output_options": {"client_kwargs": {"aws_secret_access_key": "s3cr3t"}}},
        "output_options", ["s3cr3t"],
    ),
    "user:password@ in the output URI": (
        {"output": f"s3://user:s3cr3t@{BUCKET}/x"}, "output", ["s3cr3t"],
    ),
    "a Secret block that does not exist": (
        {"credentials": {"output": "no-such-store"}}, "credentials", [],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSALS))
def test_credentials_as_parameters_are_refused_in_one_line(
    case: str, public_crawl: str, private_store: PrivateStore, tmp_path: Path
):
    params, parameter, secrets = REFUSALS[case]
    store = private_store
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps(ENTRIES))
    before = store.objects()
    call = {
        "crawl": CRAWL, "crawl_data_root": "s3://commoncrawl",
        "input_options": {"anon": True, "client_kwargs": {"endpoint_url": public_crawl}},
        "metadata": str(metadata), "output": f"s3://{BUCKET}/x",
        "output_options": {"client_kwargs": {"endpoint_url": store.endpoint}},
        "t": 2, "n_buckets": 2, "n_workers": 1, "dashboard_address": ":0", "languages": None,
        **params,
    }  # fmt: skip
    started = time.monotonic()
    state = curate(**call, return_state=True)
    assert state.is_failed()
    message = state.message or ""
    assert "\n" not in message.strip() and message.startswith(parameter), message
    for value in [*secrets, store.secret, store.key_id]:
        assert value not in message
    with pytest.raises(UserError):
        state.result()
    assert time.monotonic() - started < 60  # refused up front: no cluster, no I/O on B
    assert store.objects() == before  # nothing written to B


def test_the_moto_servers_are_separate_processes(public_crawl: str, private_store: PrivateStore):
    """A holds no IAM user of B's and B no crawl of A's: no shared moto state."""
    a = s3fs.S3FileSystem(anon=True, skip_instance_cache=True,
                          client_kwargs={"endpoint_url": public_crawl})  # fmt: skip
    assert a.ls("commoncrawl") == ["commoncrawl/crawl-data"]
    assert not a.exists(BUCKET)
    assert not private_store.fs().exists("commoncrawl")
