"""A page's bytes to text as browsers decode them: byte-order mark, HTTP header, <meta>
charset, each mapped to the codec browsers use (WHATWG Encoding: superset codecs, and only
the encodings it has), then UTF-8, then detection, then UTF-8 with replacement."""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from metaclip.extraction.pairs import ExtractStats

DETECT_BYTES = 64 * 1024  # charset detection looks at this much of a page (bounded cost)
PRESCAN_BYTES = 8192  # where a <meta charset> is looked for (HTML says 1024; real pages stray)


_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]{1,40})""", re.I
)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]{1,40})""", re.I)
_LABELS = {"x-sjis": "cp932", "windows-31j": "cp932", "x-euc-jp": "euc_jp", "x-gbk": "gbk"}
# WHATWG Encoding: labels browsers decode with a superset codec.
_SUPERSETS = {
    "ascii": "cp1252",
    "iso8859_1": "cp1252",
    "iso8859_9": "cp1254",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
    "tis_620": "cp874",
    "iso8859_11": "cp874",
    # the JIS X 0213 variants that detection (charset_normalizer) names: WHATWG has only these
    "euc_jis_2004": "euc_jp",
    "euc_jisx0213": "euc_jp",
    "shift_jis_2004": "cp932",
    "shift_jisx0213": "cp932",
    "iso2022_jp_1": "iso2022_jp",
    "iso2022_jp_2": "iso2022_jp",
    "iso2022_jp_2004": "iso2022_jp",
    "iso2022_jp_3": "iso2022_jp",
    "iso2022_jp_ext": "iso2022_jp",
}


# The Python codecs of the encodings of WHATWG Encoding (after _SUPERSETS), the only ones browsers
# decode pages with.
_WHATWG_CODECS = frozenset({
    "utf_8", "utf_16", "utf_16_le", "utf_16_be", "cp866", "iso8859_2", "iso8859_3", "iso8859_4",
    "iso8859_5", "iso8859_6", "iso8859_7", "iso8859_8", "iso8859_10", "iso8859_13", "iso8859_14",
    "iso8859_15", "iso8859_16", "koi8_r", "koi8_u", "mac_roman", "mac_cyrillic", "cp874",
    "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258",
    "gb18030", "big5hkscs", "euc_jp", "iso2022_jp", "cp932", "cp949",
})  # fmt: skip


def _codec(label: str | None) -> str | None:
    """Python codec for a charset label (browser superset where there is one), or None for a
    label no browser decodes with (WHATWG Encoding): utf-7, EBCDIC, punycode and Python's other
    codecs are ignored, as browsers ignore them."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    try:
        name = codecs.lookup(_LABELS.get(label, label)).name
    except LookupError:
        return None
    name = name.replace("-", "_")
    name = _SUPERSETS.get(name, name)
    return name if name in _WHATWG_CODECS else None


def declared_charsets(content_type: str | None, body: bytes) -> list[str]:
    """Candidate codecs in browser order: byte-order mark, HTTP header, <meta> charset."""
    out: list[str] = []
    if body.startswith(codecs.BOM_UTF8):
        out.append("utf_8_sig")
    elif body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        out.append("utf_16")
    header = _HEADER_CHARSET.search(content_type or "")
    meta = _META_CHARSET.search(body, 0, PRESCAN_BYTES)
    candidates = [_codec(header and header.group(1))]
    meta_codec = _codec(meta and meta.group(1).decode("ascii"))
    # <meta> is read as ASCII bytes, so it cannot truly name UTF-16 (WHATWG: read it as UTF-8)
    candidates.append("utf_8" if meta_codec and meta_codec.startswith("utf_16") else meta_codec)
    out.extend(c for c in candidates if c and c not in out)
    return out


def decode_html(body: bytes, content_type: str | None, stats: ExtractStats) -> str:
    """The page as text: the first declared charset that decodes it, else detection, else UTF-8
    with replacement (counted)."""
    for codec in declared_charsets(content_type, body):
        try:
            return body.decode(codec)
        except (UnicodeError, LookupError):
            continue
    try:
        return body.decode("utf-8")  # the most common undeclared charset, and the cheapest test
    except UnicodeDecodeError:
        pass
    best = from_bytes(body[:DETECT_BYTES]).best()
    detected = _codec(best.encoding) if best is not None else None
    if detected is not None:
        try:
            text = body.decode(detected)
            stats.skip("charset_detected")  # counted, the page is kept
            return text
        except (UnicodeError, LookupError):
            pass
    stats.skip("charset_replaced")  # counted, the page is kept with U+FFFD
    return body.decode("utf-8", errors="replace")
