"""One HTML page to its image pairs: charset decoding as browsers do it, and a parse whose cost
is bounded whatever the markup.

Every `<img>` goes through `PairBuffer.add_images`, as the WAT path's links do.

Why the parse needs a bound
---------------------------
selectolax parses with lexbor (3.1), the HTML5 tree construction in C: linear for ordinary
pages, super-linear for tag soup. Measured with bench/bench_html_soup.py, 1 MB of each:

* depth: most tokens walk the stack of open elements ("has a p element in button scope",
  "any other end tag", <li>'s walk, foster parenting in tables, resetting the insertion mode),
  so each costs the depth. ``<div>``, ``<div></span>`` (issue 14: the stray ``</span>`` closes
  nothing), ``<span><div></span>``, ``<ul><li>``, ``<table>`` or ``<select>`` then ``<div>``,
  ``<svg>`` then ``<g>`` and ``</x>``, ``<b><div></b>`` and ``<a><div>`` (adoption agency),
  distinct ``<b id=n>``: over 20 s each, minutes to hours at 8 MB.
* active formatting elements: one closed by anything but its own end tag is cloned again at
  the next text or start tag ("reconstruct the active formatting elements"), and lexbor looks
  each entry up in the stack: ``<p><b id=n>x`` or ``<div><b id=n></div>`` run out of 4 GiB at
  1 MB; 40 unclosed ``<b>``s, or one with 200 attributes, then ``<div>x</div>``: seconds at
  1 MB, out of 4 GiB at 8 MB.
* attributes: each attribute of a new element is checked against those before it, so a tag
  with n distinct attributes costs n^2 / 2; attributes of ``<html>``/``<body>`` start tags are
  merged into the element the same way, over the whole page: over 20 s.
* DOM mutation events: lexbor clones the selected ``<option>`` into ``<selectedcontent>`` at
  each insertion, quadratic in the option's content (over 20 s). Pages are parsed with
  ``WO_EVENTS``, without them: the tree is what the markup says, and real pages parse 6%
  faster (and give the same images).

Linear whatever the soup, and left alone: unclosed comments, ``<script>``/``<style>``/
``<textarea>`` raw text, ``<plaintext>``, ``<table>`` and ``<select>`` in themselves (each
closes the last), ``<b><i></b></i>``, ``<a>`` in ``<a>``, ``<b>`` or ``<font>`` x n (the Noah's
Ark clause keeps 3), ``<li>``/``<p>``/``<dd>`` chains, ignored end tags, entities, NULs.

The bound
---------
`nesting_cut` runs `_Tree`, a model of lexbor's tree builder (the stack of open elements; the
list of active formatting elements with its markers and Noah's Ark clause; the adoption agency
as lexbor codes it; every insertion mode; foreign content and its integration points; raw text
and script escapes; quirks mode, asked of lexbor itself), over lexbor's tokens, in time linear
in the page. It follows the depth of the stack, which it never under-estimates (tested against
lexbor's trees), and `work`, a bound of lexbor's steps: each token is charged twice the depth,
and clones, attribute checks and list scans their cost. The page is cut before the first token
where the depth passes MAX_DEPTH (2048; Chromium stops nesting at 512) or the work passes
WORK_BUDGET (3e8 steps, under a second of lexbor for any soup measured), or after MAX_SCAN_TAGS
tags (200,000; the model's own time, 2-5 us a tag, is charged to the work too). lexbor then
parses what comes before the cut, and its images are kept; the cut is counted
``page_cut_too_deep``. A real page is never cut: its depth stays in the tens and its work under
1% of the budget (tests/test_html_bounds.py).

The model costs several times lexbor's parse, so it only runs where a cheap test says the page
could be slow: more than SCAN_TAGS_ABOVE ``<`` (12,000; below that, a depth of at most 12,000
costs lexbor about half a second), more than SCAN_BYTES_PER_TAG characters per ``<`` (2048:
few, long tags, where attributes pile up), or more than FORMATTING_CHECK_ABOVE ``<`` (3,000;
below that, clones cost under half a second) with distinct formatting tags (one regular
expression) enough to clone beyond the budget. Those tests cost about 4% of lexbor's time on
real pages. What a page under those limits can still cost: a tag with thousands of attributes
that the length test misses, because ``<`` inside its names and ``>`` inside its quoted values
make it look like many short tags (only the model's tokenizer sees where a tag ends).
"""

from __future__ import annotations

import bisect
import codecs
import html as _html
import re
from itertools import count

from charset_normalizer import from_bytes
from selectolax.lexbor import LexborHTMLParser

from metaclip.extraction.pairs import ExtractStats, PairBuffer

try:  # selectolax >= 1.0: parse without DOM mutation events (see the module docstring)
    from selectolax.lexbor import LexborDocumentOptions

    _PARSE_OPTIONS = {"options": int(LexborDocumentOptions.WO_EVENTS)}
except ImportError:  # pragma: no cover - older selectolax has no mutation events to turn off
    _PARSE_OPTIONS = {}

DETECT_BYTES = 64 * 1024  # charset detection looks at this much of a page (bounded cost)
PRESCAN_BYTES = 8192  # where a <meta charset> is looked for (HTML says 1024; real pages stray)
HTML_TYPES = ("text/html", "application/xhtml+xml")

MAX_DEPTH = 2048  # the stack of open elements lexbor may build (Chromium: 512)
WORK_BUDGET = 300_000_000  # lexbor tree-building steps (of a few ns each) a page may cost
MAX_SCAN_TAGS = 200_000  # tags the model reads (about a second); a page is cut after them
SCAN_TAGS_ABOVE = 12_000  # '<' in a page above which the tree model runs
SCAN_BYTES_PER_TAG = 2048  # ... or characters per '<' above which it runs (long tags)
FORMATTING_CHECK_ABOVE = 3_000  # '<' above which formatting tags are looked at (clones)


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


def is_html(content_type: str | None, body: bytes) -> bool:
    if content_type:
        return content_type.split(";", 1)[0].strip().lower() in HTML_TYPES
    head = body[:1024].lstrip().lower()  # no Content-Type: sniff, as browsers do
    return head.startswith((b"<!doctype html", b"<head", b"<body")) or b"<html" in head


# ---------------------------------------------------------------------------------------------
# A model of lexbor's tree builder (lexbor 3.1, source/lexbor/html/tree/), for the bound
# ---------------------------------------------------------------------------------------------

_W = "\t\n\f\r "  # HTML whitespace (the tokenizer reads CR as LF)
_ATTRS = (  # the attribute states of the tokenizer, exactly: where a tag really ends
    rf"(?:[{_W}]++|/(?!>)|[^{_W}/>][^{_W}/>=]*+"
    rf"(?:[{_W}]*+=[{_W}]*+(?:\"[^\"]*+\"?|'[^']*+'?|[^{_W}>]*+))?)*+"
)
_TOKEN = re.compile(  # a tag (groups: "/", name, attributes, end), or a comment, doctype, bogus
    rf"<(?:(/?)([a-zA-Z][^{_W}/>]*+)({_ATTRS})(/?>)?|!--(?:-?>|.*?--!?>|.*)|![^>]*+>?"
    r"|\?[^>]*+>?|/(?:>|[^a-zA-Z>][^>]*+>?))",
    re.S,
)
_ATTR = re.compile(
    rf"([^{_W}/>][^{_W}/>=]*+)(?:[{_W}]*+=[{_W}]*+(\"[^\"]*+\"?|'[^']*+'?|[^{_W}>]*+))?"
)
_RAW_END = {  # the end tag that ends RAWTEXT/RCDATA (ASCII case-insensitive, as lexbor)
    n: re.compile(rf"</{n}(?=[{_W}/>])", re.I | re.A)
    for n in ("style", "xmp", "iframe", "noembed", "noframes", "title", "textarea")
}
_SCRIPT_SCAN = re.compile(rf"<!--|-->|</script(?=[{_W}/>])|<script(?=[{_W}/>])", re.I | re.A)
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# formatting start tags with attributes (the list keeps up to 3 entries per distinct one)
_FORMATTING_TAG = re.compile(
    r"<(?=[bBcCeEfFiInNsStTuU])(?:[bBiIsSuU]|[eE][mM]|[tT][tT]|[bB][iI][gG]|[cC][oO][dD][eE]"
    r"|[fF][oO][nN][tT]|[nN][oO][bB][rR]|[sS][mM][aA][lL][lL]|[sS][tT][rR][iI][kK][eE]"
    rf"|[sS][tT][rR][oO][nN][gG])[{_W}/]{_ATTRS}"
)


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Element categories, as lexbor's tag_res.h has them.
_SPECIAL_HTML = _names(
    "address applet area article aside base basefont bgsound blockquote body br button caption "
    "center col colgroup dd details dir div dl dt embed fieldset figcaption figure footer form "
    "frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html iframe image img input keygen "
    "li link listing main marquee menu meta nav noembed noframes noscript object ol p param "
    "plaintext pre script search section select source style summary table tbody td template "
    "textarea tfoot th thead title tr track ul wbr xmp"
)
_SCOPE_HTML = _names("applet caption html marquee object select table td template th")
_SPECIAL_MATH = _names("annotation-xml mi mn mo ms mtext")
_SPECIAL_SVG = _names("desc foreignobject title")
_MODE_NAMES = _names(
    "td th tr tbody thead tfoot caption colgroup table template head body frameset html"
)
# category bits: special, scope boundaries (default, button, list item, table), special other
# than address/div/p (where <li>'s walk stops), decides the insertion mode
_SPECIAL, _SCOPE, _BUTTON, _LISTI, _TSCOPE, _NADP, _MODE = 1, 2, 4, 8, 16, 32, 64
_HTML, _MATH, _SVG = 0, 1, 2


