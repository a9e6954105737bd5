"""Hostile input (issue 14): every case of the generated corpus (tests/hostile/corpus.py), each
extracted in its own process under a memory limit and a wall-clock bound, must finish, count its
damage by reason, and keep the good records of the same file; and a batch mixing hostile files
with good ones must give every good file's pairs.

The corpus is generated at small scale once per session (a few seconds); the processes are forked
from one server process that has imported the extractors, so a case costs its extraction only.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from tests.hostile import corpus

DATA = Path(__file__).parent / "data"
# Every case runs in a child process (a forkserver), and the corpus takes seconds to build.
pytestmark = pytest.mark.slow
MEM_LIMIT_MB = 1536  # RLIMIT_AS of each extraction process (its address space, all of it)
TIMEOUT_S = 60  # wall clock, after which a case's process is killed (its own bound is lower)

# Cases that fail on the current code, with why (each reported with a minimal reproduction).
# strict: the test turns red when the bug is fixed, so that the entry is removed.
KNOWN_BUGS: dict[str, str] = {}


@pytest.fixture(scope="session")
def hostile_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, corpus.Case]]:
    out = tmp_path_factory.mktemp("hostile")
    return out, corpus.build_corpus(out, "small")


@pytest.fixture(scope="session")
def forker():
    """A forkserver that has imported the extractors: each case runs in a fresh child of it."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(
        ["metaclip.extraction.wat", "metaclip.extraction.warc", "metaclip.curation.batch",
         "tests.hostile.corpus"]
    )
    return ctx


def run_isolated(
    forker, target, args: tuple, result: Path, timeout: float = TIMEOUT_S
) -> tuple[dict[str, Any], float]:
    """target(*args, result, MEM_LIMIT_MB) in a child process: (its JSON result, wall seconds).
    Fails the test if it does not finish in time or exits other than 0."""
    process = forker.Process(target=target, args=(*args, str(result), MEM_LIMIT_MB))
    started = time.perf_counter()
    process.start()
    process.join(timeout)
    wall = time.perf_counter() - started
    if process.is_alive():
        process.kill()
        process.join()
        pytest.fail(f"still running after {timeout} s: killed")
    out = json.loads(result.read_text()) if result.exists() else {}
    if process.exitcode != 0:
        pytest.fail(f"exit code {process.exitcode}: {out.get('error')}\n{out.get('traceback', '')}")
    return out, wall


def _params() -> list[Any]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_BUGS[name], strict=True))
        if name in KNOWN_BUGS
        else name
        for name in corpus.case_names()
    ]


def check_case(case: corpus.Case, out: dict[str, Any], wall: float) -> None:
    problems = corpus.check_result(case, out)
    if wall > case.max_seconds:
        problems.append(f"took {wall:.1f} s, bound {case.max_seconds} s")
    skipped = out["stats"]["skipped"]
    assert not problems, f"{case.name} ({case.what}): {problems}; skipped={skipped}"


@pytest.mark.parametrize("name", _params())
def test_hostile_case(name, hostile_corpus, forker, tmp_path):
    folder, cases = hostile_corpus
    case = cases[name]
    out, wall = run_isolated(
        forker,
        corpus.run_case_to_file,
        (str(folder / case.file), case.fmt),
        tmp_path / "result.json",
    )
    check_case(case, out, wall)


def test_the_corpus_covers_the_issue():
    names = corpus.case_names()
    assert len(names) >= 40 and len(set(names)) == len(names)
    assert {"wat", "warc"} <= {fmt for _, fmt, _ in corpus.REGISTRY}
    assert sum(n.startswith("url_") for n in names) >= 8


def test_cases_hold_good_records_around_the_damage(hostile_corpus):
    """Each case's file has good pairs to lose (except the files that are nothing but damage),
    and the generation is deterministic."""
    folder, cases = hostile_corpus
    whole_file_damage = {n for n in cases if n.startswith("file_")}
    for name, case in cases.items():
        if name not in whole_file_damage:
            assert len(case.good) >= 6, name
        assert case.skips or case.any_skips or case.good, name
    again = corpus.build_corpus(folder / "again", "small", only=["wat_bad_crc", "url_10k_chars"])
    for name, case in again.items():
        assert (folder / "again" / case.file).read_bytes() == (folder / case.file).read_bytes()
        assert case == cases[name]


