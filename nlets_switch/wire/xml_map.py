"""The XML field mapping of XML.md: legacy ``TAG/value`` fields <-> NIEM elements.

Pure: builds and reads :mod:`lxml` element trees, nothing else (no I/O, no
clock, no logging). :mod:`nlets_switch.wire.xml` parses and checks documents
and :mod:`nlets_switch.wire.xml_xsd` writes the XSD; both take their names
and the mapping from here, so the code, the XSD and ``docs/xml.md`` agree.

The mapping is total and keeps field order, so ``text -> xml -> text`` gives
back the same fields in the same order:

* a tag of :data:`FIELD_ELEMENTS` whose value has the element's form goes in
  its element (``DOB/19500101`` -> ``n2:Person/nc:PersonBirthDate/nc:Date``
  ``1950-01-01``);
* any other field, and a mapped tag whose value has not that form
  (``DOB/010150``, ``NAM/DOE, JANE``), is ``<n2:Field n2:tag="T">value</n2:Field>``;
* consecutive fields under one parent share it (one ``n2:Person`` for
  ``NAM``, ``DOB`` and ``SEX``); a field that cannot be appended at the end
  of the open path opens a new parent, so document order is field order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from lxml import etree

from nlets_switch.errors import ErCode, MessageError

__all__ = [
    "DATA_ELEMENTS",
    "FIELD",
    "FIELD_ELEMENTS",
    "HEADER",
    "HEADER_INPUT",
    "HEADER_OUTPUT",
    "N2",
    "NC",
    "NH2",
    "NLETS",
    "NSMAP",
    "TAG_ATTR",
    "TEXT_ELEMENTS",
    "VERSION",
    "VERSION_ATTR",
    "FieldElement",
    "J",
    "data_element",
    "escape",
    "prefixed",
    "qn",
    "text_element",
    "write_fields",
    "xml_to_fields",
]

#: Namespaces of Nlets' NIEM envelope (XML.md).
N2: Final = "http://www.nlets.org/niem/1.0"
NH2: Final = "http://www.nlets.org/niem/nlets-hdr/1.0"
NC: Final = "http://niem.gov/niem/niem-core/2.0"
J: Final = "http://niem.gov/niem/domains/jxdm/4.0"
#: The prefixes this project writes (a sender may use any prefixes).
NSMAP: Final[Mapping[str, str]] = MappingProxyType({"n2": N2, "nh2": NH2, "nc": NC, "j": J})
_PREFIX_OF: Final = MappingProxyType({uri: p for p, uri in NSMAP.items()})
#: The envelope's version attribute (XML.md: Nlets version 4.00).
VERSION: Final = "4.00"


def qn(name: str) -> str:
    """The Clark name of a prefixed name: ``n2:NLETS`` -> ``{http://...}NLETS``."""
    prefix, _, local = name.partition(":")
    return f"{{{NSMAP[prefix]}}}{local}"


def prefixed(clark: str) -> str:
    """The prefixed name of a Clark name, with this project's prefixes."""
    if clark.startswith("{"):
        uri, _, local = clark[1:].partition("}")
        prefix = _PREFIX_OF.get(uri)
        return f"{prefix}:{local}" if prefix else f"{{{uri}}}{local}"
    return clark


NLETS: Final = qn("n2:NLETS")
VERSION_ATTR: Final = qn("n2:version")
HEADER: Final = qn("n2:NLETSMessageHeader")
FIELD: Final = qn("n2:Field")
TAG_ATTR: Final = qn("n2:tag")

#: The input header elements (XML.md, all from Nlets): key, origin, one per
#: destination, the optional control field.
HEADER_INPUT: Final = (
    qn("nh2:MessageKeyCodeText"), qn("nh2:OriginatingORIID"), qn("nh2:DestinationORIID"),
    qn("nh2:DocumentControlFieldText"),
)
#: What the switch adds on delivery: the legacy output header (PROTOCOL part 3).
HEADER_OUTPUT: Final = (
    qn("nh2:MessageReceiveDate"), qn("nh2:MessageReceiveTime"), qn("nh2:ReceiveMessageNumeric"),
    qn("nh2:MessageSendDate"), qn("nh2:MessageSendTime"), qn("nh2:SendMessageNumeric"),
)

INQUIRY: Final = qn("n2:NLETSInquiryData")
RESPONSE: Final = qn("n2:NLETSResponseData")
MAIL: Final = qn("n2:NLETSMailData")
UPDATE: Final = qn("n2:NLETSUpdateData")
#: The data elements of XML.md, one of which follows the header.
DATA_ELEMENTS: Final = (INQUIRY, RESPONSE, MAIL, UPDATE)
#: Directory updates (XML.md) take ``NLETSUpdateData``; no bundled schema has them.
_UPDATE_KEYS: Final = frozenset({"TA", "TU", "TD"})
_STATUS_KEYS: Final = frozenset({"SM"})

DESCRIPTION: Final = qn("n2:InquiryDescriptionText")
#: Elements that carry a whole free text (the legacy body, verbatim).
TEXT_ELEMENTS: Final = (
    DESCRIPTION, qn("n2:ResponseText"), qn("n2:MailMessageText"), qn("n2:StatusMessageText"),
)


def data_element(key: str, kind: str) -> str:
    """The data element a key's message carries (XML.md): by kind, updates apart."""
    if key in _UPDATE_KEYS:
        return UPDATE
    return {"inquiry": INQUIRY, "response": RESPONSE}.get(kind, MAIL)


def text_element(key: str, kind: str, free_text: bool) -> str | None:
    """The element holding the key's text, or None when its text is fields."""
    data = data_element(key, kind)
    if data == RESPONSE:
        return qn("n2:ResponseText")
    if data == MAIL:
        return qn("n2:StatusMessageText") if key in _STATUS_KEYS else qn("n2:MailMessageText")
    return DESCRIPTION if free_text else None


# --------------------------------------------------------------------------
# The field elements (XML.md's table).
# --------------------------------------------------------------------------

_GIVEN = qn("nc:PersonGivenName")
_MIDDLE = qn("nc:PersonMiddleName")
_SUR = qn("nc:PersonSurName")
_EIGHT_DIGITS = re.compile(r"[0-9]{8}")
_FOUR_DIGITS = re.compile(r"[0-9]{4}")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


@dataclass(frozen=True, slots=True)
class FieldElement:
    """Where one legacy tag lives in a data element.

    ``path`` runs from the data element to the element holding the value
    (Clark names). ``form`` says how the value is written there: ``text``
    (verbatim), ``date`` (``CCYYMMDD`` as ``yyyy-mm-dd``), ``year`` (4
    digits) or ``name`` (``LAST,FIRST MIDDLE`` as three child elements).
    ``source`` is ``N`` when Nlets' examples use the element, ``ours``
    otherwise (XML.md); ``names`` is ``path`` with this project's prefixes.
    """

    tag: str
    path: tuple[str, ...]
    form: str
    source: str
    names: tuple[str, ...]

    @property
    def xpath(self) -> str:
        """The path with this project's prefixes, as XML.md and the XSD name it."""
        return "/".join(self.names)

    def encode(self, value: str) -> str | list[tuple[str, str]] | None:
        """The leaf text (or the name's children, prefixed) for ``value``; None if it has
        not the form."""
        if self.form == "date":
            if not _EIGHT_DIGITS.fullmatch(value):
                return None
            return f"{value[:4]}-{value[4:6]}-{value[6:]}"
        if self.form == "year":
            return value if _FOUR_DIGITS.fullmatch(value) else None
        if self.form == "name":
            return _name_parts(value)
        return value

    def decode(self, el: etree._Element) -> str:
        """The legacy value of this field's element."""
        if self.form == "name":
            parts = {child.tag: child.text or "" for child in el}
            first = " ".join(p for p in (parts.get(_GIVEN, ""), parts.get(_MIDDLE, "")) if p)
            return f"{parts.get(_SUR, '')},{first}"
        text = el.text or ""
        if self.form == "date":
            m = _ISO_DATE.fullmatch(text)
            return "".join(m.groups()) if m else text
        return text


def _name_parts(value: str) -> list[tuple[str, str]] | None:
    """``LAST,FIRST MIDDLE`` as (element, text) pairs, when the split is lossless.

    A name the three elements cannot give back byte for byte (a blank after
    the comma, no first name, a trailing blank) is not split: it travels as
    an ``n2:Field``, so the translation stays exact.
    """
    sur, comma, rest = value.partition(",")
    if not comma or not sur or not rest or rest[0] == " ":
        return None
    given, _, middle = rest.partition(" ")
    if f"{sur},{given}" + (f" {middle}" if middle else "") != value:
        return None
    return [("nc:PersonGivenName", given), *([("nc:PersonMiddleName", middle)] if middle else []),
            ("nc:PersonSurName", sur)]


def _fe(tag: str, path: str, form: str, source: str) -> FieldElement:
    names = tuple(path.split("/"))
    return FieldElement(tag, tuple(qn(p) for p in names), form, source, names)


_PERSON = "n2:Person"
_PLATE = "nc:Vehicle/nc:ConveyanceRegistrationPlateIdentification"
_ID = "nc:IdentificationID"

#: The tags with an element of their own (XML.md), by tag.
FIELD_ELEMENTS: Final[Mapping[str, FieldElement]] = MappingProxyType({
    fe.tag: fe for fe in (
        _fe("RSN", "n2:ReasonCode", "text", "N"),
        _fe("NAM", f"{_PERSON}/nc:PersonName", "name", "N"),
        _fe("DOB", f"{_PERSON}/nc:PersonBirthDate/nc:Date", "date", "N"),
        _fe("SEX", f"{_PERSON}/nc:PersonSexCode", "text", "ours"),
        _fe("RAC", f"{_PERSON}/nc:PersonRaceCode", "text", "ours"),
        _fe("OLN", f"{_PERSON}/nc:PersonDriverLicenseIdentification/{_ID}", "text", "ours"),
        _fe("SOC", f"{_PERSON}/nc:PersonSSNIdentification/{_ID}", "text", "ours"),
        _fe("FBI", f"{_PERSON}/j:PersonFBIIdentification/{_ID}", "text", "ours"),
        _fe("SID", f"{_PERSON}/j:PersonStateFingerprintIdentification/{_ID}", "text", "ours"),
        _fe("LIC", f"{_PLATE}/{_ID}", "text", "N"),
        _fe("LIT", f"{_PLATE}/nc:IdentificationCategoryText", "text", "N"),
        _fe("LIY", f"{_PLATE}/nc:IdentificationExpirationDate/nc:Year", "year", "N"),
        _fe("VIN", f"nc:Vehicle/nc:VehicleIdentification/{_ID}", "text", "N"),
    )
})
_BY_PATH: Final = MappingProxyType({fe.path: fe for fe in FIELD_ELEMENTS.values()})
_CONTAINERS: Final = frozenset(fe.path[:i] for fe in FIELD_ELEMENTS.values()
                               for i in range(1, len(fe.path)))


def field_of(path: tuple[str, ...]) -> FieldElement | None:
    """The field element whose value holds the element at ``path`` (from the data element)."""
    for n in range(len(path), 0, -1):
        fe = _BY_PATH.get(path[:n])
        if fe is not None:
            return fe
    return None


# --------------------------------------------------------------------------
# Fields -> elements, elements -> fields.
# --------------------------------------------------------------------------

# Text and attribute escapes. CR is written as a reference, or the parser's
# line-end normalisation would turn CR LF into LF and the round trip would
# lose it.
_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;",
                                 '"': "&quot;"})


