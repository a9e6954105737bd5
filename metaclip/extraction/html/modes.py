"""The insertion modes of the tree model: a token dispatched by the current mode (the rules of
the cell, caption, column group, template, after-body and frameset modes inline; the head,
table and body modes in their modules), and resetting the mode."""

from __future__ import annotations

from metaclip.extraction.html.elements import (
    _AFTER_AFTER_BODY,
    _AFTER_AFTER_FRAMESET,
    _AFTER_BODY,
    _AFTER_FRAMESET,
    _AFTER_HEAD,
    _BEFORE_HEAD,
    _CELL_CT,
    _HEAD_PHASE,
    _HEADISH,
    _I,
    _IGNORED_IN_TABLE,
    _IN_BODY,
    _IN_CAPTION,
    _IN_CELL,
    _IN_COLGROUP,
    _IN_FRAMESET,
    _IN_HEAD,
    _IN_ROW,
    _IN_TABLE,
    _IN_TBODY,
    _IN_TEMPLATE,
    _N,
    _TEXT,
)


class _Modes:
    """`_Tree`'s dispatch of start and end tags by insertion mode."""

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
