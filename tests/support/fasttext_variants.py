"""A fastText model file unlike lid.176.ftz, for the paths of the compiled LID kernel that the
bundled model does not take: a dense (not quantised) input matrix, no pruning (every hashed
bucket has its own row) and word bigrams (wordNgrams 2).

Built from lid.176.ftz: its args with another bucket count and wordNgrams, its dictionary
(words, counts, labels) byte for byte with the pruning table left out, seeded random input rows,
its dense output matrix. fastText loads it as any supervised model; its predictions mean nothing,
which does not matter: the kernel must give the same ones, to the bit.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from metaclip.extraction.fasttext_model import read_model

ARGS_AT = 8  # after magic and version
ARGS = "<11iid"  # dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdateRate t
DICT_AT = ARGS_AT + struct.calcsize(ARGS)


def write_dense_variant(source: Path, target: Path, bucket: int = 20_011, seed: int = 0) -> None:
    data = source.read_bytes()
    args = list(struct.unpack_from(ARGS, data, ARGS_AT))
    args[5], args[8] = 2, bucket  # wordNgrams, bucket
    size, nwords, nlabels, ntokens, prune_size = struct.unpack_from("<iiiqq", data, DICT_AT)
    entries_at = DICT_AT + struct.calcsize("<iiiqq")
    pos = entries_at
    for _ in range(size):
        pos = data.index(b"\0", pos) + 1 + 9  # the word, its count (int64), its type (int8)
    model = read_model(source)
    assert model is not None and model.output.dense is not None
    rng = np.random.default_rng(seed)
    rows = (rng.standard_normal((nwords + bucket, model.dim)) * 0.5).astype("<f4")
    out = model.output
    target.write_bytes(
        data[:ARGS_AT]
        + struct.pack(ARGS, *args)
        + struct.pack("<iiiqq", size, nwords, nlabels, ntokens, -1)  # not pruned
        + data[entries_at:pos]
        + struct.pack("<?", False)  # dense input
        + struct.pack("<qq", *rows.shape)
        + rows.tobytes()
        + struct.pack("<?", False)  # dense output
        + struct.pack("<qq", out.rows, out.cols)
        + out.dense.astype("<f4").tobytes()
    )
