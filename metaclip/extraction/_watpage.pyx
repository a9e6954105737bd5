# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The WAT page fast path in C (Cython): the same rows, stats and fallbacks as
metaclip.extraction.wat._add_fast followed by PairBuffer.add_images, which stay the
specification (tests/test_compiled.py compares the two builds on every extraction input).

Built only by the opt-in compiled build (setup.py, METACLIP_COMPILE=1); wat.py uses it when it
imports. Where the pure path spends its time, this one does not build Python objects:

- the image link objects are cut out of the record as image_links_from_bytes cuts them and
  parsed here, keeping only the spans of `url`, `alt`, `title` and `data-image-title`; a record
  this parser does not take (a value that is not a string, whitespace between tokens, an
  escaped key, anything orjson would refuse) makes the whole page go to the full parse, as a
  failed cut does in the pure path, before anything is added;
- an image URL of the shapes PairBuffer._resolve resolves by regex (printable ASCII, as written)
  is checked and resolved on its bytes; every other URL goes to PairBuffer._resolve itself;
- an image without text costs no Python string at all; texts, urls and uuids are made as
  Python strings only for the rows kept, and cleaned by the same Python string methods.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memchr, memcmp

from metaclip.extraction.urls import clean_text, image_uuid

cdef extern from "string.h":
    void *memmem(const void *haystack, size_t hlen, const void *needle, size_t nlen) nogil

DEF N_KEYS = 4  # url, then the texts in TEXT_KEYS order: alt, title, data-image-title
TEXT_KEY_NAMES = ("alt", "title", "data-image-title")  # metaclip.io.schemas.TEXT_KEYS

cdef struct Span:
    Py_ssize_t start  # content between the quotes; start == -1: member absent
    Py_ssize_t end
    bint escaped  # holds a backslash escape


cdef struct Link:
    Span value[N_KEYS]


# ---- JSON, strictly: anything unusual fails the page (the full parse then decides) ----------

