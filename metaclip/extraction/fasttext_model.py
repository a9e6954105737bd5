"""A fastText model file (.bin, or quantised .ftz such as lid.176.ftz) read into arrays.

For the compiled build's language ID kernel (metaclip/extraction/_lid.pyx), which predicts
exactly as fastText 0.9.2 does from these arrays. The layout is fastText's own
(src/fasttext.cc loadModel: args, dictionary, input matrix, output matrix). `read_model`
returns None for a file the kernel does not reproduce (another loss than hierarchical softmax,
an unsupervised model, inconsistent sizes); language ID then stays on fastText itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = 793712314  # FASTTEXT_FILEFORMAT_MAGIC_INT32
MAX_VERSION = 12  # FASTTEXT_VERSION
KSUB = 256  # ProductQuantizer: 8-bit codes
LOSS_HS = 1  # loss_name::hs
MODEL_SUP = 3  # model_name::sup
LABEL_PREFIX = b"__label__"  # Args::label, not stored in the file


@dataclass(frozen=True)
class Quantizer:
    """fastText's ProductQuantizer: `nsubq` sub-vectors of `dsub` (the last `lastdsub`)."""

    dim: int
    nsubq: int
    dsub: int
    lastdsub: int
    centroids: np.ndarray  # float32, dim * KSUB


@dataclass(frozen=True)
class Matrix:
    """A DenseMatrix (`dense`) or a QuantMatrix (`codes`, `pq`, optional norms)."""

    rows: int
    cols: int
    dense: np.ndarray | None = None  # float32, rows * cols
    codes: np.ndarray | None = None  # uint8, rows * pq.nsubq
    pq: Quantizer | None = None
    norm_codes: np.ndarray | None = None  # uint8, rows (qnorm)
    npq: Quantizer | None = None


@dataclass(frozen=True)
class FastTextModel:
    dim: int
    word_ngrams: int
    bucket: int
    minn: int
    maxn: int
    nwords: int
    words: list[bytes]  # words, then labels
    types: np.ndarray  # int8: 0 word, 1 label
    label_counts: np.ndarray  # int64, the labels' counts (the hierarchical softmax tree)
    prune_size: int  # -1: not pruned; else the number of (bucket -> row) pairs
    prune_keys: np.ndarray  # int32
    prune_rows: np.ndarray  # int32
    input: Matrix
    output: Matrix


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if count < 0 or self.pos + size > len(self.data):
            raise ValueError("truncated fastText model")
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos).copy()
        self.pos += size
        return out

    def cstring(self) -> bytes:
        end = self.data.index(b"\0", self.pos)
        word, self.pos = self.data[self.pos : end], end + 1
        return word


def _quantizer(r: _Reader) -> Quantizer:
    dim, nsubq, dsub, lastdsub = r.unpack("iiii")
    if dim <= 0 or nsubq <= 0 or dsub <= 0 or (nsubq - 1) * dsub + lastdsub != dim:
        raise ValueError("inconsistent product quantizer")
    return Quantizer(dim, nsubq, dsub, lastdsub, r.array("<f4", dim * KSUB))


def _matrix(r: _Reader, quantised: bool) -> Matrix:
    if not quantised:
        rows, cols = r.unpack("qq")
        return Matrix(rows, cols, dense=r.array("<f4", rows * cols))
    qnorm, rows, cols, codesize = r.unpack("?qqi")
    codes = r.array("u1", codesize)
    pq = _quantizer(r)
    if pq.dim != cols or codesize != rows * pq.nsubq:
        raise ValueError("inconsistent quantised matrix")
    if not qnorm:
        return Matrix(rows, cols, codes=codes, pq=pq)
    norm_codes = r.array("u1", rows)
    npq = _quantizer(r)
    if npq.dim != 1:
        raise ValueError("inconsistent norm quantizer")
    return Matrix(rows, cols, codes=codes, pq=pq, norm_codes=norm_codes, npq=npq)


def read_model(path: str | Path) -> FastTextModel | None:
    """The model's arrays, or None where the kernel does not reproduce fastText on it."""
    try:
        return _read(Path(path).read_bytes())
    except (OSError, ValueError, struct.error):  # fastText then reports the file itself
        return None


def _read(data: bytes) -> FastTextModel | None:
    r = _Reader(data)
    magic, version = r.unpack("ii")
    if magic != MAGIC or version > MAX_VERSION:
        return None
    dim, _ws, _epoch, _min_count, _neg, word_ngrams, loss, model, bucket, minn, maxn = r.unpack(
        "11i"
    )
    r.unpack("id")  # lrUpdateRate, t
    if version == 11 and model == MODEL_SUP:
        maxn = 0  # fastText: old supervised models have no character n-grams
    size, nwords, nlabels, _ntokens, prune_size = r.unpack("iiiqq")
    words, counts, types = [], [], []
    for _ in range(size):
        words.append(r.cstring())
        count, kind = r.unpack("qb")
        counts.append(count)
        types.append(kind)
    pairs = r.array("<i4", 2 * max(prune_size, 0)).reshape(-1, 2)
    (quant_input,) = r.unpack("?")
    matrix_in = _matrix(r, quant_input)
    (qout,) = r.unpack("?")
    matrix_out = _matrix(r, quant_input and qout)
    types_arr = np.array(types, dtype=np.int8)
    label_counts = np.array(counts, dtype=np.int64)[types_arr == 1]
    model_ = FastTextModel(
        dim, word_ngrams, bucket, minn, maxn, nwords, words, types_arr, label_counts,
        prune_size, pairs[:, 0].copy(), pairs[:, 1].copy(), matrix_in, matrix_out,
    )  # fmt: skip
    ok = model == MODEL_SUP and loss == LOSS_HS and nlabels >= 2 and size == nwords + nlabels
    return model_ if ok and _consistent(model_) else None


def _consistent(m: FastTextModel) -> bool:
    """Every index the kernel will follow lands inside its array."""
    rows_in, rows_out = m.input.rows, m.output.rows
    if (m.types[: m.nwords] != 0).any() or (m.types[m.nwords :] != 1).any():
        return False
    if m.dim <= 0 or m.input.cols != m.dim or m.output.cols != m.dim or m.bucket <= 0:
        return False
    if rows_out < len(m.label_counts) - 1 or not 0 <= m.nwords <= rows_in:
        return False
    if m.prune_size > 0 and (m.prune_rows.min() < 0 or m.prune_rows.max() >= rows_in - m.nwords):
        return False
    return m.prune_size >= 0 or rows_in >= m.nwords + m.bucket
