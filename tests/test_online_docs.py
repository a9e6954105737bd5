"""docs/online.md's Python examples run as written (with 2 epochs instead of 32, and t = 2 so
that this small pool is balanced), against a real pool (the stages of tests/stages.py on the
real fixtures) and webdataset shards written from it, and each epoch's training loop sees
exactly the pairs the decision keeps."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")
wds = pytest.importorskip("webdataset")
Image = pytest.importorskip("PIL.Image")

from metaclip.online.decide import OnlineBalance  # noqa: E402
from metaclip.online.pool import read_pool  # noqa: E402
from tests.stages import curate_plain, make_inputs, make_metadata, run_pool  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "online.md"
T = 2.0
EPOCHS = 2


def python_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    return [b.replace("t=20_000", f"t={T}").replace("range(start_epoch, 32)",
                                                      f"range(start_epoch, {EPOCHS})")
            for b in blocks]  # fmt: skip


def small_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """A folder with `out` (a curation with its pool) and `shards` (the pool as img2dataset
    would download it: jpg, txt and json with uuid, entry_ids and pair_key)."""
    root = tmp_path_factory.mktemp("online-docs")
    files = make_inputs(root / "inputs")
    make_metadata(root / "metadata.json", files)
    run = curate_plain(files, str(root / "metadata.json"), root / "out", n_buckets=4)
    run_pool(run)
    (root / "shards").mkdir()
    rows = pool_rows(str(root / "out"))
    jpeg = small_jpeg()
    with wds.ShardWriter(str(root / "shards" / "%05d.tar"), maxcount=20, verbose=0) as sink:
        for i, row in enumerate(rows):
            meta = {k: row[k] for k in ("url", "caption", "uuid", "entry_ids", "pair_key")}
            sink.write({"__key__": f"{i:09d}", "jpg": jpeg, "txt": row["caption"],
                        "json": json.dumps(meta).encode()})  # fmt: skip
    return root


def pool_table(output: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(p.uri) for p in read_pool(output).parts])


def pool_rows(output: str) -> list[dict]:
    return pool_table(output).to_pylist()


def kept_per_epoch(output: str) -> list[list[str]]:
    table = pool_table(output)
    balance = OnlineBalance.from_pool(output, t=T, seed=0)
    masks = [balance.keep_mask(e, table["entry_ids"], keys=table["pair_key"])
             for e in range(EPOCHS)]  # fmt: skip
    return [sorted(np.array(table["caption"].to_pylist(), dtype=object)[m]) for m in masks]


# The stubs a block calls, and a record of what the training loop saw, epoch by epoch. The block
# runs in a fresh interpreter, as a user's training script does: forked DataLoader workers of a
# process that has run a Prefect flow exit at once (Prefect's at-fork handlers), and this
# test process runs flows in other modules.
PRELUDE = """
import json, sys
seen, saved = [], []
_range = range


def range(*args):
    for e in _range(*args):
        seen.append([])
        yield e


class Model:
    def __call__(self, images, captions):
        seen[-1].extend(captions)
        return 0.0

    def state_dict(self):
        return {}


model = Model()
fetch_images = lambda uuids, urls: None
time_to_checkpoint = lambda: True
save = saved.append
preprocess = lambda image: 0
tokenize = lambda text: text
start_epoch, epoch = 0, 0
import pyarrow as pa, pyarrow.parquet as pq
from metaclip.online.pool import read_pool
table = pa.concat_tables([pq.read_table(p.uri) for p in read_pool("out").parts])
"""
EPILOGUE = """
out = {"seen": seen, "saved_epochs": [s["epoch"] for s in saved]}
if "keep" in globals():
    out["keep"] = [bool(k) for k in keep]
json.dump(out, open("result.json", "w"))
"""


def run_block(block: str, place: Path) -> dict:
    script = place / "example.py"
    script.write_text(PRELUDE + block + EPILOGUE)
    done = subprocess.run([sys.executable, str(script)], cwd=place, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((place / "result.json").read_text())


def test_the_decision_example(place):
    block = next(b for b in python_blocks() if "keep_mask" in b)
    result = run_block(block, place)
    table = pool_table(str(place / "out"))
    balance = OnlineBalance.from_pool(str(place / "out"), t=T, seed=0)
    want = balance.keep_mask(0, table["entry_ids"], keys=table["pair_key"])
    assert result["keep"] == want.tolist()


@pytest.mark.parametrize("loader", ["BalancedPool", "BalancedShards"])
def test_the_training_loops_see_each_epochs_sample(place, loader):
    block = next(b for b in python_blocks() if loader in b and "for epoch" in b)
    result = run_block(block, place)
    expected = kept_per_epoch(str(place / "out"))
    assert [sorted(seen) for seen in result["seen"]] == expected
    assert expected[0] != expected[1]  # two epochs, two different balanced samples
    assert result["saved_epochs"] and result["saved_epochs"][-1] == EPOCHS - 1