cdef inline bint _utf8_valid(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    """Strict UTF-8 (no overlong forms, no surrogates, at most U+10FFFF), as orjson requires."""
    cdef Py_ssize_t i = 0
    cdef unsigned char c, c1
    while i < n:
        c = s[i]
        if c < 0x80:
            i += 1
        elif c >= 0xC2 and c <= 0xDF:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return False
            i += 2
        elif c >= 0xE0 and c <= 0xEF:
            if i + 2 >= n:
                return False
            c1 = s[i + 1]
            if (c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80:
                return False
            if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 > 0x9F):
                return False
            i += 3
        elif c >= 0xF0 and c <= 0xF4:
            if i + 3 >= n:
                return False
            c1 = s[i + 1]
            if ((c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80
                    or (s[i + 3] & 0xC0) != 0x80):
                return False
            if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 > 0x8F):
                return False
            i += 4
        else:
            return False
    return True


cdef inline int _hex4(const unsigned char *s) noexcept nogil:
    """The value of 4 hex digits, or -1."""
    cdef int v = 0, k
    cdef unsigned char c
    for k in range(4):
        c = s[k]
        if c >= 48 and c <= 57:
            v = v * 16 + (c - 48)
        elif c >= 97 and c <= 102:
            v = v * 16 + (c - 87)
        elif c >= 65 and c <= 70:
            v = v * 16 + (c - 55)
        else:
            return -1
    return v


cdef Py_ssize_t _string_end(const unsigned char *s, Py_ssize_t i, Py_ssize_t n,
                            bint *escaped) noexcept nogil:
    """From the byte after an opening quote: the offset of the closing quote, or -1 where the
    string is not valid JSON (a raw control character, a bad escape, a lone surrogate)."""
    cdef unsigned char c
    cdef int u, low
    escaped[0] = False
    while i < n:
        c = s[i]
        if c == 34:  # "
            return i
        if c < 0x20:
            return -1
        if c != 92:  # backslash
            i += 1
            continue
        escaped[0] = True
        if i + 1 >= n:
            return -1
        c = s[i + 1]
        if c == 117:  # \uXXXX
            if i + 6 > n:
                return -1
            u = _hex4(s + i + 2)
            if u < 0 or (u >= 0xDC00 and u <= 0xDFFF):
                return -1
            if u >= 0xD800 and u <= 0xDBFF:  # must be followed by its low half
                if i + 12 > n or s[i + 6] != 92 or s[i + 7] != 117:
                    return -1
                low = _hex4(s + i + 8)
                if low < 0xDC00 or low > 0xDFFF:
                    return -1
                i += 12
            else:
                i += 6
        elif (c == 34 or c == 92 or c == 47 or c == 98 or c == 102 or c == 110 or c == 114
              or c == 116):
            i += 2
        else:
            return -1
    return -1


cdef int _key_index(const unsigned char *s, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    """Which kept member a key names (0 url, 1-3 the texts), or -1."""
    cdef Py_ssize_t n = end - start
    if n == 3 and memcmp(s + start, b"url", 3) == 0:
        return 0
    if n == 3 and memcmp(s + start, b"alt", 3) == 0:
        return 1
    if n == 5 and memcmp(s + start, b"title", 5) == 0:
        return 2
    if n == 16 and memcmp(s + start, b"data-image-title", 16) == 0:
        return 3
    return -1


cdef bint _parse_link(const unsigned char *s, Py_ssize_t i, Py_ssize_t n,
                      Link *link) noexcept nogil:
    """Parse the compact object s[i:n] (`{` ... `}`) of string members; the last of duplicate
    keys wins, as in orjson. False where it is anything else."""
    cdef Py_ssize_t k, key_start, key_end, value_end
    cdef bint escaped
    cdef int which
    for k in range(N_KEYS):
        link.value[k].start = -1
    if n - i < 2 or s[i] != 123 or s[n - 1] != 125:  # { ... }
        return False
    i += 1
    if i == n - 1:
        return True  # {}
    while True:
        if s[i] != 34:
            return False
        key_start = i + 1
        key_end = _string_end(s, key_start, n, &escaped)
        if key_end < 0 or escaped:  # an escaped key could spell a kept one
            return False
        if key_end + 2 >= n or s[key_end + 1] != 58 or s[key_end + 2] != 34:  # :"
            return False
        value_end = _string_end(s, key_end + 3, n, &escaped)
        if value_end < 0:
            return False
        which = _key_index(s, key_start, key_end)
        if which >= 0:
            link.value[which].start = key_end + 3
            link.value[which].end = value_end
            link.value[which].escaped = escaped
        i = value_end + 1
        if i == n - 1:
            return True
        if s[i] != 44:  # ,
            return False
        i += 1


cdef Link *_cut_links(const unsigned char *s, Py_ssize_t n, Py_ssize_t first,
                      Py_ssize_t keep, Py_ssize_t *count) except? NULL:
    """The image link objects, cut as wat._cut_image_links cuts them (every IMG@/src must be a
    `"path":"` member, between the nearest `{"` before it and `}` after it); NULL with count 0
    where the page needs the full parse. Every link is checked, the first `keep` kept."""
    cdef Py_ssize_t pos = first, start, end = 0, j, cap = 16
    cdef const unsigned char *hit
    cdef Link *links = <Link *> PyMem_Malloc(cap * sizeof(Link))
    cdef Link *grown
    cdef Link scratch
    if links == NULL:
        raise MemoryError()
    count[0] = 0
    while pos != -1:
        if pos < 8 or memcmp(s + pos - 8, b'"path":"', 8) != 0:
            break
        start = -1  # rfind(b'{"', end, pos - 7)
        j = pos - 9
        while j >= end:
            if s[j] == 123 and s[j + 1] == 34:
                start = j
                break
            j -= 1
        hit = <const unsigned char *> memchr(s + pos, 125, n - pos)  # find(b"}", pos)
        if start == -1 or hit == NULL:
            break
        end = hit - s
        if not _utf8_valid(s + start, end + 1 - start):  # orjson reads only UTF-8
            break
        if count[0] >= keep:  # past the page limit: checked, not kept
            if not _parse_link(s, start, end + 1, &scratch):
                break
            count[0] += 1
            hit = <const unsigned char *> memmem(s + end, n - end, b"IMG@/src", 8)
            pos = -1 if hit == NULL else hit - s
            continue
        if count[0] == cap:
            cap *= 2
            grown = <Link *> PyMem_Realloc(links, cap * sizeof(Link))
            if grown == NULL:
                PyMem_Free(links)
                raise MemoryError()
            links = grown
        if not _parse_link(s, start, end + 1, &links[count[0]]):
            break
        count[0] += 1
        hit = <const unsigned char *> memmem(s + end, n - end, b"IMG@/src", 8)
        pos = -1 if hit == NULL else hit - s
    else:
        return links
    PyMem_Free(links)
    count[0] = 0
    return NULL


# ---- Strings and URLs ---------------------------------------------------------------------

cdef str _decode(const unsigned char *s, Span span):
    """A JSON string's content (already validated) as a Python string."""
    cdef Py_ssize_t i = span.start, n = span.end, o = 0
    cdef unsigned char c
    cdef int u, low
    cdef bytearray out
    cdef unsigned char *w
    if not span.escaped:
        return PyUnicode_DecodeUTF8(<const char *> s + i, n - i, NULL)
    out = bytearray(n - i)  # escapes never decode longer than they are written
    w = out
    while i < n:
        c = s[i]
        if c != 92:
            w[o] = c
            o += 1
            i += 1
            continue
        c = s[i + 1]
        if c == 117:
            u = _hex4(s + i + 2)
            i += 6
            if u >= 0xD800 and u <= 0xDBFF:
                low = _hex4(s + i + 2)
                u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                i += 6
            if u < 0x80:
                w[o] = u
                o += 1
            elif u < 0x800:
                w[o] = 0xC0 | (u >> 6)
                w[o + 1] = 0x80 | (u & 0x3F)
                o += 2
            elif u < 0x10000:
                w[o] = 0xE0 | (u >> 12)
                w[o + 1] = 0x80 | ((u >> 6) & 0x3F)
                w[o + 2] = 0x80 | (u & 0x3F)
                o += 3
            else:
                w[o] = 0xF0 | (u >> 18)
                w[o + 1] = 0x80 | ((u >> 12) & 0x3F)
                w[o + 2] = 0x80 | ((u >> 6) & 0x3F)
                w[o + 3] = 0x80 | (u & 0x3F)
                o += 4
            continue
        if c == 98:
            w[o] = 8
        elif c == 102:
            w[o] = 12
        elif c == 110:
            w[o] = 10
        elif c == 114:
            w[o] = 13
        elif c == 116:
            w[o] = 9
        else:  # " \ /
            w[o] = c
        o += 1
        i += 2
    return PyUnicode_DecodeUTF8(<const char *> w, o, NULL)


cdef inline bint _host_char(unsigned char c) noexcept nogil:  # [A-Za-z0-9.-]
    return ((c >= 97 and c <= 122) or (c >= 65 and c <= 90) or (c >= 48 and c <= 57)
            or c == 46 or c == 45)


cdef inline bint _path_char(unsigned char c) noexcept nogil:  # [^\x00-\x20\x7f\\;]
    return c > 32 and c != 127 and c != 92 and c != 59


cdef bint _tail_from(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """s[i:] fullmatches pairs._TAIL: empty, or [/?#] then path characters."""
    if i == n:
        return True
    if s[i] != 47 and s[i] != 63 and s[i] != 35:
        return False
    i += 1
    while i < n:
        if not _path_char(s[i]):
            return False
        i += 1
    return True


cdef bint _host_tail(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """s[i:] fullmatches pairs._HOST + pairs._TAIL."""
    cdef Py_ssize_t h = i, digits
    while i < n and _host_char(s[i]):
        i += 1
    if i == h:
        return False
    if i < n and s[i] == 58:  # an optional :port of 1 to 5 digits
        digits = 0
        while i + 1 + digits < n and digits < 5 and s[i + 1 + digits] >= 48 \
                and s[i + 1 + digits] <= 57:
            digits += 1
        if digits == 0:
            return False
        i += 1 + digits
    return _tail_from(s, i, n)


cdef bint _root_relative(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    """pairs._ROOT_RELATIVE fullmatches, with no `//` and no `/.` in it."""
    cdef Py_ssize_t i
    if n == 0 or s[0] != 47:
        return False
    for i in range(1, n):
        if not _path_char(s[i]):
            return False
        if s[i - 1] == 47 and (s[i] == 47 or s[i] == 46):
            return False
    return True


cdef bint _lower_prefix(const unsigned char *s, Py_ssize_t n, const char *prefix,
                        Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t k
    cdef unsigned char c
    if n < m:
        return False
    for k in range(m):
        c = s[k]
        if c >= 65 and c <= 90:
            c += 32
        if c != <unsigned char> prefix[k]:
            return False
    return True


# The outcome of _resolve_fast: the URL is kept as written, under the origin's scheme, under
# the origin, or (no fast shape) PairBuffer._resolve decides; or it is refused.
DEF AS_WRITTEN = 0
DEF UNDER_SCHEME = 1
DEF UNDER_ORIGIN = 2
DEF SLOW = 3
DEF NOT_HTTP = 4
DEF TOO_LONG = 5


cdef int _resolve_fast(const unsigned char *s, Span span, Py_ssize_t max_url, bint has_origin,
                       Py_ssize_t scheme_len, Py_ssize_t origin_len,
                       Py_ssize_t *start, Py_ssize_t *end) noexcept nogil:
    """PairBuffer._resolve for a src of printable ASCII written without escapes (so strip()
    removes only spaces): its fast shapes, decided on the bytes; SLOW for the rest."""
    cdef Py_ssize_t i = span.start, n = span.end, k
    if span.escaped:
        return SLOW
    for k in range(i, n):
        if s[k] < 32 or s[k] > 126:
            return SLOW
    while i < n and s[i] == 32:
        i += 1
    while n > i and s[n - 1] == 32:
        n -= 1
    start[0], end[0] = i, n
    if _lower_prefix(s + i, n - i, b"data:", 5) or _lower_prefix(s + i, n - i, b"javascript:", 11):
        return NOT_HTTP
    if n - i > max_url:
        return TOO_LONG
    if not has_origin or n == i or s[n - 1] == 63 or s[n - 1] == 35:
        return SLOW
    if memmem(s + i, n - i, b"?#", 2) != NULL:
        return SLOW
    if n - i >= 7 and memcmp(s + i, b"http://", 7) == 0 and _host_tail(s, i + 7, n):
        return AS_WRITTEN
    if n - i >= 8 and memcmp(s + i, b"https://", 8) == 0 and _host_tail(s, i + 8, n):
        return AS_WRITTEN
    if n - i >= 2 and s[i] == 47 and s[i + 1] == 47:
        if _host_tail(s, i + 2, n):
            return UNDER_SCHEME if scheme_len + n - i <= max_url else TOO_LONG
        return SLOW
    if _root_relative(s + i, n - i):
        return UNDER_ORIGIN if origin_len + n - i <= max_url else TOO_LONG
    return SLOW


cdef bint _blank(const unsigned char *s, Span span) noexcept nogil:
    """The text is spaces only, written without escapes (so it strips to nothing)."""
    cdef Py_ssize_t k
    if span.escaped:
        return False
    for k in range(span.start, span.end):
        if s[k] != 32:
            return False
    return True


# ---- The page ------------------------------------------------------------------------------

def add_wat_page(bytes body, str target_uri, long long offset, buffer, stats, base_href,
                 Py_ssize_t first):
    """The end of wat._add_fast, from the first `IMG@/src` (at `first`) of a page whose base
    the caller read: False, having added nothing, where the page needs the full parse."""
    cdef const unsigned char *s = <const unsigned char *> PyBytes_AS_STRING(body)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(body), count = 0
    cdef Link *links
    if first < 0 or first >= n:
        return False
    links = _cut_links(s, n, first, buffer.limits.max_images_per_page, &count)
    if links == NULL:
        return False
    try:
        stats.pages += 1
        _add_images(s, links, count, target_uri, base_href, offset, buffer, stats)
    finally:
        PyMem_Free(links)
    return True


cdef _add_images(const unsigned char *s, Link *links, Py_ssize_t count, str page_url,
                 base_href, long long record_offset, buffer, stats):
    """PairBuffer.add_images, step for step (its comments say why)."""
    cdef Py_ssize_t i, k, max_text, max_url, pairs = 0, start = 0, end = 0
    cdef Py_ssize_t scheme_len = 0, origin_len = 0
    cdef int shape
    cdef bint has_origin
    cdef Link *link
    cdef str src, url, text, value, uuid, pair, scheme = "", origin_url = ""
    if (page_url, base_href) != buffer._base_key:
        buffer._set_base(page_url, base_href)
    limits = buffer.limits
    stats.images += count
    skipped, seen, uuids = stats.skipped, buffer._seen, buffer._uuids
    if count > limits.max_images_per_page:
        skipped["images_over_page_limit"] += count - limits.max_images_per_page
        count = limits.max_images_per_page
    origin = buffer._origin
    has_origin = origin is not None
    if has_origin:
        scheme, origin_url = origin.group(1), origin.group(0)
        scheme_len, origin_len = len(scheme), len(origin_url)
    resolve = buffer._resolve
    max_text, max_url = limits.max_text_chars, limits.max_url_chars
    add_uuid, add_url, add_text, add_key = (
        buffer._uuid.append, buffer._url.append, buffer._text.append, buffer._key.append
    )
    for i in range(count):
        link = &links[i]
        if link.value[0].start < 0:
            skipped["img_without_src"] += 1
            continue
        shape = _resolve_fast(s, link.value[0], max_url, has_origin, scheme_len, origin_len,
                              &start, &end)
        url = None
        if shape == NOT_HTTP:
            skipped["img_url_not_http"] += 1
            continue
        if shape == TOO_LONG:
            skipped["img_url_too_long"] += 1
            continue
        if shape == SLOW:
            src = _decode(s, link.value[0])
            resolved = resolve(src)
            if resolved.__class__ is not str:
                skipped[resolved[0] if resolved else "img_url_not_http"] += 1
                continue
            url = resolved
        uuid = None
        for k in range(1, N_KEYS):
            if link.value[k].start < 0 or (
                link.value[k].end - link.value[k].start <= max_text and _blank(s, link.value[k])
            ):
                continue
            value = _decode(s, link.value[k])
            if len(value) > max_text:
                value = value[:max_text]
                skipped["text_truncated"] += 1
            text = clean_text(value) if "\n" in value or "\r" in value else value.strip()
            if not text:
                continue
            if url is None:
                url = PyUnicode_DecodeUTF8(<const char *> s + start, end - start, NULL)
                if shape == UNDER_SCHEME:
                    url = scheme + url
                elif shape == UNDER_ORIGIN:
                    url = origin_url + url
            if uuid is None:
                uuid = uuids.get(url)
                if uuid is None:
                    uuid = image_uuid(url)
                    uuids[url] = uuid
            pair = uuid + text
            if pair in seen:
                skipped["duplicate_pair_in_file"] += 1
                continue
            seen.add(pair)
            add_uuid(uuid)
            add_url(url)
            add_text(text)
            add_key(TEXT_KEY_NAMES[k - 1])
            pairs += 1
        if uuid is None:
            skipped["img_without_text"] += 1
    if pairs:
        buffer._pages.append((page_url, record_offset, pairs))
    stats.pairs += pairs