@pytest.mark.parametrize(
    "fmt, path",
    [
        ("wat", DATA / "wat" / "fixture-0000.warc.wat.gz"),
        ("wat", DATA / "wat" / "fixture-0002.warc.wat.gz"),
        ("warc", DATA / "warc" / "dolma-sample-0001.warc.gz"),
        ("warc", DATA / "warc" / "clueweb09-ja-quirk.warc.gz"),
    ],
    ids=lambda v: getattr(v, "name", v),
)
def test_normal_fixtures_pass_under_the_memory_limit(fmt, path, forker, tmp_path):
    out, _ = run_isolated(
        forker, corpus.run_case_to_file, (str(path), fmt), tmp_path / "result.json"
    )
    expected = corpus.extract_case(str(path), fmt)
    assert out["pairs"] == [list(p) for p in expected["pairs"]] and out["rows"] > 0
    assert out["stats"] == expected["stats"]


BATCH_HOSTILE = [  # hostile files that a batch must get through (known bugs left out)
    "wat_json_body_300mb",
    "wat_garbage_between_members",
    "wat_bad_crc",
    "file_zero_bytes_wat",
    "file_random_bytes",
    "wat_member_cut_at_the_end",
    "wat_json_lone_surrogate",
    "warc_record_gzip_bomb",
    "warc_http_gzip_bomb",
    "warc_content_length_1e12",
    "html_nested_divs_1e5",
    "stream_gzip_large_truncated",
]
BATCH_GOOD = [
    DATA / "wat" / "fixture-0000.warc.wat.gz",
    DATA / "wat" / "fixture-0001.warc.wat.gz",
    DATA / "warc" / "dolma-sample-0000.warc.gz",
]


def extract_batch_to_file(files: list[str], result: str, mem_limit_mb: int) -> None:
    """metaclip.curation.batch.extract_files on the files, in a child within the memory limit:
    the pairs of each source file, and the stats."""
    corpus.set_memory_limit(mem_limit_mb)
    from metaclip.curation.batch import extract_files

    table, stats = extract_files(files)
    by_source: dict[str, list[list[str]]] = {}
    for source, url, text in zip(
        table["source"].to_pylist(),
        table["url"].to_pylist(),
        table["text"].to_pylist(),
        strict=True,
    ):
        by_source.setdefault(source, []).append([url, text])
    Path(result).write_text(json.dumps({"pairs": by_source, "stats": stats.to_dict()}))


def test_a_batch_of_hostile_and_good_files_keeps_every_good_pair(hostile_corpus, forker, tmp_path):
    folder, cases = hostile_corpus
    hostile = [str(folder / cases[name].file) for name in BATCH_HOSTILE]
    good = [str(p) for p in BATCH_GOOD]
    files = hostile[:4] + good[:1] + hostile[4:8] + good[1:2] + hostile[8:] + good[2:]
    assert len(files) == len(hostile) + len(good)
    out, _ = run_isolated(
        forker, extract_batch_to_file, (files,), tmp_path / "result.json", timeout=2 * TIMEOUT_S
    )
    assert out["stats"]["files"] == len(files)
    for path in good:  # a good file's pairs: all of them, as when it is extracted alone
        alone = corpus.extract_case(path, "wat" if path.endswith(".wat.gz") else "warc")
        got = {tuple(p) for p in out["pairs"].get(path, [])}
        assert got == {tuple(p) for p in alone["pairs"]} and got, path
    for name, path in zip(BATCH_HOSTILE, hostile, strict=True):
        got = {tuple(p) for p in out["pairs"].get(path, [])}
        assert set(cases[name].good) <= got, name
    skipped = out["stats"]["skipped"]
    for reason in (
        "record_too_large",
        "garbage_between_members",
        "gzip_damaged",
        "empty_file",
        "not_warc",
        "truncated_record",
        "lone_surrogate_replaced",
        "page_cut_too_deep",
    ):
        assert skipped.get(reason), reason


def test_a_case_fails_when_the_good_records_after_the_damage_are_lost(hostile_corpus):
    """The checks can fail: a reader that dropped the rest of the file after damage (as the
    one before issue 14 did) would be caught by the good pairs after it."""
    _, cases = hostile_corpus
    case = cases["wat_bad_crc"]
    before_only = case.good[:6]  # the two good records before the damage
    out = {"stats": {"skipped": {"gzip_damaged": 1}}, "pairs": [list(p) for p in before_only]}
    with pytest.raises(AssertionError, match="good pairs missing"):
        check_case(case, out, 0.1)
    out["pairs"] = [list(p) for p in case.good]
    check_case(case, out, 0.1)
