# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""fastText's top-1 prediction in C (Cython), bit for bit: the compiled build's language ID.

fastText 0.9.2 (fasttext-predict) spends most of a prediction looking each character n-gram
up in the pruned model's std::unordered_map (Dictionary::pushHash). This kernel does the same
arithmetic in the same order from the arrays of metaclip.extraction.fasttext_model, with that
map as a flat array, and without a stream per text: Dictionary::getLine and computeSubwords
(the FNV-1a hash on signed bytes, the UTF-8 n-grams), Model::computeHidden (rows added in
input order, then multiplied by the float 1/n), QuantMatrix/ProductQuantizer addcode and
mulcode, HierarchicalSoftmaxLoss::dfs with k=1 and threshold 0 (the float sigmoid through
expf, std_log in double, the later leaf winning a tie), and the probability as expf(score).
Float arithmetic stays in single precision without contraction (setup.py: -ffp-contract=off).

Built only by the opt-in compiled build (setup.py, METACLIP_COMPILE=1); lid.py uses it when it
imports and the model reads; tests/test_compiled.py compares it with fastText on every text of
the extraction inputs and on crafted ones, codes and float32 scores alike.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.math cimport expf, isnan, log
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy

import numpy as np

DEF KSUB = 256  # metaclip.extraction.fasttext_model.KSUB: 8-bit codes
DEF FNV_OFFSET = 2166136261
DEF FNV_PRIME = 16777619

cdef struct PQ:
    int nsubq
    int dsub
    int lastdsub
    const float *centroids

cdef struct Mat:
    bint quant
    bint qnorm
    int64_t cols
    const float *dense
    const uint8_t *codes
    PQ pq
    const uint8_t *norm_codes
    PQ npq


cdef inline const float *_centroid(const PQ *pq, int m, uint8_t i) noexcept nogil:
    if m == pq.nsubq - 1:
        return &pq.centroids[m * KSUB * pq.dsub + i * pq.lastdsub]
    return &pq.centroids[(m * KSUB + i) * pq.dsub]


cdef inline float _norm(const Mat *a, int64_t i) noexcept nogil:
    if a.qnorm:
        return _centroid(&a.npq, 0, a.norm_codes[i])[0]
    return 1.0


cdef void _add_row(const Mat *a, int64_t i, float *x) noexcept nogil:
    """Vector::addRow: DenseMatrix or QuantMatrix addRowToVector(x, i)."""
    cdef int64_t j
    cdef int m, n, d
    cdef float alpha
    cdef const float *c
    cdef const uint8_t *code
    if not a.quant:
        for j in range(a.cols):
            x[j] = x[j] + a.dense[i * a.cols + j]
        return
    alpha = _norm(a, i)
    d = a.pq.dsub
    code = a.codes + a.pq.nsubq * i
    for m in range(a.pq.nsubq):
        c = _centroid(&a.pq, m, code[m])
        if m == a.pq.nsubq - 1:
            d = a.pq.lastdsub
        for n in range(d):
            x[m * a.pq.dsub + n] = x[m * a.pq.dsub + n] + alpha * c[n]


cdef float _dot_row(const Mat *a, int64_t i, const float *x) noexcept nogil:
    """DenseMatrix or QuantMatrix dotRow (NaN from a dense row: fastText raises; so do we)."""
    cdef int64_t j
    cdef int m, n, d
    cdef float res = 0.0
    cdef const float *c
    cdef const uint8_t *code
    if not a.quant:
        for j in range(a.cols):
            res = res + a.dense[i * a.cols + j] * x[j]
        return res
    d = a.pq.dsub
    code = a.codes + a.pq.nsubq * i
    for m in range(a.pq.nsubq):
        c = _centroid(&a.pq, m, code[m])
        if m == a.pq.nsubq - 1:
            d = a.pq.lastdsub
        for n in range(d):
            res = res + x[m * a.pq.dsub + n] * c[n]
    return res * _norm(a, i)