def _category(name: str, ns: int) -> int:
    if ns != _HTML:
        special = _SPECIAL_MATH if ns == _MATH else _SPECIAL_SVG
        return _SPECIAL | _NADP | _SCOPE | _BUTTON | _LISTI if name in special else 0
    cat = 0
    if name in _SPECIAL_HTML:
        cat |= _SPECIAL if name in ("address", "div", "p") else _SPECIAL | _NADP
    if name in _SCOPE_HTML:
        cat |= _SCOPE | _BUTTON | _LISTI
    if name == "button":
        cat |= _BUTTON
    if name in ("ol", "ul"):
        cat |= _LISTI
    if name in ("html", "table", "template"):
        cat |= _TSCOPE
    if name in _MODE_NAMES:
        cat |= _MODE
    return cat


_CATS = {n: _category(n, _HTML) for n in _SPECIAL_HTML | _SCOPE_HTML | _MODE_NAMES | {"ol", "ul"}}
_IMPLIED = _names("dd dt li optgroup option p rb rp rt rtc")
_IMPLIED_ALL = _IMPLIED | _names("caption colgroup tbody td tfoot th thead tr")
_H = ("h1", "h2", "h3", "h4", "h5", "h6")
_BREAKOUT = _names(  # start tags that leave foreign content
    "b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i img "
    "li listing menu meta nobr ol p pre ruby s small span strong strike sub table tt u ul var"
)
_MTIP = _names("mi mo mn ms mtext")  # MathML text integration points
_P_CLOSERS = _names(
    "address article aside blockquote center details dialog dir div dl fieldset figcaption "
    "figure footer header hgroup main menu nav ol p search section summary ul"
)
_BLOCK_END = _names(
    "address article aside blockquote button center details dialog dir div dl fieldset "
    "figcaption figure footer header hgroup listing main menu nav ol pre search section select "
    "summary ul"
)
_FMT = _names("b big code em font i s small strike strong tt u")
_FMT_END = _FMT | {"a", "nobr"}
_HEADISH = _names("base basefont bgsound link meta noframes script style template title")
_VOID_BODY = frozenset(("area", "br", "embed", "img", "keygen", "wbr"))
_TABLE_STRAY = _names("caption col colgroup frame head tbody td tfoot th thead tr")
_CELL_CT = _names("caption col colgroup tbody td tfoot th thead tr")
_ROW_CT = _names("caption col colgroup tbody tfoot thead tr")
_IGNORED_IN_TABLE = _names("body caption col colgroup html tbody td tfoot th thead tr")

(  # insertion modes
    _INITIAL,
    _BEFORE_HTML,
    _BEFORE_HEAD,
    _IN_HEAD,
    _IN_HEAD_NOSCRIPT,
    _AFTER_HEAD,
    _IN_BODY,
    _TEXT,
    _IN_TABLE,
    _IN_CAPTION,
    _IN_COLGROUP,
    _IN_TBODY,
    _IN_ROW,
    _IN_CELL,
    _IN_TEMPLATE,
    _AFTER_BODY,
    _IN_FRAMESET,
    _AFTER_FRAMESET,
    _AFTER_AFTER_BODY,
    _AFTER_AFTER_FRAMESET,
) = range(20)
_HEAD_PHASE = frozenset(
    (_INITIAL, _BEFORE_HTML, _BEFORE_HEAD, _IN_HEAD, _IN_HEAD_NOSCRIPT, _AFTER_HEAD)
)

# An element is a list (cheaper than an object): [serial, name, namespace, category, index in
# the stack or -1, attributes, Noah's Ark signature, HTML integration point, in the list of
# active formatting elements, section of that list]. The serial makes == an identity test.
_N, _NS, _CAT, _I, _K, _SIG, _HIP, _FA, _SEC = range(1, 10)
_MARKER = [0, "#marker", _HTML, 0, -1, 0, None, False, False, 0]
# Work, in units of a step of lexbor's stack walks (about 3 ns; bench/bench_html_soup.py):
_CLONE = 1000  # creating an element as a copy of another (lexbor's share: _CLONE_LEXBOR)
_CLONE_LEXBOR = 150
_CLONE_ATTR = 60  # ... and each attribute it copies
_ATTR_PAIR = 4  # one attribute checked against another (k attributes: k * k / 2 checks)


def _nattrs(attrs: str) -> int:
    """How many attributes (exact for long ones; short ones have at most 32 anyway)."""
    if not attrs:
        return 0
    if len(attrs) < 64:
        return attrs.count("=") + 1
    return len(_ATTR.findall(attrs))


