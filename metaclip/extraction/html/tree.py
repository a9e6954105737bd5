"""A model of lexbor's tree builder (lexbor 3.1, source/lexbor/html/tree/), for the bound:
`_Tree`, its state and the tokens it is fed. Its rules are mixins, one module per part:
stack (open elements, scope), formatting (active formatting elements, adoption agency), modes
(dispatch by insertion mode), head, table, body (the modes' rules), foreign (SVG, MathML)."""

from __future__ import annotations

from itertools import count

from metaclip.extraction.html.body import _Body
from metaclip.extraction.html.elements import (
    _AFTER_AFTER_BODY,
    _AFTER_AFTER_FRAMESET,
    _AFTER_BODY,
    _HEAD_PHASE,
    _HIP,
    _HTML,
    _IN_BODY,
    _IN_CAPTION,
    _IN_CELL,
    _IN_COLGROUP,
    _IN_ROW,
    _IN_TABLE,
    _IN_TBODY,
    _IN_TEMPLATE,
    _INITIAL,
    _MATH,
    _MTIP,
    _N,
    _NS,
)
from metaclip.extraction.html.foreign import _Foreign
from metaclip.extraction.html.formatting import _Formatting
from metaclip.extraction.html.head import _Head
from metaclip.extraction.html.modes import _Modes
from metaclip.extraction.html.stack import _CatLists, _Stack
from metaclip.extraction.html.table import _Table
from metaclip.extraction.html.tokens import _nonws


class _Tree(_Modes, _Head, _Table, _Body, _Foreign, _Formatting, _Stack):
    """Lexbor's tree construction, reduced to what decides the stack of open elements and its
    cost: feed it the tokens in order (`start`, `end`, `text`); `max_depth` is the deepest the
    stack has been, `work` bounds the steps lexbor took (see metaclip.extraction.html.bound).

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
