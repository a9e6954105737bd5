"""The table modes of the tree model (in table, in table body, in row) and closing a cell or
a caption."""

from __future__ import annotations

from metaclip.extraction.html.elements import (
    _IGNORED_IN_TABLE,
    _IN_CAPTION,
    _IN_CELL,
    _IN_COLGROUP,
    _IN_ROW,
    _IN_TABLE,
    _IN_TBODY,
    _ROW_CT,
)
from metaclip.extraction.html.tokens import _LOWER, _attr_dict


class _Table:
    """`_Tree`'s rules of the table modes."""

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