def escape(text: str) -> str:
    """``text`` as XML character data or attribute value (double quotes)."""
    return text.translate(_ESCAPES)


def write_fields(fields: Iterable[tuple[str, str]]) -> str:
    """The elements of ``fields``, in order, as the content of a data element.

    Written as text rather than built as a tree: this runs for every
    delivery to an XML link. Only this project's prefixes are used, and the
    envelope that holds the result declares them.
    """
    out: list[str] = []
    # The open path: (element, children it already has). Each is the last
    # child of the one before (of the data element for the first).
    chain: list[tuple[str, set[str]]] = []
    for tag, value in fields:
        fe = FIELD_ELEMENTS.get(tag)
        content = fe.encode(value) if fe is not None else None
        if fe is None or content is None:
            out.extend(f"</{name}>" for name, _ in reversed(chain))
            chain.clear()
            out.append(f'<n2:Field n2:tag="{escape(tag)}">{escape(value)}</n2:Field>')
            continue
        path = fe.names
        common = 0
        while (common < len(chain) and common < len(path) - 1
               and chain[common][0] == path[common]):
            common += 1
        # Reuse as much of the open path as the XSD allows: each child of
        # n2:Person, nc:Vehicle and the plate occurs at most once (xs:all).
        k = common
        while k > 0 and path[k] in chain[k - 1][1]:
            k -= 1
        out.extend(f"</{name}>" for name, _ in reversed(chain[k:]))
        del chain[k:]
        for name in path[k:-1]:
            if chain:
                chain[-1][1].add(name)
            out.append(f"<{name}>")
            chain.append((name, set()))
        leaf = path[-1]
        if chain:
            chain[-1][1].add(leaf)
        if isinstance(content, str):
            out.append(f"<{leaf}>{escape(content)}</{leaf}>")
        else:
            inner = "".join(f"<{n}>{escape(t)}</{n}>" for n, t in content)
            out.append(f"<{leaf}>{inner}</{leaf}>")
    out.extend(f"</{name}>" for name, _ in reversed(chain))
    return "".join(out)


