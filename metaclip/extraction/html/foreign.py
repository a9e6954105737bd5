"""Foreign content (SVG and MathML) in the tree model: the start tags that break out of it,
its integration points, and its end tags."""

from __future__ import annotations

import html as _html

from metaclip.extraction.html.elements import (
    _ATTR_PAIR,
    _BREAKOUT,
    _HIP,
    _HTML,
    _I,
    _MATH,
    _MTIP,
    _N,
    _NS,
    _SVG,
)
from metaclip.extraction.html.tokens import _LOWER, _attr_dict, _nattrs


class _Foreign:
    """`_Tree`'s rules for tokens in foreign content."""

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
