"""Safe parsing of XML.md's documents, their header, and XSD errors as ERs.

Pure, part of :mod:`nlets_switch.wire.xml` (which re-exports the public
names): no asyncio, sockets, clock, logging or storage.

A document is refused before it is parsed when it is larger than the frame
allows, holds a byte outside printable ASCII, TAB, CR and LF, or holds any
markup declaration (``<!DOCTYPE``, ``<!ENTITY``...): so no external entity
is fetched and no entity is expanded. The parser is configured not to do
either anyway (belt and braces), never touches the network, and keeps
libxml2's limits on depth and size (``huge_tree`` off).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from lxml import etree

from nlets_switch.errors import ErCode, InvalidCharacters, MessageError, MessageTooLong
from nlets_switch.wire import xml_map as xm
from nlets_switch.wire.message import Message, parse_message
from nlets_switch.wire.schema import KeySchema

__all__ = [
    "MAX_XML",
    "Header",
    "canonical",
    "check_body",
    "parse_document",
    "parse_raw",
    "pretty",
    "read_header",
    "xml_parser",
    "xsd_error",
]

MAX_XML: Final = 65_531

_BOM: Final = b"\xef\xbb\xbf"
# Bytes a document may hold: printable ASCII, and TAB, CR, LF for layout
# between elements. PROTOCOL part 2's set, plus TAB (XML.md: the character
# data must stay inside the set; indentation is not character data).
_BAD_BYTES = re.compile(rb"[^\x20-\x7e\t\r\n]")
# A markup declaration: <!DOCTYPE, <!ENTITY, <!ELEMENT... (comments and CDATA
# sections are not declarations).
_DECLARATION = re.compile(rb"<!(?!--|\[CDATA\[)")
_DATA_CHARS = re.compile(r"[\x20-\x7e\r\n]*")
_LAYOUT_CHARS = re.compile(r"[\x20-\x7e\t\r\n]*")
_BLANK = re.compile(r"[ \t\r\n]*")

def xml_parser() -> etree.XMLParser:
    """A parser that resolves nothing, loads nothing and never grows without bound."""
    return etree.XMLParser(
        encoding="utf-8", resolve_entities=False, no_network=True, load_dtd=False,
        dtd_validation=False, attribute_defaults=False, huge_tree=False,
        remove_comments=True, remove_pis=True, collect_ids=False,
    )


@dataclass(frozen=True, slots=True)
class Header:
    """An envelope's header: the input header it reads as, and the switch's elements."""

    message: Message
    output: dict[str, str]


# --------------------------------------------------------------------------
# Safe parsing.
# --------------------------------------------------------------------------


def check_body(body: bytes, max_bytes: int | None) -> bytes:
    """The document bytes without a UTF-8 BOM; raises the link-level error it deserves."""
    if max_bytes is not None and len(body) > max_bytes:
        raise MessageTooLong()
    if body.startswith(_BOM):
        body = body[len(_BOM):]
    if _BAD_BYTES.search(body):
        raise InvalidCharacters()
    return body


def _syntax_error(raw: bytes, exc: etree.XMLSyntaxError) -> MessageError:
    """``.22.`` when the header could be read before the fault, ``.01.`` otherwise."""
    line = exc.position[0] if exc.position else 0
    detail = f"XML NOT WELL-FORMED: LINE {line}: {_clean(exc.msg or str(exc))}"
    # Read again as far as it goes, to see whether a whole header came first.
    pull = etree.XMLPullParser(
        events=("end",), resolve_entities=False, no_network=True, load_dtd=False,
        huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        pull.feed(raw)
        pull.close()
    except etree.XMLSyntaxError:
        pass
    root: etree._Element | None = None
    for _event, el in _events(pull):
        parent = el.getparent()
        if el.tag == xm.HEADER and parent is not None and parent.getparent() is None:
            root = parent
            break
    if root is not None:
        try:
            header = read_header(root)
        except MessageError:
            pass
        else:
            return MessageError(ErCode.FORMAT, detail, control=header.message.control)
    return MessageError(ErCode.HEADER, detail)


def _events(pull: etree.XMLPullParser) -> Iterator[tuple[str, etree._Element]]:
    try:
        for event, el in pull.read_events():
            if isinstance(el, etree._Element):
                yield event, el
    except etree.XMLSyntaxError:
        return


def _check_chars(raw: bytes, root: etree._Element) -> None:
    """Character data and attribute values in PROTOCOL's set (character references too)."""
    if b"&#" not in raw and b"\t" not in raw:
        return  # the bytes were checked; only a reference or a TAB can bring anything else
    for el in root.iter():
        text = el.text
        if text and not (_LAYOUT_CHARS if len(el) else _DATA_CHARS).fullmatch(text):
            raise InvalidCharacters()
        if el.tail and not _LAYOUT_CHARS.fullmatch(el.tail):
            raise InvalidCharacters()
        for value in el.attrib.values():
            if not _DATA_CHARS.fullmatch(value):
                raise InvalidCharacters()