# The reader's map: element -> (its field, or None and the map of its children).
_Tree = dict[str, tuple["FieldElement | None", "_Tree"]]


def _build_tree() -> _Tree:
    tree: _Tree = {}
    for fe in FIELD_ELEMENTS.values():
        node = tree
        for name in fe.path[:-1]:
            node = node.setdefault(name, (None, {}))[1]
        node[fe.path[-1]] = (fe, {})
    return tree


_TREE: Final = _build_tree()


def xml_to_fields(data: etree._Element) -> list[tuple[str, str]]:
    """The ``(tag, value)`` fields of a data element's field elements, in document order.

    Raises :class:`MessageError` ``.22.`` naming an element that holds no
    field (the XSD refuses those first; this keeps the reader total).
    """
    out: list[tuple[str, str]] = []
    for child in data:
        if child.tag == FIELD:
            out.append((child.get(TAG_ATTR) or "", child.text or ""))
        else:
            _walk(child, _TREE, out)
    return out


def _walk(el: etree._Element, tree: _Tree, out: list[tuple[str, str]]) -> None:
    node = tree.get(el.tag) if isinstance(el.tag, str) else None
    if node is None:
        names = [prefixed(str(e.tag)) for e in (el, *el.iterancestors())]
        raise MessageError(ErCode.FORMAT, f"{'/'.join(reversed(names))}: NOT A FIELD ELEMENT")
    fe, sub = node
    if fe is None:
        for child in el:
            _walk(child, sub, out)
    elif fe.form == "text":
        out.append((fe.tag, el.text or ""))
    else:
        out.append((fe.tag, fe.decode(el)))
