from __future__ import annotations

import hashlib

import pytest

from metaclip.extraction.urls import clean_text, image_uuid, page_base, resolve_image_url

PAGE = "https://example.com/dir/page.html"


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("img/a.jpg", "https://example.com/dir/img/a.jpg"),
        ("/img/a.jpg", "https://example.com/img/a.jpg"),
        ("../a.jpg", "https://example.com/a.jpg"),
        ("//cdn.example.org/a.jpg", "https://cdn.example.org/a.jpg"),
        ("http://other.org/a.jpg", "http://other.org/a.jpg"),
        ("  /padded.jpg\n", "https://example.com/padded.jpg"),
        ("?v=2", "https://example.com/dir/page.html?v=2"),
        ("data:image/png;base64,iVBORw0KGgo=", None),
        ("javascript:void(0)", None),
        ("ftp://example.com/a.jpg", None),
        ("mailto:x@example.com", None),
        ("", None),
        ("http://[::1", None),
    ],
)
def test_resolve(src, expected):
    assert resolve_image_url(PAGE, src) == expected


def test_base_href_is_honoured_and_itself_relative():
    base = page_base(PAGE, "/static/")
    assert base == "https://example.com/static/"
    assert resolve_image_url(base, "a.jpg") == "https://example.com/static/a.jpg"
    assert page_base(PAGE, "https://cdn.example.net/x/") == "https://cdn.example.net/x/"


def test_unusable_base_href_falls_back_to_page():
    assert page_base(PAGE, "javascript:alert(1)") == PAGE
    assert page_base(PAGE, "   ") == PAGE
    assert page_base(PAGE, None) == PAGE


def test_uuid_is_metaclips():
    url = "https://example.com/a b\t.jpg"
    expected = hashlib.sha224(b"https://example.com/ab.jpg").hexdigest()[:24]
    assert image_uuid(url) == expected
    assert len(image_uuid("http://x")) == 24


def test_clean_text():
    assert clean_text("  a\nb\rc  ") == "a b c"
    assert clean_text("\n\r") == ""