def parse_raw(raw: bytes, parser: etree.XMLParser | None = None) -> etree._Element:
    """Parse checked bytes; raises MessageError (declarations, syntax) or InvalidCharacters."""
    if _DECLARATION.search(raw):
        raise MessageError(ErCode.HEADER,
                           "XML: DOCUMENT TYPE AND ENTITY DECLARATIONS ARE NOT ALLOWED")
    try:
        root = etree.fromstring(raw, parser or xml_parser())
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(raw, exc) from None
    _check_chars(raw, root)
    return root


def parse_document(body: bytes, max_bytes: int | None = MAX_XML) -> etree._Element:
    """Parse a document as the switch does, without the XSD; returns its root.

    Raises :class:`~nlets_switch.errors.LinkError` (too long, bad
    characters) or :class:`~nlets_switch.errors.MessageError` (a
    declaration, not well-formed).
    """
    return parse_raw(check_body(body, max_bytes))


# --------------------------------------------------------------------------
# Reading the header.
# --------------------------------------------------------------------------

_KEY, _ORIGIN, _DEST, _CONTROL = xm.HEADER_INPUT
_FORBIDDEN = re.compile(r"[.\r\n]")


def _one(values: dict[str, list[str]], name: str, *, optional: bool = False) -> str | None:
    found = values.get(name, [])
    if len(found) > 1:
        raise MessageError(ErCode.HEADER, f"XML: MORE THAN ONE {xm.prefixed(name)}")
    if not found:
        if optional:
            return None
        raise MessageError(ErCode.HEADER, f"XML: MISSING {xm.prefixed(name)}")
    return found[0]


def read_header(root: etree._Element) -> Header:
    """The header of an envelope, checked as PROTOCOL part 2 checks a text header."""
    if root.tag != xm.NLETS:
        q = etree.QName(root)
        if q.localname == "NLETS":
            raise MessageError(ErCode.HEADER, f"XML: ROOT NLETS MUST BE IN NAMESPACE {xm.N2}")
        raise MessageError(ErCode.HEADER, f"XML: ROOT MUST BE n2:NLETS, NOT {q.localname}")
    if root.get(xm.VERSION_ATTR) != xm.VERSION:
        raise MessageError(ErCode.HEADER, f"XML: n2:version MUST BE {xm.VERSION}")
    header = root[0] if len(root) else None
    if header is None or header.tag != xm.HEADER:
        raise MessageError(ErCode.HEADER, "XML: MISSING n2:NLETSMessageHeader")
    values: dict[str, list[str]] = {}
    for child in header:
        tag = child.tag
        if isinstance(tag, str):
            found = values.get(tag)
            if found is None:
                values[tag] = [child.text or ""]
            else:
                found.append(child.text or "")
    key = _one(values, _KEY) or ""
    origin = _one(values, _ORIGIN) or ""
    dests = values.get(_DEST)
    if not dests:
        raise MessageError(ErCode.HEADER, f"XML: MISSING {xm.prefixed(_DEST)}")
    control = _one(values, _CONTROL, optional=True)
    joined = ",".join(dests)
    ctl = f".*{control}" if control is not None else ""
    if (_FORBIDDEN.search(f"{key}{origin}{joined}{control or ''}")
            or joined.count(",") != len(dests) - 1):
        _forbidden(key, origin, dests, control)
    message = parse_message(f"{key}.{origin}.{joined}{ctl}.TXT")
    output = ({name: v[0] for name in xm.HEADER_OUTPUT if (v := values.get(name))}
              if len(values) > 4 else {})
    return Header(message, output)


def _forbidden(key: str, origin: str, dests: list[str], control: str | None) -> None:
    """A period or line break in a header element would split the legacy header
    differently from the elements: refuse it with the ER parse_message gives."""
    if _FORBIDDEN.search(key):
        raise MessageError(ErCode.HEADER, f"MESSAGE KEY: {key[:10]}")
    if _FORBIDDEN.search(origin):
        raise MessageError(ErCode.HEADER, f"ORIGIN: {origin[:20]}")
    if control is not None and _FORBIDDEN.search(control):
        raise MessageError(ErCode.HEADER, "CONTROL FIELD: 1 TO 10 CHARACTERS")
    bad = [d for d in dests if "," in d or _FORBIDDEN.search(d)]
    raise MessageError.naming(ErCode.DESTINATION, "INVALID", bad)


