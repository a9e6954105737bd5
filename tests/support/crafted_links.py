"""WAT pages of crafted image links, written byte by byte, for the compiled page path's tests.

The compiled build parses image link objects and resolves URLs in C (metaclip/extraction/
_watpage.pyx); these pages put in front of it what the pure path decides in Python: JSON escapes
of every kind (surrogate pairs, lone surrogates, escaped keys), raw control characters and
invalid UTF-8, whitespace, values that are not strings, duplicate keys, every URL shape the fast
paths take or refuse, texts that strip to nothing, over-long texts and URLs, a page over the
image limit. Each page is "plain" when it holds only what the C path must take itself.
GENERATED data, seeded: no real page.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson

from tests.hostile.corpus import gz, warcinfo, wat_doc, wat_record

# (raw JSON string content, plain): plain values are valid JSON strings the C path decodes.
URLS = [
    (b"a.png", True),
    (b"img/b.jpg", True),
    (b"/img/a.png", True),
    (b"/", True),
    (b"//cdn.example.com/a.png", True),
    (b"http://example.com/a.png", True),
    (b"https://example.com:8080/a.png?w=1&h=2#f", True),
    (b"HTTP://EXAMPLE.com/a", True),
    (b"  /padded.png  ", True),
    (b"data:image/png;base64,AAAA", True),
    (b"JaVaScript:void(0)", True),
    (b"/a//b.png", True),
    (b"/./a.png", True),
    (b"/a/../b.png", True),
    (b"/a;b.png", True),
    (b"/a b.png", True),
    (b"/a?#", True),
    (b"/a?", True),
    (b"/a#", True),
    (b"http://user:pw@example.com/a.png", True),
    (b"http://[::1]/a.png", True),
    (b"http://[::1/a.png", True),
    (b"http://example.com:123456/a", True),
    (b"http://example.com:/a", True),
    (b"http://", True),
    (b"//", True),
    (b"", True),
    (b"   ", True),
    (b"http://example.com/a\\\\b.png", True),
    (b"/a\\tb.png", True),
    (b"/a\\nb.png", True),
    (b"\\u002fescaped.png", True),
    (b"/caf\xc3\xa9.png", True),
    (b"/\\u00e9t\\u00e9.png", True),
    (b"/a.png\\u0000", True),
    (b"\\/slash.png", True),
    (b"mailto:a@example.com", True),
    (b"ftp://example.com/a.png", True),
    (b"/\x7f.png", True),
    (b"//exa_mple.com/a", True),
    (b"/" + b"x" * 2100, True),
    (b"http://example.com/" + b"y" * 2029, True),
    (b"//example.com/" + b"z" * 2030, True),
    (b"\\ud83d\\ude00.png", True),
    (b"/a\x01b.png", False),
    (b"/a\xffb.png", False),
    (b"/\\ud800.png", False),
    (b"/\\x41.png", False),
    (b"/\\u12", False),
]
TEXTS = [
    (b"", True),
    (b" ", True),
    (b"A cat on a mat", True),
    (b"  padded  ", True),
    (b"line\\nbreak", True),
    (b"\\r\\n", True),
    (b"\\u00a0nbsp\\u00a0", True),
    (b"\\u2003", True),
    (b"x\\u001f", True),
    (b"\\u001c\\u001d", True),
    (b"\\ud83d\\ude00 emoji", True),
    (b"caf\xc3\xa9 cr\xc3\xa8me", True),
    (b'\\"quoted\\" \\\\ back', True),
    (b"\\u0000", True),
    (b"\\b\\f\\t", True),
    (b"\xe2\x80\x83em space\xe2\x80\x83", True),
    (b"\x7f", True),
    (b"w" * 5000, True),
    (b" " * 5000, True),
    (b" " * 4096, True),
    (b"\\u00e9" * 4100, True),
    (b"A cat on a mat", True),
    (b"\xf0\x9f\x98\x80" * 3, True),
    (b"a\x01b", False),
    (b"\xc3(", False),
    (b"\xed\xa0\x80", False),
    (b"\\udc00", False),
    (b"\\ud800\\u0041", False),
    (b"\\q", False),
    (b"\xf4\x90\x80\x80", False),
    (b"\xc0\xaf", False),
]
OTHER_MEMBERS = [b'"target":"_blank"', b'"rel":"nofollow"', b'"text":"IMG"']
UNUSUAL_MEMBERS = [  # each makes the link one the C path leaves to the full parse
    b'"alt":1',
    b'"alt":null',
    b'"title":["x"]',
    b'"alt": "spaced"',
    b'"\\u0061lt":"esc"',
    b'"target":"\\ud800"',
    b'"width":{"v":"1"}',
    b'"text":"IMG@/src"',
]
PAGES = [  # (page URI, Head)
    ("http://example.com/dir/page.html", None),
    ("https://example.com:8443/p?q=1", None),
    ("http://example.com/dir/", {"Base": "https://cdn.example.org/base/"}),
    ("http://example.com/dir/", {"Base": "/other/"}),
    ("http://example.com/", {"Base": "javascript:x"}),
    ("http://user@example.com/p", None),
    ("http://[::1]:80/p", None),
    ("HTTP://EXAMPLE.COM/p", None),
    ("http://example.com/p?#", None),
]
TEXT_KEYS = (b"alt", b"title", b"data-image-title")


def _value(rng: random.Random, values: list[tuple[bytes, bool]]) -> tuple[bytes, bool]:
    """A plain value, or now and then one that is not."""
    plain = rng.random() > 0.02
    return rng.choice([v for v in values if v[1] == plain])


def _link(rng: random.Random) -> tuple[bytes, bool]:
    url, plain = _value(rng, URLS)
    members = [b'"path":"IMG@/src"']
    if rng.random() < 0.95:
        members.append(b'"url":"' + url + b'"')
    for key in TEXT_KEYS:
        if rng.random() < 0.55:
            text, ok = _value(rng, TEXTS)
            members.append(b'"' + key + b'":"' + text + b'"')
            plain = plain and ok
    if rng.random() < 0.3:
        members.append(rng.choice(OTHER_MEMBERS))
    if rng.random() < 0.1:  # a duplicate key: the last one wins
        text, ok = _value(rng, TEXTS)
        members.append(b'"' + rng.choice(TEXT_KEYS) + b'":"' + text + b'"')
        plain = plain and ok
    if rng.random() < 0.01:
        members.append(rng.choice(UNUSUAL_MEMBERS))
        plain = False
    rng.shuffle(members[1:])
    return b"{" + b",".join(members) + b"}", plain


def _page(uri: str, head: dict | None, links: list[bytes]) -> bytes:
    doc = wat_doc(uri, ["__LINKS__"], head)
    return orjson.dumps(doc).replace(b'"__LINKS__"', b",".join(links))


def write_crafted_wat(path: Path, pages: int = 600, seed: int = 0) -> list[tuple[bytes, bool]]:
    """Write the WAT file; returns (record body, plain) of each page, in order."""
    rng = random.Random(seed)
    bodies = []
    for i in range(pages):
        uri, head = PAGES[i % len(PAGES)]
        drawn = [_link(rng) for _ in range(rng.randint(1, 12))]
        links = [raw for raw, _ in drawn]
        if i % 50 == 7:  # the same links again: duplicate pairs within the file
            links += links
        bodies.append((_page(uri, head, links), all(ok for _, ok in drawn)))
    big = [b'{"path":"IMG@/src","url":"/i%d.png","alt":"image %d"}' % (k, k) for k in range(10_005)]
    bodies.append((_page(PAGES[0][0], None, big), True))  # over the page's image limit
    with path.open("wb") as out:
        out.write(gz(warcinfo(path.name)))
        for i, (body, _) in enumerate(bodies):
            out.write(gz(wat_record(PAGES[i % len(PAGES)][0] if i < pages else PAGES[0][0], body)))
    return bodies
