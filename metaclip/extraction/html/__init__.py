"""HTML pages of WARC records to image pairs: decoding a page as browsers do, and a parse whose
cost is bounded whatever the markup (why and how: the docstring of `bound`).

page        is_html, add_html_page (the parse of a page, cut where `bound` says, by lexbor)
charset     decode_html: byte-order mark, header, <meta>, detection; the WHATWG codec allowlist
bound       needs_scan (the cheap test), nesting_cut (where to cut) and the limits
tree        _Tree, the model of lexbor's tree builder: its state and the tokens it is fed, with
            its rules in stack (open elements, scope), formatting (active formatting elements,
            adoption agency), modes (dispatch by insertion mode), head, table, body, foreign
tokens      lexbor's tokenizer as the model reads it (tags, attributes, raw text, quirks mode)
elements    name sets, category bits, insertion modes, element layout, work units
"""

from metaclip.extraction.html.bound import needs_scan, nesting_cut
from metaclip.extraction.html.charset import decode_html
from metaclip.extraction.html.page import add_html_page, is_html

__all__ = ["add_html_page", "decode_html", "is_html", "needs_scan", "nesting_cut"]