# --------------------------------------------------------------------------
# XSD errors, named by path.
# --------------------------------------------------------------------------

_LIBXML_ELEMENT = re.compile(r"Element '([^']*)'(?:, attribute '([^']*)')?: (.*)", re.DOTALL)
_CLARK = re.compile(r"\{([^}]*)\}([\w.-]+)")
_SET = re.compile(r" is not an element of the set \{.*\}")
_FACET = re.compile(r"\[facet '[^']*'\] ")


def _clean(text: str) -> str:
    """A one-line, printable, short reason (it goes into an ER's detail line)."""
    text = _CLARK.sub(lambda m: xm.prefixed(f"{{{m[1]}}}{m[2]}"), text)
    text = " ".join(text.split()).rstrip(".")
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text[:200]


def _element_path(el: etree._Element) -> str:
    """``n2:NLETS/n2:NLETSInquiryData/n2:Field[2]``, with this project's prefixes."""
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        parent = node.getparent()
        name = xm.prefixed(str(node.tag))
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/".join(reversed(parts))


def _locate(root: etree._Element, path: str | None) -> etree._Element | None:
    """The element libxml2's error path names (written with the sender's prefixes)."""
    if not path:
        return None
    ns: dict[str, str] = {}
    for el in root.iter():
        for prefix, uri in el.nsmap.items():
            if prefix is not None:
                ns.setdefault(prefix, uri)
    try:
        found = root.getroottree().xpath(path, namespaces=ns)
    except etree.XPathError:
        return None
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0]
    return None


def xsd_error(schema: KeySchema, root: etree._Element, entry: etree._LogEntry,
               control: str | None) -> MessageError:
    """The ER of the first XSD violation: ``.01.`` in the header, else the field's code."""
    el = _locate(root, entry.path)
    m = _LIBXML_ELEMENT.fullmatch(entry.message.strip())
    reason = _clean(_FACET.sub("", _SET.sub(" is not allowed", m[3] if m else entry.message)))
    where = _element_path(el) if el is not None else (entry.path or "n2:NLETS")
    if m and m[2]:
        where += f"/@{xm.prefixed(m[2])}"
    detail = f"{where}: {reason}"
    if el is None:
        return MessageError(ErCode.FORMAT, detail, control=control)
    chain = [el, *el.iterancestors()][::-1]  # root first
    if len(chain) > 1 and chain[1].tag == xm.HEADER:
        return MessageError(ErCode.HEADER, detail, control=control)
    code = ErCode.FORMAT
    if len(chain) > 2:
        top = chain[2]
        tag = top.get(xm.TAG_ATTR) if top.tag == xm.FIELD else None
        if tag is None:
            fe = xm.field_of(tuple(str(e.tag) for e in chain[2:]))
            tag = fe.tag if fe is not None else None
        spec = schema.fields.get(tag) if tag is not None else None
        if spec is not None:
            code = spec.er  # a bad DOB is .05. in XML as in text
    return MessageError(code, detail, control=control)


# --------------------------------------------------------------------------
# Presentation: pretty-printing and canonical comparison.
# --------------------------------------------------------------------------


def _strip_layout(el: etree._Element) -> None:
    """Drop whitespace-only text between elements (it carries no data)."""
    for node in el.iter():
        if len(node) and node.text and _BLANK.fullmatch(node.text):
            node.text = None
        if node.tail and _BLANK.fullmatch(node.tail):
            node.tail = None


def pretty(body: bytes, max_bytes: int | None = MAX_XML) -> str:
    """The document indented for a person to read (``send``, ``term``)."""
    root = parse_document(body, max_bytes)
    _strip_layout(root)
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def _rebuild(el: etree._Element, parent: etree._Element | None) -> etree._Element:
    new = (etree.Element(el.tag, nsmap=dict(xm.NSMAP)) if parent is None
           else etree.SubElement(parent, el.tag))
    for name, value in sorted(el.attrib.items()):
        new.set(name, value)
    new.text = el.text
    for child in el:
        _rebuild(child, new).tail = None
    return new


def canonical(body: bytes, max_bytes: int | None = MAX_XML) -> bytes:
    """A canonical form (C14N, this project's prefixes, no layout whitespace).

    Two documents with the same elements, attributes and character data
    have the same canonical form, whatever their prefixes, attribute order
    and indentation: scenarios compare XML this way.
    """
    root = parse_document(body, max_bytes)
    _strip_layout(root)
    return etree.tostring(_rebuild(root, None), method="c14n")
