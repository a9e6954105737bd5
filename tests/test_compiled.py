"""The mypyc-compiled extraction (setup.py, METACLIP_COMPILE=1) is the same extraction.

The compiled wheel is built once (tools/compiled.py: pip wheel from a copy of the repository,
mypy from requirements-compile.lock) and unpacked; the pure-Python tree and the compiled one then
extract the same files in two fresh processes, and every file's table (as Arrow IPC bytes) and
stats must be identical: the real Common Crawl excerpts, the WAT/WARC fixtures (damaged ones
included) and the whole hostile corpus (tests/hostile/corpus.py, small scale).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.hostile import corpus
from tests.support.crafted_links import write_crafted_wat
from tests.support.crafted_texts import crafted_texts
from tests.support.fasttext_variants import write_dense_variant
from tools.compiled import build_compiled

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

# Run in either tree: each file's table digest, row count and stats, and whether it was compiled.
PROBE = """
import hashlib, json, sys
import pyarrow as pa
from metaclip.extraction import compiled
from metaclip.extraction.warc import extract_warc_file
from metaclip.extraction.wat import extract_wat_file
out = {"compiled": compiled(), "files": {}}
for path in sys.argv[1:]:
    extract = extract_wat_file if ".wat" in path else extract_warc_file
    table, stats = extract(path)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    digest = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
    out["files"][path] = [digest, table.num_rows, stats.to_dict()]
