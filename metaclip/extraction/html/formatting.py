"""The list of active formatting elements of the tree model: its sections and markers, the
Noah's Ark clause, reconstruction (the clones) and the adoption agency as lexbor codes it."""

from __future__ import annotations

import bisect

from metaclip.extraction.html.elements import (
    _CLONE,
    _CLONE_ATTR,
    _FA,
    _HTML,
    _I,
    _K,
    _MARKER,
    _N,
    _NS,
    _SEC,
    _SIG,
)


def _rindex(lst: list, e: list) -> int:
    """Where e is in lst, looked for from the end (where the entries that change are)."""
    j = len(lst) - 1
    while lst[j] is not e:
        j -= 1
    return j


def _remove_last(lst: list, e: list) -> None:
    del lst[_rindex(lst, e)]


class _Formatting:
    """`_Tree`'s list of active formatting elements and the adoption agency."""

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