def _attr_dict(attrs: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in _ATTR.findall(attrs):
        name = name.translate(_LOWER)
        if name not in out:
            if value[:1] in ("'", '"'):
                value = value[1:-1] if len(value) > 1 and value[-1] == value[0] else value[1:]
            out[name] = value
    return out


def _nonws(s: str) -> bool:
    return bool(s.strip(_W))


def _rindex(lst: list, e: list) -> int:
    """Where e is in lst, looked for from the end (where the entries that change are)."""
    j = len(lst) - 1
    while lst[j] is not e:
        j -= 1
    return j


def _remove_last(lst: list, e: list) -> None:
    del lst[_rindex(lst, e)]


class _CatLists(dict):
    """Category bits -> the tree's boundary lists for them (computed once per bits)."""

    def __init__(self, tree: _Tree) -> None:
        super().__init__()
        self.tree = tree

    def __missing__(self, c: int) -> tuple[list[list], ...]:
        self[c] = lists = tuple(self.tree._cat_lists(c))
        return lists


class _Tree:
    """Lexbor's tree construction, reduced to what decides the stack of open elements and its
    cost: feed it the tokens in order (`start`, `end`, `text`); `max_depth` is the deepest the
    stack has been, `work` bounds the steps lexbor took (see the module docstring).

    Scope queries are O(1): per name, the open elements of that name; per kind of scope
    boundary, the open boundaries (all in stack order, each element knowing its index)."""

    def __init__(self, quirks: bool) -> None:
        self.quirks = quirks
        self.ids = count(1)
        self.st: list[list] = []
        self.byname: dict[str, list[list]] = {}  # open HTML elements by name
        self.foreign: dict[str, list[list]] = {}  # open SVG and MathML elements by name
        self.l_html: list[list] = []  # the open HTML elements
        self.l_special: list[list] = []
        self.l_nadp: list[list] = []
        self.l_scope: list[list] = []
        self.l_button: list[list] = []
        self.l_list: list[list] = []
        self.l_table: list[list] = []
        self.l_mode: list[list] = []
        self.afl: list[list] = []  # the list of active formatting elements
        self.markpos: list[int] = []  # where its markers are
        self.afl_names: dict[str, list[list]] = {}  # its entries by name, in list order
        self.afl_sigs: dict[tuple, list[list]] = {}  # ... by (name, attributes)
        self.mode = _INITIAL
        self.orig = _IN_BODY  # the mode to return to after raw text
        self.tmodes: list[int] = []  # the stack of template insertion modes
        self.head: list | None = None
        self.form: list | None = None
        self.frameset_ok = True
        self.html_k = 0  # attributes merged into <html>, <body>
        self.body_k = 0
        self.work = 0
        self.max_depth = 0
        self.detached = 0  # elements left in the DOM above what follows (tests' DOM oracle)
        self.ask: str | None = None  # raw text the tokenizer must skip: its tag, or "plaintext"
        self.catlists = _CatLists(self)  # category bits -> the boundary lists it goes in

    def new(self, name: str, ns: int = _HTML, k: int = 0, sig=None, hip: bool = False) -> list:
        cat = _CATS.get(name, 0) if ns == _HTML else _category(name, ns)
        return [next(self.ids), name, ns, cat, -1, k, sig, hip, False, 0]

    # ----------------------------------------------------------------- the stack
    def push(self, e: list) -> list:
        # (hot: the indices are spelled out, see _N... above)
        st = self.st
        i = e[4] = len(st)
        st.append(e)
        if i >= self.max_depth:
            self.max_depth = i + 1
        if e[2] == _HTML:
            lst = self.byname.get(e[1])
            if lst is None:
                self.byname[e[1]] = [e]
            else:
                lst.append(e)
            self.l_html.append(e)
        else:
            self.foreign.setdefault(e[1], []).append(e)
        if e[3]:
            for lst in self.catlists[e[3]]:
                lst.append(e)
        return e

    def pop(self) -> list:
        e = self.st.pop()
        e[4] = -1
        if e[2] == _HTML:
            self.byname[e[1]].pop()
            self.l_html.pop()
        else:
            self.foreign[e[1]].pop()
        if e[3]:
            for lst in self.catlists[e[3]]:
                lst.pop()
        return e

    def _cat_lists(self, c: int) -> list[list[list]]:
        out = []
        if c & _SPECIAL:
            out.append(self.l_special)
            if c & _NADP:
                out.append(self.l_nadp)
        if c & _SCOPE:
            out.append(self.l_scope)
        if c & _BUTTON:
            out.append(self.l_button)
        if c & _LISTI:
            out.append(self.l_list)
        if c & _TSCOPE:
            out.append(self.l_table)
        if c & _MODE:
            out.append(self.l_mode)
        return out

    def _lists(self, e: list) -> list[list[list]]:  # every list e is in
        own = [self.byname[e[_N]], self.l_html] if e[_NS] == _HTML else [self.foreign[e[_N]]]
        return own + list(self.catlists[e[_CAT]]) if e[_CAT] else own

    def pop_until(self, e: list) -> None:
        st = self.st
        while st and st[-1] is not e:
            self.pop()
        if st:
            self.pop()

    def remove(self, e: list) -> None:
        """Take e out of the middle of the stack."""
        st = self.st
        idx = e[_I]
        for lst in self._lists(e):
            lst.remove(e)
        del st[idx]
        for j in range(idx, len(st)):
            st[j][_I] = j
        e[_I] = -1
        self.work += 50 * len(st)  # (the model renumbers the stack: charged for its own time)

    def insert_at(self, e: list, idx: int) -> None:
        """Put e (a formatting element: in no category list) at stack index idx."""
        st = self.st
        st.insert(idx, e)
        for j in range(idx, len(st)):
            st[j][_I] = j
        if len(st) > self.max_depth:
            self.max_depth = len(st)
        for lst in self._lists(e):
            p = len(lst)
            while p and lst[p - 1][_I] > idx:
                p -= 1
            lst.insert(p, e)
        self.work += 50 * len(st)

    def replace(self, old: list, new: list) -> None:
        idx = old[_I]
        self.st[idx] = new
        new[_I] = idx
        old[_I] = -1
        for lst in self._lists(old):
            lst[lst.index(old)] = new
        self.work += 10 * len(self.st)

    # ----------------------------------------------------------------- queries
    def top(self, name: str) -> list | None:
        lst = self.byname.get(name)
        return lst[-1] if lst else None

    def in_scope(self, name: str, bounds: list[list]) -> list | None:
        """The topmost HTML element `name` if no boundary is above it (boundaries: the list)."""
        lst = self.byname.get(name)
        if lst and (not bounds or lst[-1][_I] >= bounds[-1][_I]):
            return lst[-1]
        return None

    def in_scope_any(self, names, bounds: list[list]) -> list | None:
        best = None
        for n in names:
            lst = self.byname.get(n)
            if lst and (best is None or lst[-1][_I] > best[_I]):
                best = lst[-1]
        if best is not None and (not bounds or best[_I] >= bounds[-1][_I]):
            return best
        return None

    def cur_is(self, *names: str) -> bool:
        st = self.st
        return bool(st) and st[-1][_NS] == _HTML and st[-1][_N] in names

    # ----------------------------------------------------------------- helpers
    def insert(self, name: str, attrs: str = "", sig=None) -> list:
        k = _nattrs(attrs) if attrs else 0
        if k > 1:
            self.work += _ATTR_PAIR * k * k  # each attribute is checked against those before
        return self.push(
            [next(self.ids), name, _HTML, _CATS.get(name, 0), -1, k, sig, False, False, 0]
        )

    def void(self, attrs: str) -> None:
        k = _nattrs(attrs)
        if k > 1:
            self.work += _ATTR_PAIR * k * k

    def gen_implied(self, except_name: str | None = None) -> None:
        st = self.st
        while st:
            c = st[-1]
            if c[_N] not in _IMPLIED or (c[_N] == except_name and c[_NS] == _HTML):
                return
            self.pop()

    def pop_until_name(self, name: str) -> None:
        e = self.top(name)
        if e is None:  # lexbor pops everything; scope checks keep this from happening
            while self.st:
                self.pop()
            return
        self.pop_until(e)

    def close_p(self) -> None:
        self.gen_implied("p")
        self.pop_until_name("p")

    def maybe_close_p(self) -> None:
        if self.in_scope("p", self.l_button) is not None:
            self.close_p()

    def clear_back_to(self, names) -> None:
        st = self.st
        while st and not (st[-1][_NS] == _HTML and st[-1][_N] in names):
            self.pop()

    # ----------------------------------------------------------------- active formatting list
    # Every change to the list is after its last marker (its current section), so the lookups
    # below start there, or from the end: old sections (markers left behind by elements popped
    # without their end tag) can make the list long.
    def section_start(self) -> int:
        return self.markpos[-1] + 1 if self.markpos else 0

    def afl_index(self, e: list) -> int:
        try:
            return self.afl.index(e, self.section_start())
        except ValueError:  # (not seen: every entry the algorithms touch is in the section)
            return self.afl.index(e)

    def afl_add(self, e: list, idx: int | None = None) -> None:
        e[_FA] = True
        sec = e[_SEC] = len(self.markpos)
        afl = self.afl
        names = self.afl_names.setdefault(e[_N], [])
        sigs = self.afl_sigs.setdefault((e[_N], e[_SIG]), [])
        if idx is None or idx >= len(afl):
            afl.append(e)
            names.append(e)
            sigs.append(e)
            return
        afl.insert(idx, e)  # (the adoption agency's bookmark: in the current section)
        section = afl[self.section_start() : idx]
        for lst, same in (
            (names, lambda x: x[_N] == e[_N]),
            (sigs, lambda x: x[_N] == e[_N] and x[_SIG] == e[_SIG]),
        ):
            j = len(lst)
            while j and lst[j - 1][_SEC] == sec:  # the entries of older sections come first
                j -= 1
            lst.insert(j + sum(1 for x in section if x is not _MARKER and same(x)), e)
        self.work += 20 * len(section)

    def afl_del(self, e: list, idx: int | None = None) -> None:
        del self.afl[self.afl_index(e) if idx is None else idx]
        e[_FA] = False
        _remove_last(self.afl_names[e[_N]], e)
        _remove_last(self.afl_sigs[(e[_N], e[_SIG])], e)

    def afl_swap(self, old: list, new: list, idx: int) -> None:
        self.afl[idx] = new
        old[_FA] = False
        new[_FA] = True
        new[_SEC] = old[_SEC]
        for lst in (self.afl_names[old[_N]], self.afl_sigs[(old[_N], old[_SIG])]):
            lst[_rindex(lst, old)] = new

    def push_marker(self) -> None:
        self.markpos.append(len(self.afl))
        self.afl.append(_MARKER)

    def clear_to_marker(self) -> None:
        afl = self.afl
        while afl:
            e = afl.pop()
            if e is _MARKER:
                self.markpos.pop()
                return
            e[_FA] = False
            self.afl_names[e[_N]].pop()
            self.afl_sigs[(e[_N], e[_SIG])].pop()

    def last_in_section(self, name: str) -> list | None:
        """The last entry named `name` after the last marker."""
        lst = self.afl_names.get(name)
        if lst and lst[-1][_SEC] == len(self.markpos):
            return lst[-1]
        return None

    def push_formatting(self, e: list) -> None:
        """Push e to the list; the Noah's Ark clause keeps 3 equal entries per section."""
        sec = len(self.markpos)
        section = len(self.afl) - (self.markpos[-1] + 1 if self.markpos else 0)
        self.work += section * (1 + e[_K] * e[_K])  # lexbor compares e with each entry
        lst = self.afl_sigs.get((e[_N], e[_SIG]))
        if lst:
            j = len(lst)
            while j and lst[j - 1][_SEC] == sec:
                j -= 1
            if len(lst) - j >= 3:
                self.afl_del(lst[j])
        self.afl_add(e)

    def reconstruct(self) -> None:
        """Reconstruct the active formatting elements: clone those no longer open."""
        afl = self.afl
        if not afl:
            return
        last = afl[-1]
        depth = len(self.st)
        if last is _MARKER or last[_I] >= 0:
            if last is not _MARKER:
                self.work += depth - last[_I]  # lexbor looks for it from the top of the stack
            return
        idx = len(afl) - 1
        self.work += depth
        while idx:
            idx -= 1
            x = afl[idx]
            self.work += depth
            if x is _MARKER or x[_I] >= 0:
                idx += 1
                break
        # the entries from idx on are, per name (and per signature), the last of their lists
        left: dict = {}
        for old in afl[idx:]:
            left[old[_N]] = left.get(old[_N], 0) + 1
            key = (old[_N], old[_SIG])
            left[key] = left.get(key, 0) + 1
        names = self.afl_names
        sigs = self.afl_sigs
        for j in range(idx, len(afl)):
            old = afl[j]
            new = self.new(old[_N], _HTML, old[_K], old[_SIG])
            self.work += _CLONE + _CLONE_ATTR * old[_K] + len(self.st)
            self.push(new)
            afl[j] = new
            old[_FA] = False
            new[_FA] = True
            new[_SEC] = old[_SEC]
            for d, key in ((names, old[_N]), (sigs, (old[_N], old[_SIG]))):
                lst = d[key]
                lst[len(lst) - left[key]] = new
                left[key] -= 1

    def adoption(self, subject: str) -> bool:
        """The adoption agency algorithm as lexbor codes it; True: go on with "any other end
        tag"."""
        st = self.st
        afl = self.afl
        self.work += 4 * (len(st) + len(afl) - self.section_start())
        node = st[-1]
        if node[_NS] == _HTML and node[_N] == subject:
            if not node[_FA]:
                self.pop()
                return False
            if self.last_in_section(subject) is node:  # well nested: the usual case
                self.pop()
                self.afl_del(node)
                return False
        for _ in range(8):
            fe = self.last_in_section(subject)
            if fe is None:
                return True
            self.work += 4 * (len(st) + len(afl) - self.section_start())
            if fe[_I] < 0:
                self.afl_del(fe)
                return False
            if self.l_scope and fe[_I] < self.l_scope[-1][_I]:
                return False
            sp = self.l_special
            j = bisect.bisect_right(sp, fe[_I], key=lambda x: x[_I])
            if j == len(sp):  # no furthest block
                self.pop_until(fe)
                self.afl_del(fe)
                return False
            fb = sp[j]
            fidx = self.afl_index(fe)
            bookmark = fidx
            last = fb
            node_idx = fb[_I]
            counter = 0
            while True:
                counter += 1
                node_idx -= 1
                node = st[node_idx]
                if node is fe:
                    break
                if counter > 3 and node[_FA]:
                    self.afl_del(node)
                if not node[_FA]:
                    self.remove(node)
                    continue
                aidx = self.afl_index(node)
                clone = self.new(node[_N], _HTML, node[_K], node[_SIG])
                self.work += _CLONE + _CLONE_ATTR * node[_K]
                self.afl_swap(node, clone, aidx)
                self.replace(node, clone)
                if last is fb:
                    bookmark = aidx + 1
                last = clone
            new = self.new(fe[_N], _HTML, fe[_K], fe[_SIG])
            self.work += _CLONE + _CLONE_ATTR * fe[_K] + 4 * len(st)
            if fidx < len(afl):  # lexbor removes the entry at fe's old index, moved or not
                x = afl[fidx]
                if x is _MARKER:
                    del afl[fidx]
                    self.markpos.pop()
                else:
                    self.afl_del(x, fidx)
            self.afl_add(new, min(bookmark, len(afl)))
            self.remove(fe)
            self.insert_at(new, fb[_I] + 1)
        return False

    def reset_mode(self) -> None:
        """Reset the insertion mode appropriately: the topmost element that decides it."""
        self.work += len(self.st)
        lm = self.l_mode
        if not lm:
            self.mode = _IN_BODY
            return
        node = lm[-1]
        n = node[_N]
        last = node[_I] == 0
        if n in ("td", "th"):
            self.mode = _IN_BODY if last else _IN_CELL
        elif n == "tr":
            self.mode = _IN_ROW
        elif n in ("tbody", "thead", "tfoot"):
            self.mode = _IN_TBODY
        elif n == "caption":
            self.mode = _IN_CAPTION
        elif n == "colgroup":
            self.mode = _IN_COLGROUP
        elif n == "table":
            self.mode = _IN_TABLE
        elif n == "template":
            self.mode = self.tmodes[-1] if self.tmodes else _IN_BODY
        elif n == "head":
            self.mode = _IN_BODY if last else _IN_HEAD
        elif n == "body":
            self.mode = _IN_BODY
        elif n == "frameset":
            self.mode = _IN_FRAMESET
        else:  # html
            self.mode = _BEFORE_HEAD if self.head is None else _AFTER_HEAD

    def any_other_end(self, name: str) -> None:
        e = self.top(name)
        if e is None:
            return
        sp = self.l_special
        if sp and sp[-1][_I] > e[_I]:  # a special element is in the way: ignored
            return
        self.gen_implied(name)
        self.pop_until(e)

    def raw(self, name: str, attrs: str) -> None:
        """Generic raw text / RCDATA element parsing: the "text" mode until its end tag."""
        self.insert(name, attrs)
        self.ask = name
        self.orig = self.mode
        self.mode = _TEXT

    # ----------------------------------------------------------------- tokens
    def foreign_ctx(self) -> bool:
        st = self.st
        return bool(st) and st[-1][_NS] != _HTML

    def start(self, name: str, attrs: str, sc: bool) -> None:
        st = self.st
        if st:
            c = st[-1]
            if c[_NS] != _HTML and not (
                (c[_NS] == _MATH and c[_N] in _MTIP and name not in ("mglyph", "malignmark"))
                or (c[_NS] == _MATH and c[_N] == "annotation-xml" and name == "svg")
                or c[_HIP]
            ):
                self.foreign_start(name, attrs, sc)
                return
        while self.start_mode(name, attrs, sc):
            pass

    def end(self, name: str) -> None:
        st = self.st
        if st and st[-1][_NS] != _HTML:
            self.foreign_end(name)
            return
        while self.end_mode(name):
            pass

    def text(self, s: str) -> None:
        st = self.st
        if st:
            c = st[-1]
            if c[_NS] != _HTML and not ((c[_NS] == _MATH and c[_N] in _MTIP) or c[_HIP]):
                if self.frameset_ok and _nonws(s.replace("\ufffd", "").replace("\0", "")):
                    self.frameset_ok = False
                return
        while True:
            m = self.mode
            if m in (_IN_BODY, _IN_CAPTION, _IN_CELL, _IN_TEMPLATE):
                self.body_text(s)
            elif m in (_IN_TABLE, _IN_TBODY, _IN_ROW):
                if not self.cur_is("table", "tbody", "tfoot", "thead", "tr"):
                    self.body_text(s)  # (foster parented)
                elif _nonws(s.replace("\0", "")):  # pending table text, foster parented
                    self.reconstruct()
                    self.frameset_ok = False
            elif m in _HEAD_PHASE:
                if _nonws(s):
                    self.head_anything_else()
                    continue
            elif m == _IN_COLGROUP:
                if _nonws(s) and self.cur_is("colgroup"):
                    self.pop()
                    self.mode = _IN_TABLE
                    continue
            elif m in (_AFTER_BODY, _AFTER_AFTER_BODY):
                if _nonws(s):
                    self.mode = _IN_BODY
                self.body_text(s)
            elif m == _AFTER_AFTER_FRAMESET and not _nonws(s):
                self.body_text(s)
            return

    def body_text(self, s: str) -> None:
        if "\0" in s:
            s = s.replace("\0", "")
            if not s:
                return
        self.reconstruct()
        if self.frameset_ok and _nonws(s):
            self.frameset_ok = False

    def head_anything_else(self) -> None:
        """One step out of the modes before <body>, as their "anything else" rules go."""
        m = self.mode
        if m == _INITIAL:
            self.mode = _BEFORE_HTML
        elif m == _BEFORE_HTML:
            self.push(self.new("html"))
            self.mode = _BEFORE_HEAD
        elif m == _BEFORE_HEAD:
            self.head = self.insert("head")
            self.mode = _IN_HEAD
        elif m == _IN_HEAD:
            self.pop()
            self.mode = _AFTER_HEAD
        elif m == _IN_HEAD_NOSCRIPT:
            self.pop()
            self.mode = _IN_HEAD
        elif m == _AFTER_HEAD:
            self.insert("body")
            self.mode = _IN_BODY

    # ----------------------------------------------------------------- foreign content
    def foreign_start(self, name: str, attrs: str, sc: bool) -> None:
        st = self.st
        if name in _BREAKOUT or (
            name == "font" and attrs and {"color", "face", "size"} & _attr_dict(attrs).keys()
        ):
            while st:
                c = st[-1]
                if c[_NS] == _HTML or c[_HIP] or (c[_NS] == _MATH and c[_N] in _MTIP):
                    break
                self.pop()
            while self.start_mode(name, attrs, sc):
                pass
            return
        ns = st[-1][_NS]
        k = _nattrs(attrs)
        if k > 1:
            self.work += _ATTR_PAIR * k * k
        if ns == _SVG:
            hip = name in ("foreignobject", "desc", "title")
        else:
            hip = (
                name == "annotation-xml"
                and bool(attrs)
                and (
                    _html.unescape(_attr_dict(attrs).get("encoding", "")).translate(_LOWER)
                    in ("text/html", "application/xhtml+xml")
                )
            )
        self.push(self.new(name, ns, k, None, hip))
        if sc:
            self.pop()

    def foreign_end(self, name: str) -> None:
        st = self.st
        if name == "script":
            if st[-1][_NS] == _SVG and st[-1][_N] == "script":
                self.pop()
                return
        elif name in ("p", "br"):
            while st:
                c = st[-1]
                if c[_NS] == _HTML or c[_HIP] or (c[_NS] == _MATH and c[_N] in _MTIP):
                    break
                self.pop()
            while self.end_mode(name):
                pass
            return
        # lexbor looks for the name among the foreign elements above the topmost HTML one
        lst = self.foreign.get(name)
        if lst:
            e = lst[-1]
            h = self.l_html
            if (not h or e[_I] > h[-1][_I]) and e[_I] > 0:
                self.pop_until(e)
                return
        while self.end_mode(name):
            pass

    # ----------------------------------------------------------------- start tags
    def start_mode(self, name: str, attrs: str, sc: bool) -> bool:
        """Process a start tag in the current mode; True: reprocess it (the mode changed)."""
        m = self.mode
        if m == _IN_BODY:
            self.body_start(name, attrs, sc)
        elif m in (_IN_TABLE, _IN_TBODY, _IN_ROW):
            return self.table_start(name, attrs, sc)
        elif m == _IN_CELL:
            if name not in _CELL_CT:
                self.body_start(name, attrs, sc)
            elif self.in_scope_any(("td", "th"), self.l_table) is not None:
                self.close_cell()
                return True
        elif m == _IN_CAPTION:
            if name not in _CELL_CT:
                self.body_start(name, attrs, sc)
            elif self.in_scope("caption", self.l_table) is not None:
                self.close_caption()
                return True
        elif m == _IN_COLGROUP:
            if name == "html":
                self.body_start(name, attrs, sc)
            elif name == "col":
                self.void(attrs)
            elif name == "template":
                self.head_start(name, attrs)
            elif self.cur_is("colgroup"):
                self.pop()
                self.mode = _IN_TABLE
                return True
        elif m == _IN_TEMPLATE:
            if name in _HEADISH:
                self.head_start(name, attrs)
                return False
            if name in ("caption", "colgroup", "tbody", "tfoot", "thead"):
                mode = _IN_TABLE
            elif name == "col":
                mode = _IN_COLGROUP
            elif name == "tr":
                mode = _IN_TBODY
            elif name in ("td", "th"):
                mode = _IN_ROW
            else:
                mode = _IN_BODY
            if self.tmodes:
                self.tmodes[-1] = mode
            self.mode = mode
            return True
        elif m in _HEAD_PHASE:
            return self.head_phase_start(name, attrs, sc)
        elif m in (_AFTER_BODY, _AFTER_AFTER_BODY):
            if name != "html":
                self.mode = _IN_BODY
                return True
            self.body_start(name, attrs, sc)
        elif m != _TEXT:  # the frameset modes
            if name == "html":
                self.body_start(name, attrs, sc)
            elif name == "noframes":
                self.head_start(name, attrs)
            elif m == _IN_FRAMESET and name == "frameset":
                self.insert(name, attrs)
            elif m == _IN_FRAMESET and name == "frame":
                self.void(attrs)
        return False

    def head_phase_start(self, name: str, attrs: str, sc: bool) -> bool:
        m = self.mode
        if m == _INITIAL:
            self.mode = _BEFORE_HTML
            return True
        if m == _BEFORE_HTML:
            if name != "html":
                self.head_anything_else()
                return True
            self.insert("html", attrs)
            self.mode = _BEFORE_HEAD
            return False
        if name == "html":
            self.body_start(name, attrs, sc)
            return False
        if m == _BEFORE_HEAD:
            if name != "head":
                self.head_anything_else()
                return True
            self.head = self.insert("head", attrs)
            self.mode = _IN_HEAD
            return False
        if m == _IN_HEAD:
            if name in _HEADISH or name in ("noscript", "head"):
                self.head_start(name, attrs)
                return False
            self.head_anything_else()
            return True
        if m == _IN_HEAD_NOSCRIPT:
            if name in ("basefont", "bgsound", "link", "meta", "noframes", "style"):
                self.head_start(name, attrs)
                return False
            if name in ("head", "noscript"):
                return False
            self.head_anything_else()
            return True
        # after head
        if name == "body":
            self.insert("body", attrs)
            self.frameset_ok = False
            self.mode = _IN_BODY
        elif name == "frameset":
            self.insert("frameset", attrs)
            self.mode = _IN_FRAMESET
        elif name in _HEADISH:
            head = self.head
            if head is not None:
                self.push(head)
                self.head_start(name, attrs)
                if head[_I] >= 0:
                    self.remove(head)
        elif name != "head":
            self.head_anything_else()
            return True
        return False

    def head_start(self, name: str, attrs: str) -> None:
        """A start tag by the "in head" rules."""
        if name in ("base", "basefont", "bgsound", "link", "meta"):
            self.void(attrs)
        elif name in ("title", "noframes", "style"):
            self.raw(name, attrs)
        elif name == "noscript":  # (scripting is off)
            self.insert(name, attrs)
            self.mode = _IN_HEAD_NOSCRIPT
        elif name == "script":
            self.raw(name, attrs)
            self.ask = "script"
        elif name == "template":
            self.insert(name, attrs)
            self.push_marker()
            self.frameset_ok = False
            self.mode = _IN_TEMPLATE
            self.tmodes.append(_IN_TEMPLATE)

    def table_start(self, name: str, attrs: str, sc: bool) -> bool:
        m = self.mode
        if m == _IN_ROW:
            if name in ("th", "td"):
                self.clear_back_to(("tr", "template", "html"))
                self.insert(name, attrs)
                self.mode = _IN_CELL
                self.push_marker()
                return False
            if name in _ROW_CT:
                if self.in_scope("tr", self.l_table) is None:
                    return False
                self.clear_back_to(("tr", "template", "html"))
                self.pop()
                self.mode = _IN_TBODY
                return True
        elif m == _IN_TBODY:
            if name in ("tr", "th", "td"):
                self.clear_back_to(("tbody", "tfoot", "thead", "template", "html"))
                self.insert("tr", attrs if name == "tr" else "")
                self.mode = _IN_ROW
                return name != "tr"
            if name in ("caption", "col", "colgroup", "tbody", "tfoot", "thead"):
                if self.in_scope_any(("tbody", "thead", "tfoot"), self.l_table) is None:
                    return False
                self.clear_back_to(("tbody", "tfoot", "thead", "template", "html"))
                self.pop()
                self.mode = _IN_TABLE
                return True
        # in table
        if name in ("caption", "colgroup", "col", "tbody", "tfoot", "thead", "td", "th", "tr"):
            self.clear_back_to(("table", "template", "html"))
            if name == "caption":
                self.push_marker()
                self.insert(name, attrs)
                self.mode = _IN_CAPTION
            elif name in ("colgroup", "col"):
                self.insert("colgroup", attrs if name == "colgroup" else "")
                self.mode = _IN_COLGROUP
                return name == "col"
            else:
                if name in ("tbody", "tfoot", "thead"):
                    self.insert(name, attrs)
                    self.mode = _IN_TBODY
                    return False
                self.insert("tbody")
                self.mode = _IN_TBODY
                return True
        elif name == "table":
            e = self.in_scope("table", self.l_table)
            if e is None:
                return False
            self.pop_until(e)
            self.reset_mode()
            return True
        elif name in ("style", "script", "template"):
            self.head_start(name, attrs)
        elif name == "input" and _attr_dict(attrs).get("type", "").translate(_LOWER) == "hidden":
            self.void(attrs)
        elif name == "form":
            if self.form is None and self.top("template") is None:
                self.form = self.insert(name, attrs)
                self.pop()
        else:
            self.body_start(name, attrs, sc)  # foster parented: the same stack
        return False

    def body_start(self, name: str, attrs: str, sc: bool) -> None:
        """A start tag by the "in body" rules."""
        if name in _FMT:
            self.reconstruct()
            self.push_formatting(self.insert(name, attrs, attrs.strip(_W + "/")))
        elif name in _P_CLOSERS:
            self.maybe_close_p()
            self.insert(name, attrs)
        elif name in _VOID_BODY:
            self.reconstruct()
            self.void(attrs)
            self.frameset_ok = False
        elif name == "a":
            e = self.last_in_section("a")
            if e is not None:
                self.adoption("a")
                if e[_FA]:
                    self.afl_del(e)
                if e[_I] >= 0:
                    self.detached += 1
                    self.remove(e)
            self.reconstruct()
            self.push_formatting(self.insert(name, attrs, attrs.strip(_W + "/")))
        elif name == "li":
            self.frameset_ok = False
            e = self.top("li")
            if e is not None and (not self.l_nadp or e[_I] >= self.l_nadp[-1][_I]):
                self.gen_implied("li")
                self.pop_until(e)
            self.maybe_close_p()
            self.insert(name, attrs)
        elif name in ("dd", "dt"):
            self.frameset_ok = False
            e = self.in_scope_any(("dd", "dt"), self.l_nadp)
            if e is not None:
                self.gen_implied(e[_N])
                self.pop_until(e)
            self.maybe_close_p()
            self.insert(name, attrs)
        elif name in _H:
            self.maybe_close_p()
            if self.st and self.st[-1][_N] in _H:
                self.pop()
            self.insert(name, attrs)
        elif name in _HEADISH:
            self.head_start(name, attrs)
        elif name in ("html", "body"):
            st = self.st
            if self.top("template") is not None:
                return
            k = _nattrs(attrs)
            if name == "html":  # merged into <html>: each checked against those there
                self.work += _ATTR_PAIR * k * (self.html_k + k)
                self.html_k += k
            elif len(st) > 1 and st[1][_NS] == _HTML and st[1][_N] == "body":
                self.frameset_ok = False
                self.work += _ATTR_PAIR * k * (self.body_k + k)
                self.body_k += k
        elif name == "frameset":
            st = self.st
            if len(st) > 1 and st[1][_NS] == _HTML and st[1][_N] == "body" and self.frameset_ok:
                while len(st) > 1:
                    self.pop()
                self.insert(name, attrs)
                self.mode = _IN_FRAMESET
        elif name in ("pre", "listing"):
            self.maybe_close_p()
            self.insert(name, attrs)
            self.frameset_ok = False
        elif name == "form":
            template = self.top("template")
            if self.form is not None and template is None:
                return
            self.maybe_close_p()
            e = self.insert(name, attrs)
            if template is None:
                self.form = e
        elif name == "plaintext":
            self.maybe_close_p()
            self.insert(name, attrs)
            self.ask = "plaintext"
        elif name == "button":
            if self.in_scope("button", self.l_scope) is not None:
                self.gen_implied()
                self.pop_until_name("button")
            self.reconstruct()
            self.insert(name, attrs)
            self.frameset_ok = False
        elif name == "nobr":
            self.reconstruct()
            if self.in_scope("nobr", self.l_scope) is not None:
                if self.adoption("nobr"):
                    self.any_other_end("nobr")
                self.reconstruct()
            self.push_formatting(self.insert(name, attrs, attrs.strip(_W + "/")))
        elif name in ("applet", "marquee", "object"):
            self.reconstruct()
            self.insert(name, attrs)
            self.push_marker()
            self.frameset_ok = False
        elif name == "table":
            if not self.quirks:
                self.maybe_close_p()
            self.insert(name, attrs)
            self.frameset_ok = False
            self.mode = _IN_TABLE
        elif name == "input":
            e = self.in_scope("select", self.l_scope)
            if e is not None:
                self.pop_until(e)
            self.reconstruct()
            self.void(attrs)
            if self.frameset_ok and _attr_dict(attrs).get("type", "").translate(_LOWER) != "hidden":
                self.frameset_ok = False
        elif name in ("param", "source", "track"):
            self.void(attrs)
        elif name == "hr":
            self.maybe_close_p()
            if self.in_scope("select", self.l_scope) is not None:
                self.gen_implied()
            self.void(attrs)
            self.frameset_ok = False
        elif name == "image":
            self.body_start("img", attrs, sc)
        elif name == "textarea":  # RCDATA; lexbor gives its text to the current mode, not "text"
            self.insert(name, attrs)
            self.ask = name
            self.frameset_ok = False
        elif name == "xmp":
            self.maybe_close_p()
            self.reconstruct()
            self.frameset_ok = False
            self.raw(name, attrs)
        elif name == "iframe":
            self.frameset_ok = False
            self.raw(name, attrs)
        elif name == "noembed":
            self.raw(name, attrs)
        elif name == "select":
            e = self.in_scope("select", self.l_scope)
            if e is not None:  # a select in a select closes it (and is dropped)
                self.pop_until(e)
                return
            self.reconstruct()
            self.insert(name, attrs)
            self.frameset_ok = False
        elif name in ("option", "optgroup"):
            if self.in_scope("select", self.l_scope) is not None:
                self.gen_implied("optgroup" if name == "option" else None)
            elif self.cur_is("option"):
                self.pop()
            self.reconstruct()
            self.insert(name, attrs)
        elif name in ("rb", "rtc", "rp", "rt"):
            if self.in_scope("ruby", self.l_scope) is not None:
                self.gen_implied("rtc" if name in ("rp", "rt") else None)
            self.insert(name, attrs)
        elif name in ("math", "svg"):
            self.reconstruct()
            k = _nattrs(attrs)
            if k > 1:
                self.work += _ATTR_PAIR * k * k
            self.push(self.new(name, _MATH if name == "math" else _SVG, k))
            if sc:
                self.pop()
        elif name not in _TABLE_STRAY:
            self.reconstruct()
            self.insert(name, attrs)

    # ----------------------------------------------------------------- end tags
    def end_mode(self, name: str) -> bool:
        """Process an end tag in the current mode; True: reprocess it (the mode changed)."""
        m = self.mode
        if m == _IN_BODY:
            return self.body_end(name)
        if m in (_IN_TABLE, _IN_TBODY, _IN_ROW):
            return self.table_end(name)
        if m == _IN_CELL:
            if name in ("td", "th"):
                if self.in_scope(name, self.l_table) is not None:
                    self.gen_implied()
                    self.pop_until_name(name)
                    self.clear_to_marker()
                    self.mode = _IN_ROW
                return False
            if name in ("body", "caption", "col", "colgroup", "html"):
                return False
            if name in ("table", "tbody", "tfoot", "thead", "tr"):
                if self.in_scope(name, self.l_table) is None:
                    return False
                self.close_cell()
                return True
            return self.body_end(name)
        if m == _IN_CAPTION:
            if name in ("caption", "table"):
                if self.in_scope("caption", self.l_table) is None:
                    return False
                self.close_caption()
                return name == "table"
            if name in _IGNORED_IN_TABLE:
                return False
            return self.body_end(name)
        if m == _IN_COLGROUP:
            if name == "template":
                self.head_end()
            elif name != "col" and self.cur_is("colgroup"):
                self.pop()
                self.mode = _IN_TABLE
                return name != "colgroup"
            return False
        if m == _IN_TEMPLATE:
            if name == "template":
                self.head_end()
            return False
        if m == _TEXT:
            self.pop()
            self.mode = self.orig
            return False
        if m in _HEAD_PHASE:
            return self.head_phase_end(name)
        if m == _AFTER_BODY:
            if name == "html":
                self.mode = _AFTER_AFTER_BODY
                return False
            self.mode = _IN_BODY
            return True
        if m == _AFTER_AFTER_BODY:
            self.mode = _IN_BODY
            return True
        if m == _IN_FRAMESET:
            if name == "frameset" and len(self.st) > 1:
                self.pop()
                if not self.cur_is("frameset"):
                    self.mode = _AFTER_FRAMESET
        elif m == _AFTER_FRAMESET and name == "html":
            self.mode = _AFTER_AFTER_FRAMESET
        return False

    def head_phase_end(self, name: str) -> bool:
        m = self.mode
        if m == _INITIAL:
            self.mode = _BEFORE_HTML
            return True
        if m == _IN_HEAD_NOSCRIPT:
            if name == "noscript":
                self.pop()
                self.mode = _IN_HEAD
            elif name == "br":
                self.head_anything_else()
                return True
            return False
        if m == _IN_HEAD and name == "head":
            self.pop()
            self.mode = _AFTER_HEAD
            return False
        if m in (_IN_HEAD, _AFTER_HEAD) and name == "template":
            self.head_end()
            return False
        if name in ("body", "html", "br") or (name == "head" and m != _AFTER_HEAD):
            self.head_anything_else()
            return True
        return False

    def head_end(self) -> None:
        """</template> by the "in head" rules."""
        if self.top("template") is None:
            return
        st = self.st
        while st and st[-1][_N] in _IMPLIED_ALL:  # all implied end tags, thoroughly
            self.pop()
        self.pop_until_name("template")
        self.clear_to_marker()
        if self.tmodes:
            self.tmodes.pop()
        self.reset_mode()

    def close_cell(self) -> None:
        self.gen_implied()
        e = self.in_scope_any(("td", "th"), [])
        if e is not None:
            self.pop_until(e)
        self.clear_to_marker()
        self.mode = _IN_ROW

    def close_caption(self) -> None:
        self.gen_implied()
        self.pop_until_name("caption")
        self.clear_to_marker()
        self.mode = _IN_TABLE

    def table_end(self, name: str) -> bool:
        m = self.mode
        if m == _IN_ROW:
            if name in ("tr", "table", "tbody", "tfoot", "thead"):
                if (
                    name in ("tbody", "tfoot", "thead")
                    and self.in_scope(name, self.l_table) is None
                ):
                    return False
                if self.in_scope("tr", self.l_table) is None:
                    return False
                self.clear_back_to(("tr", "template", "html"))
                self.pop()
                self.mode = _IN_TBODY
                return name != "tr"
            if name in ("body", "caption", "col", "colgroup", "html", "td", "th"):
                return False
        elif m == _IN_TBODY:
            if name in ("tbody", "tfoot", "thead", "table"):
                if name == "table":
                    found = self.in_scope_any(("tbody", "thead", "tfoot"), self.l_table)
                else:
                    found = self.in_scope(name, self.l_table)
                if found is None:
                    return False
                self.clear_back_to(("tbody", "tfoot", "thead", "template", "html"))
                self.pop()
                self.mode = _IN_TABLE
                return name == "table"
            if name in ("body", "caption", "col", "colgroup", "html", "td", "th", "tr"):
                return False
        if name == "table":
            e = self.in_scope("table", self.l_table)
            if e is not None:
                self.pop_until(e)
                self.reset_mode()
            return False
        if name in _IGNORED_IN_TABLE:
            return False
        if name == "template":
            self.head_end()
            return False
        return self.body_end(name)  # foster parented

    def body_end(self, name: str) -> bool:
        """An end tag by the "in body" rules."""
        if name in _BLOCK_END:
            if self.in_scope(name, self.l_scope) is not None:
                self.gen_implied()
                self.pop_until_name(name)
        elif name in _FMT_END:
            if self.adoption(name):
                self.any_other_end(name)
        elif name == "p":
            if self.in_scope("p", self.l_button) is None:
                self.insert("p")
            self.close_p()
        elif name == "li":
            if self.in_scope("li", self.l_list) is not None:
                self.gen_implied("li")
                self.pop_until_name("li")
        elif name in ("dd", "dt"):
            if self.in_scope(name, self.l_scope) is not None:
                self.gen_implied(name)
                self.pop_until_name(name)
        elif name in _H:
            if self.in_scope_any(_H, self.l_scope) is not None:
                self.gen_implied()
                e = self.in_scope_any(_H, [])
                if e is not None:
                    self.pop_until(e)
        elif name in ("body", "html"):
            if self.in_scope("body", self.l_scope) is not None:
                self.mode = _AFTER_BODY
                return name == "html"
        elif name == "form":
            if self.top("template") is None:
                node = self.form
                self.form = None
                if node is None or node[_I] < 0:
                    return False
                if self.l_scope and node[_I] < self.l_scope[-1][_I]:
                    return False
                self.gen_implied()
                self.detached += 1
                self.remove(node)  # the form leaves the stack, not the DOM
            elif self.in_scope("form", self.l_scope) is not None:
                self.gen_implied()
                self.pop_until_name("form")
        elif name in ("applet", "marquee", "object"):
            if self.in_scope(name, self.l_scope) is not None:
                self.gen_implied()
                self.pop_until_name(name)
                self.clear_to_marker()
        elif name == "br":  # </br> is <br>
            self.reconstruct()
            self.frameset_ok = False
        elif name == "template":
            self.head_end()
        else:
            self.any_other_end(name)
        return False


def _script_end(html: str, pos: int) -> int | None:
    """Where the script data from pos ends (at its end tag), through the escape states."""
    state = 0  # 0: script data, 1: escaped (after <!--), 2: double escaped (<!--<script>)
    search = _SCRIPT_SCAN.search
    while (m := search(html, pos)) is not None:
        tok = m.group()
        if tok == "<!--":
            state = state or 1
            pos = m.start() + 2  # its "--" may be that of the "-->" that ends it
        elif tok == "-->":
            state = 0
            pos = m.end()
        elif tok[1] == "/":
            if state < 2:
                return m.start()
            state = 1
            pos = m.end()
        else:  # <script
            state = 2 if state else 0
            pos = m.end()
    return None


def _quirks(html: str) -> bool:
    """Whether lexbor parses the page in quirks mode (its doctype decides), asked of lexbor:
    the one difference it makes to the stack is whether <table> closes an open <p>."""
    pos = 0
    while (m := _TOKEN.search(html, pos)) is not None and m.group(2) is None:
        pos = m.end()
    prefix = html[: m.start()] if m is not None else html
    if "<!" not in prefix:
        return True
    return LexborHTMLParser(prefix + "<p><table>").css_first("p > table") is not None


# The tokens most pages are made of, handled in `_scan` without the general rules.
_OTHER, _PCLOSE, _VOID, _HEADVOID, _GENERAL = range(5)
_BODY_KIND = dict.fromkeys(_P_CLOSERS, _PCLOSE)
_BODY_KIND.update(dict.fromkeys(_VOID_BODY | {"param", "source", "track"}, _VOID))
_BODY_KIND.update(dict.fromkeys(("base", "basefont", "bgsound", "link", "meta"), _HEADVOID))
_GENERAL_START = _names(
    "a li dd dt h1 h2 h3 h4 h5 h6 html body frameset pre listing form plaintext button nobr "
    "applet marquee object table input hr image textarea xmp iframe noembed select option "
    "optgroup rb rtc rp rt math svg"
)
for _name in _FMT | _HEADISH | _TABLE_STRAY | _GENERAL_START:
    _BODY_KIND.setdefault(_name, _GENERAL)
_GENERAL_END = _names("form applet marquee object br body html template p")


def _scan(html: str, max_depth: int, budget: int, max_tags: int) -> tuple[int | None, _Tree]:
    """Tokenize the page as lexbor does and feed the tree model; (where to cut, the model)."""
    tree = _Tree(_quirks(html))
    st = tree.st
    afl = tree.afl
    byname = tree.byname
    l_button = tree.l_button
    push = tree.push
    pop = tree.pop
    ids = tree.ids
    finditer = _TOKEN.finditer
    n = len(html)
    pos = 0
    tags = 0
    while True:  # restarted after each stretch of raw text the tokenizer skips
        for m in finditer(html, pos):
            start = m.start()
            if start > pos:  # text
                tree.work += len(st)
                if (
                    tree.mode != _IN_BODY
                    or not st
                    or st[-1][_NS] != _HTML
                    or tree.frameset_ok
                    or (afl and afl[-1] is not _MARKER and afl[-1][_I] < 0)
                ):
                    tree.text(html[pos:start])
                    if tree.work > budget or tree.max_depth > max_depth:
                        return pos, tree
            pos = m.end()
            slash, tag, attrs, close = m.groups()
            if tag is None:  # comment, doctype, bogus comment; CDATA in foreign content
                if html.startswith("<![CDATA[", start) and tree.foreign_ctx():
                    j = html.find("]]>", start + 9)
                    if j < 0:
                        return None, tree
                    pos = j + 3
                    break
                continue
            if close is None:  # the page ends inside the tag, which lexbor drops
                return None, tree
            tags += 1
            if tags > max_tags:
                return start, tree
            name = tag.lower() if tag.isascii() else tag.translate(_LOWER)
            tree.work += 2 * len(st)  # the walks of one token, at most twice the depth
            if tree.mode == _IN_BODY and st and st[-1][_NS] == _HTML:
                if slash:
                    cur = st[-1]
                    if (
                        cur[_N] == name
                        and name not in _GENERAL_END
                        and (not cur[_FA] or tree.last_in_section(name) is cur)
                    ):
                        pop()  # the end tag of the current node: it is popped
                        if cur[_FA]:
                            tree.afl_del(cur)
                        continue
                    tree.body_end(name)
                else:
                    kind = _BODY_KIND.get(name, _OTHER)
                    if kind == _OTHER:
                        if afl and afl[-1] is not _MARKER and afl[-1][_I] < 0:
                            tree.reconstruct()
                        k = _nattrs(attrs) if attrs else 0
                        if k > 1:
                            tree.work += _ATTR_PAIR * k * k
                        push([next(ids), name, _HTML, _CATS.get(name, 0), -1, k, None, 0, 0, 0])
                    elif kind == _PCLOSE:
                        p = byname.get("p")
                        if p and (not l_button or p[-1][_I] >= l_button[-1][_I]):
                            tree.close_p()
                        tree.insert(name, attrs)
                    elif kind == _VOID:
                        if name not in ("param", "source", "track"):
                            if afl and afl[-1] is not _MARKER and afl[-1][_I] < 0:
                                tree.reconstruct()
                            tree.frameset_ok = False
                        tree.void(attrs)
                    elif kind == _HEADVOID:
                        tree.void(attrs)
                    else:
                        tree.body_start(name, attrs, close == "/>")
            elif slash:
                tree.end(name)
            else:
                tree.start(name, attrs, close == "/>")
            if tree.work > budget or tree.max_depth > max_depth:
                return start, tree
            ask = tree.ask
            if ask is not None:  # raw text: skip to its end tag, give its text to the tree
                tree.ask = None
                end = None
                if ask == "script":
                    end = _script_end(html, pos)
                elif ask != "plaintext":
                    found = _RAW_END[ask].search(html, pos)
                    end = found.start() if found is not None else None
                if end is None:  # the rest of the page is text
                    if pos < n:
                        tree.text(html[pos:])
                        if tree.work > budget or tree.max_depth > max_depth:
                            return pos, tree
                    return None, tree
                if end > pos:
                    tree.text(html[pos:end])  # (only <textarea>'s goes to a mode that reads it)
                pos = end
                break
        else:  # no token left: the text after the last one
            if pos < n:
                tree.work += len(st)
                tree.text(html[pos:])
                if tree.work > budget or tree.max_depth > max_depth:
                    return pos, tree
            return None, tree


def nesting_cut(html: str) -> int | None:
    """Where to cut the page so that lexbor's parse stays within MAX_DEPTH and WORK_BUDGET (and
    the model within MAX_SCAN_TAGS), or None (see the module docstring)."""
    return _scan(html, MAX_DEPTH, WORK_BUDGET, MAX_SCAN_TAGS)[0]


def needs_scan(html: str) -> bool:
    """Whether the page could cost lexbor more than the bound, by cheap tests (most pages do
    not pay for `nesting_cut`): many tags, few tags for its length (long tags: attributes), or
    formatting tags that could be cloned at every text for more than the budget."""
    tags = html.count("<")
    if tags > SCAN_TAGS_ABOVE or len(html) > SCAN_BYTES_PER_TAG * (tags + 1):
        return True
    if tags > FORMATTING_CHECK_ABOVE:
        # the list holds up to 3 entries per distinct formatting tag (the Noah's Ark clause)
        # and per bare formatting name, and each text or start tag can clone all of them
        distinct = set(_FORMATTING_TAG.findall(html))
        entries = 3 * sum(_CLONE_LEXBOR + _CLONE_ATTR * _nattrs(t) for t in distinct)
        entries += 3 * (len(_FMT) + 3) * _CLONE_LEXBOR
        return 2 * tags * entries > WORK_BUDGET
    return False


def add_html_page(
    html: str, page_url: str, offset: int, buffer: PairBuffer, stats: ExtractStats
) -> None:
    """Add the image pairs of one HTML page (of what comes before its cut, if it has one)."""
    if needs_scan(html) and (cut := nesting_cut(html)) is not None:
        stats.skip("page_cut_too_deep")  # counted; the pairs before the cut are kept
        html = html[:cut]
    tree = LexborHTMLParser(html, **_PARSE_OPTIONS)
    stats.pages += 1
    base = tree.css_first("base[href]")  # the first <base href> counts, as in browsers
    base_href = base.attributes.get("href") if base is not None else None
    images = [(attrs.get("src"), attrs) for attrs in (img.attributes for img in tree.css("img"))]
    buffer.add_images(page_url, base_href, images, offset)