print(json.dumps(out))
"""


def _can_compile() -> str | None:
    """Why the compiled build cannot run here, or None."""
    try:
        import mypyc  # noqa: F401
    except ImportError:
        return "mypy (mypyc) is not installed: requirements-compile.lock"
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    return None


@pytest.fixture(scope="module")
def compiled_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (why := _can_compile()) is not None:
        pytest.skip(why)
    return build_compiled(tmp_path_factory.mktemp("compiled"))


def _probe(probe: str, args: list[str], path: list[Path], cwd: Path) -> object:
    """Run a probe in a fresh process with `path` as PYTHONPATH; its last line, as JSON."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, path))}
    done = subprocess.run([sys.executable, "-c", probe, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _extract(tree: Path, files: list[Path]) -> dict:
    return _probe(PROBE, list(map(str, files)), [tree], tree)


def test_the_compiled_build_compiles_every_listed_module(compiled_site: Path):
    """Each module in setup.py's COMPILED is an extension module in the wheel, beside the
    group's shared library, and nothing else of ours is."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    listed = next(
        ast.literal_eval(node.value) for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED"
    )  # fmt: skip
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    built = {p.relative_to(compiled_site).as_posix() for p in compiled_site.rglob(f"*{suffix}")}
    expected = {path.removesuffix(".py") + suffix for path in listed}
    assert expected <= built
    assert built - expected == {
        f"metaclip/extraction/compiled__mypyc{suffix}",  # the mypyc group's shared library
        f"metaclip/extraction/_watpage{suffix}",  # the Cython page path
        f"metaclip/extraction/_lid{suffix}",  # the Cython language ID kernel
    }


def test_compiled_extraction_gives_the_same_tables_and_stats(compiled_site: Path, tmp_path):
    hostile = tmp_path / "hostile"
    cases = corpus.build_corpus(hostile, "small")
    write_crafted_wat(tmp_path / "crafted-links.wat.gz")
    files = sorted(
        [p for p in (DATA / "real").iterdir() if p.name.endswith((".gz", ".wat"))]
        + [p for p in (DATA / "wat").rglob("*") if ".wat" in p.name]
        + [p for p in (DATA / "warc").glob("*.warc.gz")]
        + [p for p in hostile.iterdir() if p.is_file()]
        + [tmp_path / "crafted-links.wat.gz"]
    )
    assert len(files) > len(cases) > 50
    pure = _extract(ROOT, files)
    native = _extract(compiled_site, files)
    assert (pure["compiled"], native["compiled"]) == (False, True)
    assert sum(rows for _, rows, _ in pure["files"].values()) > 1000  # the files hold pairs
    differ = [f for f in pure["files"] if pure["files"][f] != native["files"][f]]
    assert not differ, {f: (pure["files"][f], native["files"][f]) for f in differ[:3]}


# Run in the compiled tree, the repository after it (for tests.support): for each crafted page
# with image links, whether the pure fast path cut it and whether the C path took it.
PAGE_PROBE = """
import json, sys
from pathlib import Path
from metaclip.extraction._watpage import add_wat_page
from metaclip.extraction.pairs import ExtractStats, PairBuffer
from metaclip.extraction.wat import _page_prelude, image_links_from_bytes
from tests.support.crafted_links import write_crafted_wat
from tests.support.crafted_texts import crafted_texts
from tests.support.fasttext_variants import write_dense_variant
out = []
for body, plain in write_crafted_wat(Path(sys.argv[1])):
    page = _page_prelude(body)
    if page is None or page[1] == -1:
        continue
    stats = ExtractStats()
    taken = add_wat_page(body, "http://example.com/", 0, PairBuffer("x", stats), stats, *page)
    out.append([plain, image_links_from_bytes(body) is not None, bool(taken)])
print(json.dumps(out))
"""


def test_the_c_page_path_takes_plain_pages_and_never_what_orjson_refuses(
    compiled_site: Path, tmp_path
):
    """The C parser may leave more pages to the full parse than the pure cut does (values that
    are not strings, whitespace, escaped keys), never fewer: a page orjson refuses is never
    taken; and it takes every page of plain links itself (escapes, UTF-8, every URL shape)."""
    crafted = str(tmp_path / "crafted.wat.gz")
    pages = _probe(PAGE_PROBE, [crafted], [compiled_site, ROOT], tmp_path)
    assert len(pages) > 500
    assert all(taken for plain, _, taken in pages if plain)
    assert not any(taken for _, cut, taken in pages if not cut)
    assert any(not cut for _, cut, _ in pages) and any(not plain for plain, _, _ in pages)


# Run in the compiled tree: fastText's binding and the C kernel on the same texts (a JSON list);
# how many texts, and those where the language, the presence or the float32 score bits differ.
LID_PROBE = """
import json, sys
import numpy as np
from metaclip.extraction.lid import LanguageIdentifier
texts = json.loads(open(sys.argv[1], encoding="utf-8").read())
identifier = LanguageIdentifier(sys.argv[2] if len(sys.argv) > 2 else None)
assert identifier.kernel is not None, "the compiled build's kernel does not take the model"
ref_codes, ref_scores = identifier._predict_fasttext(texts)
codes, scores = identifier._predict_unique(texts)
a, b = ref_scores.to_numpy(zero_copy_only=False), scores.to_numpy(zero_copy_only=False)
a, b = a.astype(np.float32).view(np.uint32), b.astype(np.float32).view(np.uint32)
differ = [i for i in range(len(texts)) if ref_codes[i] != codes[i]
          or ref_scores[i].is_valid != scores[i].is_valid or a[i] != b[i]]
print(json.dumps({"n": len(texts), "unlabelled": ref_codes.null_count, "differ": differ[:20]}))
"""


def _extracted_texts() -> list[str]:
    from metaclip.extraction.warc import extract_warc_file
    from metaclip.extraction.wat import extract_wat_file

    texts: set[str] = set()
    for path in sorted((DATA / "real").iterdir()):
        if path.name.endswith((".wat.gz", ".warc.gz")):
            extract = extract_wat_file if ".wat" in path.name else extract_warc_file
            texts.update(extract(str(path))[0]["text"].to_pylist())
    for path in sorted((DATA / "captions").glob("*.txt")):
        texts.update(path.read_text(encoding="utf-8").splitlines())
    for line in (DATA / "worldwide" / "alt_texts.jsonl").read_text(encoding="utf-8").splitlines():
        texts.add(json.loads(line)["text"])
    return sorted(texts)


def test_the_compiled_language_id_is_fasttext_bit_for_bit(compiled_site: Path, tmp_path):
    """The C kernel gives fastText's language and float32 score, to the bit, on every text the
    extraction inputs hold (real alt texts and HTML texts), the caption fixtures, the worldwide
    alt texts in many scripts, and seeded texts built on fastText's reading rules."""
    texts = [*_extracted_texts(), *crafted_texts(seed=0), *crafted_texts(seed=1)]
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    result = _probe(LID_PROBE, [str(tmp_path / "texts.json")], [compiled_site], tmp_path)
    assert result["n"] == len(texts) > 15_000
    assert 0 < result["unlabelled"] < len(texts) // 10  # empty and blank texts
    assert result["differ"] == [], [texts[i][:80] for i in result["differ"]]


def test_the_compiled_language_id_is_fasttext_on_a_dense_unpruned_bigram_model(
    compiled_site: Path, tmp_path
):
    """The kernel's paths lid.176.ftz does not take (a dense input matrix, no pruning, word
    bigrams), on a model built for them (tests/support/fasttext_variants.py)."""
    from metaclip.extraction.lid import bundled_model_path

    model = tmp_path / "dense.bin"
    write_dense_variant(bundled_model_path(), model)
    texts = [*crafted_texts(seed=2), *_extracted_texts()[:3000]]
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    args = [str(tmp_path / "texts.json"), str(model)]
    result = _probe(LID_PROBE, args, [compiled_site], tmp_path)
    assert result["n"] == len(texts) and result["unlabelled"] < len(texts) // 10
    assert result["differ"] == [], [texts[i][:80] for i in result["differ"]]