cdef inline uint32_t _fnv(const char *s, Py_ssize_t n) noexcept nogil:
    cdef uint32_t h = FNV_OFFSET
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ <uint32_t><int8_t>s[i]) * FNV_PRIME
    return h


cdef inline float _std_log(float x) noexcept nogil:
    return <float>log(<double>x + 1e-5)


cdef inline bint _separator(char c) noexcept nogil:
    """Dictionary::readWord's separators."""
    return c == b' ' or c == b'\n' or c == b'\r' or c == b'\t' or c == b'\v' or c == b'\f' \
        or c == b'\0'


cdef class FastTextKernel:
    """One loaded model: `predict(texts)` is LanguageIdentifier._predict_unique's loop."""

    cdef int dim, minn, maxn, bucket, nwords, word_ngrams, osz
    cdef int64_t prune_size
    cdef Mat wi, wo
    cdef object keep  # the arrays the pointers above and below point into
    cdef const int32_t *prune  # bucket -> row offset, -1 when pruned away
    cdef const int32_t *table  # open addressing over the vocabulary, -1 empty
    cdef uint32_t table_mask
    cdef const char *vocab  # the entries' bytes, concatenated
    cdef const int64_t *vocab_off
    cdef const int8_t *types
    cdef const int64_t *sub_off  # each word's subword rows (Dictionary::initNgrams)
    cdef const int32_t *sub_rows
    cdef const int32_t *left
    cdef const int32_t *right
    cdef list labels
    cdef float *hidden
    cdef char *word  # scratch: "<" + token + ">"
    cdef int32_t *rows  # scratch: one token's n-gram rows
    cdef uint32_t *hashes  # scratch: the line's word hashes (word n-grams)
    cdef Py_ssize_t capacity
    cdef float log_threshold
    cdef bint nan  # a dense output row gave NaN: fastText raises

    def __cinit__(self):
        self.hidden = NULL
        self.word = NULL
        self.rows = NULL
        self.hashes = NULL
        self.capacity = 0

    def __init__(self, model):
        self.dim, self.minn, self.maxn = model.dim, model.minn, model.maxn
        self.bucket, self.nwords, self.word_ngrams = model.bucket, model.nwords, model.word_ngrams
        self.prune_size = model.prune_size
        self.osz = len(model.label_counts)
        self.log_threshold = _std_log(0.0)
        keep = []
        self.wi = _mat(model.input, keep)
        self.wo = _mat(model.output, keep)
        prune = np.full(self.bucket if self.prune_size > 0 else 1, -1, dtype=np.int32)
        inside = (model.prune_keys >= 0) & (model.prune_keys < self.bucket)
        prune[model.prune_keys[inside]] = model.prune_rows[inside]  # later pairs win, as in the map
        self.prune = _i32(prune, keep)
        self._vocabulary(model.words, model.types, keep)
        left, right = _tree(model.label_counts)
        self.left, self.right = _i32(left, keep), _i32(right, keep)
        self.labels = [w.decode("utf-8", "replace").removeprefix("__label__")
                       for w in model.words[self.nwords:]]
        self.hidden = <float *>PyMem_Malloc(self.dim * sizeof(float))
        if self.hidden == NULL:
            raise MemoryError
        self._reserve(64)
        self._subwords(model.words, keep)
        self.keep = keep

    def __dealloc__(self):
        PyMem_Free(self.hidden)
        PyMem_Free(self.word)
        PyMem_Free(self.rows)
        PyMem_Free(self.hashes)

    cdef _vocabulary(self, list words, object types, list keep):
        cdef Py_ssize_t size = len(words), i
        cdef uint32_t slot, mask = 1
        blob = b"".join(words)
        offsets = np.zeros(size + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(w) for w in words])
        while mask < 2 * size + 1:
            mask <<= 1
        table = np.full(mask, -1, dtype=np.int32)
        for i in range(size):
            slot = _fnv(words[i], len(words[i])) & (mask - 1)
            while table[slot] != -1 and words[table[slot]] != words[i]:
                slot = (slot + 1) & (mask - 1)
            table[slot] = i  # a duplicate entry: the later one, as Dictionary::load
        keep.append(blob)
        self.vocab = blob
        self.vocab_off = _i64(offsets, keep)
        self.table = _i32(table, keep)
        self.table_mask = mask - 1
        self.types = <const int8_t *><Py_ssize_t>_keep(np.ascontiguousarray(types, np.int8), keep)

    cdef _subwords(self, list words, list keep):
        """Dictionary::initNgrams: each word's row, then its character n-gram rows."""
        cdef Py_ssize_t i, n
        offsets = np.zeros(len(words) + 1, dtype=np.int64)
        parts = []
        for i in range(len(words)):
            w = words[i]
            n = 0
            if w != b"</s>":
                self._reserve(len(w))
                n = self._ngram_rows(w, len(w))
            rows = np.array([i] + [self.rows[j] for j in range(n)], dtype=np.int32)
            parts.append(rows)
            offsets[i + 1] = offsets[i] + len(rows)
        self.sub_off = _i64(offsets, keep)
        self.sub_rows = _i32(np.concatenate(parts), keep)

    cdef int _reserve(self, Py_ssize_t token_len) except -1:
        """Scratch for a token (or a line) of `token_len` bytes."""
        cdef Py_ssize_t need = token_len + 2
        if need <= self.capacity:
            return 0
        need = max(need, 2 * self.capacity)
        word = <char *>PyMem_Realloc(self.word, need)
        if word == NULL:
            raise MemoryError
        self.word = word
        rows = <int32_t *>PyMem_Realloc(self.rows, need * max(self.maxn, 1) * sizeof(int32_t))
        if rows == NULL:
            raise MemoryError
        self.rows = rows
        hashes = <uint32_t *>PyMem_Realloc(self.hashes, need * sizeof(uint32_t))
        if hashes == NULL:
            raise MemoryError
        self.hashes = hashes
        self.capacity = need
        return 0

    cdef inline bint _push(self, int64_t bucket_id, int32_t *row) noexcept nogil:
        """Dictionary::pushHash: the input row of a hashed n-gram, if the model kept it."""
        cdef int32_t id
        if self.prune_size == 0 or bucket_id < 0:
            return False
        id = <int32_t>bucket_id
        if self.prune_size > 0:
            id = self.prune[id]
            if id < 0:
                return False
        row[0] = self.nwords + id
        return True

    cdef Py_ssize_t _ngram_rows(self, const char *token, Py_ssize_t n) noexcept nogil:
        """Dictionary::computeSubwords on "<" + token + ">" into self.rows; the count."""
        cdef Py_ssize_t size = n + 2, i, j, count = 0
        cdef int k
        cdef uint32_t h
        cdef char *w = self.word
        w[0] = b'<'
        memcpy(w + 1, token, n)
        w[n + 1] = b'>'
        for i in range(size):
            if (w[i] & 0xC0) == 0x80:
                continue
            h = FNV_OFFSET
            j = i
            k = 1
            while j < size and k <= self.maxn:
                h = (h ^ <uint32_t><int8_t>w[j]) * FNV_PRIME
                j += 1
                while j < size and (w[j] & 0xC0) == 0x80:
                    h = (h ^ <uint32_t><int8_t>w[j]) * FNV_PRIME
                    j += 1
                if k >= self.minn and not (k == 1 and (i == 0 or j == size)):
                    if self._push(h % <uint32_t>self.bucket, &self.rows[count]):
                        count += 1
                k += 1
        return count

    cdef inline int32_t _lookup(self, const char *token, Py_ssize_t n, uint32_t h) noexcept nogil:
        cdef uint32_t slot = h & self.table_mask
        cdef int32_t wid
        while True:
            wid = self.table[slot]
            if wid < 0:
                return -1
            if self.vocab_off[wid + 1] - self.vocab_off[wid] == n \
                    and memcmp(self.vocab + self.vocab_off[wid], token, n) == 0:
                return wid
            slot = (slot + 1) & self.table_mask

    cdef int64_t _token(self, const char *token, Py_ssize_t n, uint32_t *hashes,
                        int64_t *nhashes) noexcept nogil:
        """Dictionary::getLine for one token: adds its rows to hidden; how many."""
        cdef uint32_t h = _fnv(token, n)
        cdef int32_t wid = self._lookup(token, n, h)
        cdef int64_t added = 0, r
        cdef Py_ssize_t count, i
        if wid < 0:
            if n >= 9 and memcmp(token, b"__label__", 9) == 0:
                return 0  # an unknown label: neither a word nor a hash
        elif self.types[wid] != 0:
            return 0  # a known label
        if wid < 0:
            if not (n == 4 and memcmp(token, b"</s>", 4) == 0):
                count = self._ngram_rows(token, n)
                for i in range(count):
                    _add_row(&self.wi, self.rows[i], self.hidden)
                added = count
        elif self.maxn <= 0:
            _add_row(&self.wi, wid, self.hidden)
            added = 1
        else:
            for r in range(self.sub_off[wid], self.sub_off[wid + 1]):
                _add_row(&self.wi, self.sub_rows[r], self.hidden)
            added = self.sub_off[wid + 1] - self.sub_off[wid]
        hashes[nhashes[0]] = h
        nhashes[0] += 1
        return added

    cdef int64_t _word_ngrams(self, const uint32_t *hashes, int64_t n) noexcept nogil:
        """Dictionary::addWordNgrams (its int32 hashes widen with their sign)."""
        cdef int64_t i, j, added = 0
        cdef uint64_t h
        cdef int32_t row
        for i in range(n):
            h = <uint64_t><int64_t><int32_t>hashes[i]
            j = i + 1
            while j < n and j < i + self.word_ngrams:
                h = h * 116049371 + <uint64_t><int64_t><int32_t>hashes[j]
                if self._push(<int64_t>(h % <uint64_t>self.bucket), &row):
                    _add_row(&self.wi, row, self.hidden)
                    added += 1
                j += 1
        return added

    cdef void _dfs(self, int node, float score, float *best, int *best_node) noexcept nogil:
        """HierarchicalSoftmaxLoss::dfs with k=1: the later of equal leaves wins."""
        cdef float f
        if self.nan or score < self.log_threshold:
            return
        if best_node[0] >= 0 and score < best[0]:
            return
        if self.left[node] == -1 and self.right[node] == -1:
            best[0] = score
            best_node[0] = node
            return
        f = _dot_row(&self.wo, node - self.osz, self.hidden)
        if not self.wo.quant and isnan(f):
            self.nan = True
            return
        f = <float>(1.0 / <double>(<float>1.0 + expf(-f)))
        self._dfs(self.left[node], score + _std_log(<float>(1.0 - <double>f)), best, best_node)
        self._dfs(self.right[node], score + _std_log(f), best, best_node)

    cdef int _predict_line(self, const char *line, Py_ssize_t n, float *prob) except -2:
        """FastText::predictLine on line + "\\n": the label, -1 for none."""
        cdef Py_ssize_t i = 0, start
        cdef int64_t inputs = 0, nhashes = 0
        cdef int d, best_node = -1
        cdef float scale, best = 0.0
        cdef bint eos = False
        self._reserve(n)
        self.nan = False
        for d in range(self.dim):
            self.hidden[d] = 0.0
        while i < n:
            while i < n and _separator(line[i]):
                i += 1
            start = i
            while i < n and not _separator(line[i]):
                i += 1
            if i > start:
                inputs += self._token(line + start, i - start, self.hashes, &nhashes)
                if i - start == 4 and memcmp(line + start, b"</s>", 4) == 0:
                    eos = True  # getLine stops at a written "</s>" as at the newline
                    break
        if not eos:
            inputs += self._token(b"</s>", 4, self.hashes, &nhashes)  # the newline
        inputs += self._word_ngrams(self.hashes, nhashes)
        if inputs == 0:
            return -1
        scale = <float>(1.0 / <double>inputs)
        for d in range(self.dim):
            self.hidden[d] = self.hidden[d] * scale
        self._dfs(2 * self.osz - 2, 0.0, &best, &best_node)
        if best_node < 0:
            return -1
        if self.nan:
            raise FloatingPointError("fastText: encountered NaN")  # DenseMatrix::dotRow throws
        prob[0] = expf(best)
        return best_node

    def predict(self, list texts):
        """(codes, float32 scores, valid) for texts, as LanguageIdentifier._predict_unique."""
        cdef Py_ssize_t i, n, count = len(texts)
        cdef const char *buf
        cdef float prob = 0.0
        cdef int label
        codes = [None] * count
        scores = np.zeros(count, dtype=np.float32)
        valid = np.zeros(count, dtype=bool)
        cdef float[::1] score_view = scores
        cdef unsigned char[::1] valid_view = valid.view(np.uint8)
        for i in range(count):
            text = texts[i]
            if not text:
                continue
            line = " ".join(text.split())
            if not line:
                continue
            try:
                buf = PyUnicode_AsUTF8AndSize(line, &n)
            except UnicodeEncodeError:  # a lone surrogate (never in an Arrow string): no language
                continue
            label = self._predict_line(buf, n, &prob)
            if label < 0:
                continue
            codes[i] = self.labels[label]
            score_view[i] = prob
            valid_view[i] = 1
        return codes, scores, valid


