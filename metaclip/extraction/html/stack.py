"""The stack of open elements of the tree model: element creation, push and pop with the
per-name and per-boundary lists that make scope queries O(1), removal and insertion in the
middle (adoption agency), and the generic helpers built on them (implied end tags, <p>)."""

from __future__ import annotations

from metaclip.extraction.html.elements import (
    _ATTR_PAIR,
    _BUTTON,
    _CAT,
    _CATS,
    _HTML,
    _I,
    _IMPLIED,
    _LISTI,
    _MODE,
    _N,
    _NADP,
    _NS,
    _SCOPE,
    _SPECIAL,
    _TSCOPE,
    _category,
)
from metaclip.extraction.html.tokens import _nattrs


class _CatLists(dict):
    """Category bits -> the tree's boundary lists for them (computed once per bits)."""

    def __init__(self, tree: _Stack) -> None:
        super().__init__()
        self.tree = tree

    def __missing__(self, c: int) -> tuple[list[list], ...]:
        self[c] = lists = tuple(self.tree._cat_lists(c))
        return lists


class _Stack:
    """`_Tree`'s stack of open elements, its scope queries and the helpers on them."""

    def new(self, name: str, ns: int = _HTML, k: int = 0, sig=None, hip: bool = False) -> list:
        cat = _CATS.get(name, 0) if ns == _HTML else _category(name, ns)
        return [next(self.ids), name, ns, cat, -1, k, sig, hip, False, 0]

    # ----------------------------------------------------------------- the stack
    def push(self, e: list) -> list:
        # (hot: the indices are spelled out, see _N... in elements.py)
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
