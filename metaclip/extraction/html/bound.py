"""The bound on a page's parse: the cheap test of whether a page could be slow (`needs_scan`)
and where to cut it (`nesting_cut`, which runs the tree model over the page's tokens).

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

from metaclip.extraction.html.elements import (
    _ATTR_PAIR,
    _CATS,
    _CLONE_ATTR,
    _CLONE_LEXBOR,
    _FA,
    _FMT,
    _HEADISH,
    _HTML,
    _I,
    _IN_BODY,
    _MARKER,
    _N,
    _NS,
    _P_CLOSERS,
    _TABLE_STRAY,
    _VOID_BODY,
    _names,
)
from metaclip.extraction.html.tokens import (
    _FORMATTING_TAG,
    _LOWER,
    _RAW_END,
    _TOKEN,
    _nattrs,
    _quirks,
    _script_end,
)
from metaclip.extraction.html.tree import _Tree

MAX_DEPTH = 2048  # the stack of open elements lexbor may build (Chromium: 512)
WORK_BUDGET = 300_000_000  # lexbor tree-building steps (of a few ns each) a page may cost
MAX_SCAN_TAGS = 200_000  # tags the model reads (about a second); a page is cut after them
SCAN_TAGS_ABOVE = 12_000  # '<' in a page above which the tree model runs
SCAN_BYTES_PER_TAG = 2048  # ... or characters per '<' above which it runs (long tags)
FORMATTING_CHECK_ABOVE = 3_000  # '<' above which formatting tags are looked at (clones)


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
