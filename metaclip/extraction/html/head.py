"""The modes before <body> (initial, before html, before head, in head, in head noscript, after
head), the "in head" rules other modes defer to, and raw text elements."""

from __future__ import annotations

from metaclip.extraction.html.elements import (
    _AFTER_HEAD,
    _BEFORE_HEAD,
    _BEFORE_HTML,
    _HEADISH,
    _I,
    _IMPLIED_ALL,
    _IN_BODY,
    _IN_FRAMESET,
    _IN_HEAD,
    _IN_HEAD_NOSCRIPT,
    _IN_TEMPLATE,
    _INITIAL,
    _N,
    _TEXT,
)


class _Head:
    """`_Tree`'s rules of the modes before <body>."""

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

    def raw(self, name: str, attrs: str) -> None:
        """Generic raw text / RCDATA element parsing: the "text" mode until its end tag."""
        self.insert(name, attrs)
        self.ask = name
        self.orig = self.mode
        self.mode = _TEXT

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
