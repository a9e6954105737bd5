"""What a run leaves for later, on a run made by the plain stage functions (tests/stages.py):
the work record (`_work/run.json`, read back where the output is now), the completion record (a
rerun's shortcut, void once an output changes), the run key, and task results stored as data."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from metaclip.curation import completion
from metaclip.curation.record import read_run_record
from metaclip.curation.sample import iter_candidate_units
from metaclip.errors import UserError
from metaclip.io.cachekeys import file_identity, make_key
from metaclip.io.paths import OutputLayout
from metaclip.io.results import changed_outputs, load_result, store_result, written
from metaclip.io.transient import TransientIOError, is_transient
from tests.stages import curate_plain, make_inputs, make_metadata, naive_run, settings_from_record


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("stages-records")
    files = make_inputs(root / "inputs")
    entries = make_metadata(root / "metadata.json", files)
    run = curate_plain(files, str(root / "metadata.json"), root / "out", n_buckets=4)
    return SimpleNamespace(root=root, files=files, entries=entries, run=run,
                           naive=naive_run(files, entries))  # fmt: skip


def copy_of(world, dest: Path) -> str:
    shutil.copytree(world.run.output, dest)
    return str(dest)


def curated_uris(output: str) -> list[str]:
    return sorted(str(p) for p in (Path(output) / "curated").glob("*.parquet"))


def test_work_record_round_trip(world):
    run = world.run
    record = read_run_record(run.output)
    assert record["counts_uri"] == run.counts_uri
    assert record["dedup_uris"] == {str(b["bucket"]): b["dedup_uris"] for b in run.buckets}
    on_disk = json.loads(Path(OutputLayout(run.output).run_record).read_text())
    assert on_disk["paths"] == "relative" and on_disk["counts_uri"] == "entry_counts.parquet"
    assert settings_from_record(record, run.output).record() == run.settings.record()


def test_a_moved_output_reads_only_itself(world, tmp_path):
    first = copy_of(world, tmp_path / "first")
    moved = str(tmp_path / "moved")
    shutil.copytree(first, moved)
    shutil.rmtree(first)
    record = read_run_record(moved)
    uris = [record["counts_uri"], *(u for us in record["dedup_uris"].values() for u in us)]
    assert all(u.startswith(moved + "/") and Path(u).exists() for u in uris)
    units = list(iter_candidate_units(moved))
    assert sum(len(ids) for ids, _ in units) == len(world.naive.unique)
    images = len({u for u, _ in world.naive.unique})
    assert sum(w.sum() for _, w in units) == pytest.approx(images)
    assert settings_from_record(record, moved).output == moved


def test_an_old_record_with_absolute_paths_is_moved_or_refused(world, tmp_path):
    output = copy_of(world, tmp_path / "copy")
    uri = OutputLayout(output).run_record
    record = json.loads(Path(uri).read_text())
    old = {**record, "output": world.run.output,
           "counts_uri": f"{world.run.output}/{record['counts_uri']}",
           "dedup_uris": {b: [f"{world.run.output}/{u}" for u in us]
                          for b, us in record["dedup_uris"].items()}}  # fmt: skip
    del old["paths"]
    Path(uri).write_text(json.dumps(old))
    assert read_run_record(output)["counts_uri"] == f"{output}/entry_counts.parquet"
    old["counts_uri"] = "/somewhere/else/entry_counts.parquet"
    Path(uri).write_text(json.dumps(old))
    with pytest.raises(UserError, match="outside the output"):
        read_run_record(output)
    with pytest.raises(UserError, match="no finished curation"):
        read_run_record(str(tmp_path / "nothing-here"))


def test_completion_record_round_trip_and_what_voids_it(world, tmp_path):
    run = world.run
    output = copy_of(world, tmp_path / "done")
    layout = OutputLayout(output)
    key = completion.run_key(run.files, run.settings.record())
    outputs = [*curated_uris(output), layout.entry_counts, layout.summary]
    assert completion.completed_summary(output, key) is None  # no record yet
    completion.record_completion(output, key, outputs, run.summary)
    assert completion.completed_summary(output, key) == run.summary
    assert completion.completed_summary(output, key.replace("curate-run-", "curate-run-0")) is None

    part = Path(outputs[0])
    blob = part.read_bytes()
    table = pq.read_table(part)
    pq.write_table(table.slice(1), part)  # one curated row fewer
    assert completion.completed_summary(output, key) is None
    part.write_bytes(blob)
    completion.record_completion(output, key, outputs, run.summary)
    assert completion.completed_summary(output, key) == run.summary
    stat = part.stat()
    os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # rewritten, same bytes
    assert completion.completed_summary(output, key) is None
    part.unlink()
    assert completion.completed_summary(output, key) is None
    Path(layout.completion).write_text('{"run_key": ')  # a damaged record: the normal path
    assert completion.completed_summary(output, key) is None


def test_run_key_names_the_inputs_and_the_settings(world):
    run = world.run
    key = completion.run_key(run.files, run.settings.record())
    assert completion.run_key(run.files, run.settings.record()) == key
    assert completion.run_key(run.files, {**run.settings.record(), "t": 4}) != key
    assert completion.run_key(run.files[:-1], run.settings.record()) != key
    stat = os.stat(run.files[0])
    os.utime(run.files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        assert completion.run_key(run.files, run.settings.record()) != key  # an input changed
    finally:
        os.utime(run.files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert completion.run_key(run.files, run.settings.record()) == key


def test_task_results_are_checked_data(tmp_path):
    uri = str(tmp_path / "task.json")
    assert load_result(uri, "k") == (None, False)
    result = {"uri": "x", "rows": 3, "nested": {"a": [1, 2]}}
    store_result(uri, "k", result)
    assert load_result(uri, "k") == (result, False)
    assert load_result(uri, "other") == (None, True)
    record = json.loads(Path(uri).read_text())
    record["result"]["rows"] = 4  # changed without its checksum
    Path(uri).write_text(json.dumps(record))
    assert load_result(uri, "k") == (None, True)
    Path(uri).write_text("not json")
    assert load_result(uri, "k") == (None, True)


def test_written_outputs_and_cache_keys_follow_the_files(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    result = {"outputs": written([str(a), str(b)])}
    assert changed_outputs(result) == []
    key = make_key("stage", {"t": 1}, [str(a)])
    assert make_key("stage", {"t": 1}, [str(a)]) == key
    assert make_key("stage", {"t": 2}, [str(a)]) != key
    assert make_key("other", {"t": 1}, [str(a)]) != key
    a.write_bytes(b"three")
    assert changed_outputs(result) == [str(a)]
    assert make_key("stage", {"t": 1}, [str(a)]) != key
    b.unlink()
    assert file_identity(str(b)).endswith("|missing")
    assert changed_outputs(result) == [str(a), str(b)]


class ClientError(Exception):
    """Shaped like botocore's: a `response` dict with the S3 error code and HTTP status."""

    def __init__(self, code: str, status: int) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}


def test_only_passing_io_errors_are_worth_a_retry():
    assert is_transient(TransientIOError("reset"))
    assert is_transient(ConnectionResetError()) and is_transient(TimeoutError())
    assert is_transient(OSError(errno.ECONNRESET, "reset"))
    assert is_transient(ClientError("SlowDown", 503)) and is_transient(ClientError("X", 500))
    assert not is_transient(ClientError("NoSuchKey", 404))
    assert not is_transient(FileNotFoundError("gone")) and not is_transient(ValueError("data"))
    try:  # wrapped: the cause decides
        try:
            raise ConnectionResetError("peer")
        except ConnectionResetError as exc:
            raise RuntimeError("while reading") from exc
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(None)
