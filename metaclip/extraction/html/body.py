"""The "in body" rules of the tree model: start and end tags, and "any other end tag"."""

from __future__ import annotations

from metaclip.extraction.html.elements import (
    _AFTER_BODY,
    _ATTR_PAIR,
    _BLOCK_END,
    _FA,
    _FMT,
    _FMT_END,
    _H,
    _HEADISH,
    _HTML,
    _I,
    _IN_FRAMESET,
    _IN_TABLE,
    _MATH,
    _N,
    _NS,
    _P_CLOSERS,
    _SVG,
    _TABLE_STRAY,
    _VOID_BODY,
)
from metaclip.extraction.html.tokens import _LOWER, _W, _attr_dict, _nattrs


class _Body:
    """`_Tree`'s "in body" rules (other modes defer to them too)."""

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

    def any_other_end(self, name: str) -> None:
        e = self.top(name)
        if e is None:
            return
        sp = self.l_special
        if sp and sp[-1][_I] > e[_I]:  # a special element is in the way: ignored
            return
        self.gen_implied(name)
        self.pop_until(e)
