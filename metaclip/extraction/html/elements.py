"""What the tree model knows of elements: lexbor's name sets and category bits, the insertion
modes, the layout of an element (a list), and the work units charged for lexbor's steps."""

from __future__ import annotations


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
