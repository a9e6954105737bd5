"""lexbor's tokenizer, as the tree model reads it: the regular expressions of tags, attributes,
raw text and script data, attribute counting and lookup, and quirks mode (asked of lexbor)."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

_W = "\t\n\f\r "  # HTML whitespace (the tokenizer reads CR as LF)
_ATTRS = (  # the attribute states of the tokenizer, exactly: where a tag really ends
    rf"(?:[{_W}]++|/(?!>)|[^{_W}/>][^{_W}/>=]*+"
    rf"(?:[{_W}]*+=[{_W}]*+(?:\"[^\"]*+\"?|'[^']*+'?|[^{_W}>]*+))?)*+"
)
_TOKEN = re.compile(  # a tag (groups: "/", name, attributes, end), or a comment, doctype, bogus
    rf"<(?:(/?)([a-zA-Z][^{_W}/>]*+)({_ATTRS})(/?>)?|!--(?:-?>|.*?--!?>|.*)|![^>]*+>?"
    r"|\?[^>]*+>?|/(?:>|[^a-zA-Z>][^>]*+>?))",
    re.S,
)
_ATTR = re.compile(
    rf"([^{_W}/>][^{_W}/>=]*+)(?:[{_W}]*+=[{_W}]*+(\"[^\"]*+\"?|'[^']*+'?|[^{_W}>]*+))?"
)
_RAW_END = {  # the end tag that ends RAWTEXT/RCDATA (ASCII case-insensitive, as lexbor)
    n: re.compile(rf"</{n}(?=[{_W}/>])", re.I | re.A)
    for n in ("style", "xmp", "iframe", "noembed", "noframes", "title", "textarea")
}
_SCRIPT_SCAN = re.compile(rf"<!--|-->|</script(?=[{_W}/>])|<script(?=[{_W}/>])", re.I | re.A)
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# formatting start tags with attributes (the list keeps up to 3 entries per distinct one)
_FORMATTING_TAG = re.compile(
    r"<(?=[bBcCeEfFiInNsStTuU])(?:[bBiIsSuU]|[eE][mM]|[tT][tT]|[bB][iI][gG]|[cC][oO][dD][eE]"
    r"|[fF][oO][nN][tT]|[nN][oO][bB][rR]|[sS][mM][aA][lL][lL]|[sS][tT][rR][iI][kK][eE]"
    rf"|[sS][tT][rR][oO][nN][gG])[{_W}/]{_ATTRS}"
)


def _nattrs(attrs: str) -> int:
    """How many attributes (exact for long ones; short ones have at most 32 anyway)."""
    if not attrs:
        return 0
    if len(attrs) < 64:
        return attrs.count("=") + 1
    return len(_ATTR.findall(attrs))


def _attr_dict(attrs: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in _ATTR.findall(attrs):
        name = name.translate(_LOWER)
        if name not in out:
            if value[:1] in ("'", '"'):
                value = value[1:-1] if len(value) > 1 and value[-1] == value[0] else value[1:]
            out[name] = value
    return out


def _nonws(s: str) -> bool:
    return bool(s.strip(_W))


def _script_end(html: str, pos: int) -> int | None:
    """Where the script data from pos ends (at its end tag), through the escape states."""
    state = 0  # 0: script data, 1: escaped (after <!--), 2: double escaped (<!--<script>)
    search = _SCRIPT_SCAN.search
    while (m := search(html, pos)) is not None:
        tok = m.group()
        if tok == "<!--":
            state = state or 1
            pos = m.start() + 2  # its "--" may be that of the "-->" that ends it
        elif tok == "-->":
            state = 0
            pos = m.end()
        elif tok[1] == "/":
            if state < 2:
                return m.start()
            state = 1
            pos = m.end()
        else:  # <script
            state = 2 if state else 0
            pos = m.end()
    return None


def _quirks(html: str) -> bool:
    """Whether lexbor parses the page in quirks mode (its doctype decides), asked of lexbor:
    the one difference it makes to the stack is whether <table> closes an open <p>."""
    pos = 0
    while (m := _TOKEN.search(html, pos)) is not None and m.group(2) is None:
        pos = m.end()
    prefix = html[: m.start()] if m is not None else html
    if "<!" not in prefix:
        return True
    return LexborHTMLParser(prefix + "<p><table>").css_first("p > table") is not None