def _keep(arr, list keep):
    keep.append(arr)
    return arr.ctypes.data


cdef const int32_t *_i32(object arr, list keep):
    return <const int32_t *><Py_ssize_t>_keep(np.ascontiguousarray(arr, np.int32), keep)


cdef const int64_t *_i64(object arr, list keep):
    return <const int64_t *><Py_ssize_t>_keep(np.ascontiguousarray(arr, np.int64), keep)


cdef const float *_f32(object arr, list keep):
    return <const float *><Py_ssize_t>_keep(np.ascontiguousarray(arr, np.float32), keep)


cdef const uint8_t *_u8(object arr, list keep):
    return <const uint8_t *><Py_ssize_t>_keep(np.ascontiguousarray(arr, np.uint8), keep)


cdef PQ _pq(object q, list keep):
    cdef PQ pq
    pq.nsubq, pq.dsub, pq.lastdsub = q.nsubq, q.dsub, q.lastdsub
    pq.centroids = _f32(q.centroids, keep)
    return pq


cdef Mat _mat(object m, list keep):
    cdef Mat a
    a.cols = m.cols
    a.quant = m.codes is not None
    a.qnorm = m.norm_codes is not None
    a.dense = _f32(m.dense, keep) if not a.quant else NULL
    a.codes = _u8(m.codes, keep) if a.quant else NULL
    if a.quant:
        a.pq = _pq(m.pq, keep)
    if a.qnorm:
        a.norm_codes = _u8(m.norm_codes, keep)
        a.npq = _pq(m.npq, keep)
    return a


def _tree(counts):
    """HierarchicalSoftmaxLoss::buildTree: (left, right) of its 2 * osz - 1 nodes."""
    osz = len(counts)
    count = [int(c) for c in counts] + [10**15] * (osz - 1)
    left, right = [-1] * (2 * osz - 1), [-1] * (2 * osz - 1)
    leaf, node = osz - 1, osz
    for i in range(osz, 2 * osz - 1):
        mini = [0, 0]
        for j in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                mini[j], leaf = leaf, leaf - 1
            else:
                mini[j], node = node, node + 1
        left[i], right[i] = mini
        count[i] = count[mini[0]] + count[mini[1]]
    return np.array(left, np.int32), np.array(right, np.int32)
