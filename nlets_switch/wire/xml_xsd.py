"""The project's XSD for XML.md's subset, written from the loaded schemas.

Nlets does not publish its XSDs, so the project ships its own: one schema
document per namespace (``nlets.xsd`` for ``n2``, ``nlets-hdr.xsd`` for
``nh2``, ``niem-core.xsd`` for ``nc``, ``jxdm.xsd`` for ``j``). The parts that
depend on ``schemas/*.yaml`` are generated: the message keys (an
enumeration of ``nh2:MessageKeyCodeText``, each documented with its data
element and the element of every field it takes) and the field tags (an
enumeration of ``n2:Field``'s ``n2:tag``). The copy under
``schemas/xml/`` is :func:`xsd_documents` of the bundled schemas, and a test
keeps it so; the switch compiles its own from the schemas it loaded, so
keys and tags added by an adapter's schema directory are valid too.

The XSD checks the document's structure and the shape the mapping needs
(a date is ``yyyy-mm-dd``, a header ORI is 9 characters). What a value
means (a real date, a tag the key takes, the key's destination limits) is
left to the per-key rules of ``schemas/*.yaml``, which run on the
translated text, so an XML message gets the same ``ER`` as its text twin.

Pure: builds strings and, in :func:`compile_xsd`, an :class:`lxml.etree.XMLSchema`
from them, without touching files or the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from lxml import etree

from nlets_switch.wire import xml_map as xm
from nlets_switch.wire.schema import SchemaSet

if TYPE_CHECKING:
    from lxml.etree._docloader import _InputDocument

__all__ = ["MAIN", "XSD_FILES", "compile_xsd", "xsd_documents"]

_XS: Final = "http://www.w3.org/2001/XMLSchema"
#: The schema documents, the main one first.
XSD_FILES: Final = ("nlets.xsd", "nlets-hdr.xsd", "niem-core.xsd", "jxdm.xsd")
MAIN: Final = XSD_FILES[0]
_FILE_OF: Final = {xm.N2: "nlets.xsd", xm.NH2: "nlets-hdr.xsd", xm.NC: "niem-core.xsd",
                   xm.J: "jxdm.xsd"}

# XSD regular expressions (whole value). A field value: printable ASCII
# without the period (it would end the field) and without line breaks (they
# separate fields), at least one character (PROTOCOL part 2).
_FIELD_VALUE: Final = r"[ -,\-/-~]+"
# A free text: printable ASCII, CR and LF (PROTOCOL part 2).
_FREE_TEXT: Final = r"[ -~\r\n]*"
_ORI: Final = "[A-Z]{2}[A-Z0-9]{7}"
# A state, NL, AX (2 letters), an ORI or a help-file address (9 characters).
_ADDRESS: Final = "[A-Z]{2}([A-Z0-9]{7})?"
# 1 to 10 printable characters, no blank, no period (PROTOCOL part 2).
_CONTROL: Final = r"[!-,\-/-~]{1,10}"

_NOTE: Final = (
    "nlets-switch's XSD for the subset of Nlets' NIEM messages (version 4.00) that "
    "docs/xml.md describes. Nlets does not publish its XSDs: element names marked "
    "'Nlets' come from Nlets' public examples, those marked 'ours' are this project's "
    "choices. Generated from schemas/*.yaml by nlets_switch/wire/xml_xsd.py; do not edit."
)

# Where each element's name comes from (XML.md): N = Nlets' examples.
_OURS: Final = frozenset({
    "nc:PersonSexCode", "nc:PersonRaceCode", "nc:PersonDriverLicenseIdentification",
    "nc:PersonSSNIdentification", "j:PersonFBIIdentification",
    "j:PersonStateFingerprintIdentification", "nc:Year", "n2:Field", "n2:tag",
})


def _source(name: str) -> str:
    """Where a name comes from, as the XSD documents it."""
    return "Name: this project's." if name in _OURS else "Name: Nlets'."


class _Doc:
    """One schema document being written."""

    def __init__(self, ns: str, imports: tuple[str, ...]) -> None:
        self.ns = ns
        nsmap: dict[str | None, str] = {"xs": _XS, **{p: u for p, u in xm.NSMAP.items()}}
        self.root = etree.Element(
            f"{{{_XS}}}schema", nsmap=nsmap,
            attrib={"targetNamespace": ns, "elementFormDefault": "qualified",
                    "attributeFormDefault": "qualified", "version": xm.VERSION})
        self.doc(self.root, _NOTE)
        for other in imports:
            self.x(self.root, "import", namespace=other, schemaLocation=_FILE_OF[other])

    @staticmethod
    def x(parent: etree._Element, xs_name: str, **attrs: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{_XS}}}{xs_name}", attrib=attrs)

    def doc(self, parent: etree._Element, text: str) -> None:
        ann = self.x(parent, "annotation")
        self.x(ann, "documentation").text = text

    def simple(self, name: str, pattern: str | None = None,
               enum: Mapping[str, str] | None = None, doc: str = "") -> None:
        t = self.x(self.root, "simpleType", name=name)
        if doc:
            self.doc(t, doc)
        r = self.x(t, "restriction", base="xs:string")
        for value, text in (enum or {}).items():
            e = self.x(r, "enumeration", value=value)
            self.doc(e, text)
        if pattern is not None:
            self.x(r, "pattern", value=pattern)

    def element(self, name: str, type_: str | None = None, doc: str = "") -> etree._Element:
        attrs = {"name": name} if type_ is None else {"name": name, "type": type_}
        el = self.x(self.root, "element", **attrs)
        prefix = next(p for p, u in xm.NSMAP.items() if u == self.ns)
        self.doc(el, _source(f"{prefix}:{name}") + (f" {doc}" if doc else ""))
        return el

    def complex(self, name: str, group: str, children: tuple[tuple[str, str, str], ...],
                **attrs: str) -> etree._Element:
        """A complex type whose ``group`` (sequence, all, choice) holds element refs.

        ``children`` are ``(ref, minOccurs, maxOccurs)``.
        """
        t = self.x(self.root, "complexType", name=name)
        g = self.x(t, group, **attrs)
        for ref, lo, hi in children:
            occurs = {} if (lo, hi) == ("1", "1") else {"minOccurs": lo, "maxOccurs": hi}
            self.x(g, "element", ref=ref, **occurs)
        return t

    def text(self) -> str:
        body = etree.tostring(self.root, pretty_print=True, encoding="unicode")
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _opt(*refs: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((r, "0", "1") for r in refs)


def _mapping_of(tag: str) -> str:
    fe = xm.FIELD_ELEMENTS.get(tag)
    return fe.xpath if fe is not None else f'n2:Field n2:tag="{tag}"'


def _key_docs(schemas: SchemaSet) -> dict[str, str]:
    docs: dict[str, str] = {}
    for key, ks in schemas.items():
        data = xm.prefixed(xm.data_element(key, ks.kind))
        holder = xm.text_element(key, ks.kind, ks.free_text)
        if holder is not None:
            content = f"text in {xm.prefixed(holder)}"
        else:
            content = "fields: " + "; ".join(f"{t} {_mapping_of(t)}" for t in ks.fields)
        docs[key] = f"{ks.kind}, {data}: {ks.description}. {content}."
    return docs


def _tag_docs(schemas: SchemaSet) -> dict[str, str]:
    docs: dict[str, str] = {}
    for ks in schemas.values():
        for tag, spec in ks.fields.items():
            if tag not in docs:
                where = xm.FIELD_ELEMENTS.get(tag)
                also = (f" Its own element: {where.xpath} (when the value has that "
                        "element's form; n2:Field otherwise).") if where else ""
                docs[tag] = f"{spec.description}.{also}"
    return dict(sorted(docs.items()))


def _header_doc(schemas: SchemaSet) -> _Doc:
    d = _Doc(xm.NH2, ())
    d.simple("MessageKeyCodeType", enum=_key_docs(schemas),
             doc="The message keys of schemas/*.yaml, with their data element and fields.")
    d.simple("ORIType", _ORI, doc="A 9-character ORI (PROTOCOL part 2).")
    d.simple("AddressType", _ADDRESS,
             doc="A destination: state code, NL, AX, ORI or help-file address.")
    d.simple("ControlFieldType", _CONTROL, doc="The control field, 1 to 10 characters.")
    d.simple("DateType", "[0-9]{2}/[0-9]{2}/[0-9]{4}", doc="MM/DD/YYYY (PROTOCOL part 3).")
    d.simple("TimeType", "[0-9]{2}:[0-9]{2}", doc="HH:MM (PROTOCOL part 3).")
    d.simple("NumericType", "[0-9]{5}", doc="A 5-digit message number (PROTOCOL part 3).")
    for name, type_, doc in (
        ("MessageKeyCodeText", "MessageKeyCodeType", "The message key."),
        ("OriginatingORIID", "ORIType", "The sender's ORI."),
        ("DestinationORIID", "AddressType", "One destination; on delivery, the receiver."),
        ("DocumentControlFieldText", "ControlFieldType", "The control field (*CONTROL)."),
        ("MessageReceiveDate", "DateType", "Set by the switch: when it received the message."),
        ("MessageReceiveTime", "TimeType", "Set by the switch: when it received the message."),
        ("ReceiveMessageNumeric", "NumericType", "Set by the switch: the input number."),
        ("MessageSendDate", "DateType", "Set by the switch: when it sent the message."),
        ("MessageSendTime", "TimeType", "Set by the switch: when it sent the message."),
        ("SendMessageNumeric", "NumericType", "Set by the switch: the output number."),
    ):
        d.element(name, f"nh2:{type_}", doc)
    return d


def _core_doc() -> _Doc:
    d = _Doc(xm.NC, ())
    d.simple("TextType", _FIELD_VALUE, doc="A legacy field value: printable, no period.")
    d.simple("DateType", "[0-9]{4}-[0-9]{2}-[0-9]{2}",
             doc="yyyy-mm-dd; whether it is a real date is the key's rule (ER .05.).")
    d.simple("YearType", "[0-9]{4}", doc="A 4-digit year.")
    d.complex("PersonNameType", "sequence", (
        ("nc:PersonGivenName", "0", "1"), ("nc:PersonMiddleName", "0", "1"),
        ("nc:PersonSurName", "1", "1")))
    d.complex("DateRepresentationType", "sequence", (("nc:Date", "1", "1"),))
    d.complex("YearRepresentationType", "sequence", (("nc:Year", "1", "1"),))
    d.complex("IdentificationType", "sequence", (("nc:IdentificationID", "1", "1"),))
    d.complex("PlateIdentificationType", "all", _opt(
        "nc:IdentificationID", "nc:IdentificationCategoryText",
        "nc:IdentificationExpirationDate"))
    d.complex("VehicleType", "all", _opt(
        "nc:ConveyanceRegistrationPlateIdentification", "nc:VehicleIdentification"))
    legacy = {fe.path[-1]: fe.tag for fe in xm.FIELD_ELEMENTS.values()}
    for name, type_ in (
        ("PersonName", "PersonNameType"), ("PersonGivenName", "TextType"),
        ("PersonMiddleName", "TextType"), ("PersonSurName", "TextType"),
        ("PersonBirthDate", "DateRepresentationType"), ("Date", "DateType"),
        ("PersonSexCode", "TextType"), ("PersonRaceCode", "TextType"),
        ("PersonDriverLicenseIdentification", "IdentificationType"),
        ("PersonSSNIdentification", "IdentificationType"),
        ("IdentificationID", "TextType"), ("IdentificationCategoryText", "TextType"),
        ("IdentificationExpirationDate", "YearRepresentationType"), ("Year", "YearType"),
        ("Vehicle", "VehicleType"),
        ("ConveyanceRegistrationPlateIdentification", "PlateIdentificationType"),
        ("VehicleIdentification", "IdentificationType"),
    ):
        tag = legacy.get(xm.qn(f"nc:{name}"))
        d.element(name, f"nc:{type_}", f"Legacy field {tag}." if tag else "")
    return d


def _jxdm_doc() -> _Doc:
    d = _Doc(xm.J, (xm.NC,))
    d.element("PersonFBIIdentification", "nc:IdentificationType", "Legacy field FBI.")
    d.element("PersonStateFingerprintIdentification", "nc:IdentificationType",
              "Legacy field SID.")
    return d


def _main_doc(schemas: SchemaSet) -> _Doc:
    d = _Doc(xm.N2, (xm.NH2, xm.NC, xm.J))
    d.simple("TextType", _FIELD_VALUE, doc="A legacy field value: printable, no period.")
    d.simple("FreeTextType", _FREE_TEXT,
             doc="A legacy text, verbatim: printable ASCII, CR and LF.")
    d.simple("FieldTagType", enum=_tag_docs(schemas),
             doc="The field tags of schemas/*.yaml (FIELDS.md).")
    va = d.x(d.root, "attribute", name="version", type="xs:string", fixed=xm.VERSION)
    d.doc(va, _source("n2:version") + " The envelope's version.")
    ta = d.x(d.root, "attribute", name="tag", type="n2:FieldTagType")
    d.doc(ta, _source("n2:tag") + " The legacy tag of an n2:Field.")

    root = d.complex("NLETSType", "sequence", (("n2:NLETSMessageHeader", "1", "1"),))
    choice = d.x(root[0], "choice")
    for data in xm.DATA_ELEMENTS:
        d.x(choice, "element", ref=xm.prefixed(data))
    d.x(root, "attribute", ref="n2:version", use="required")
    header = d.complex("NLETSMessageHeaderType", "sequence", (
        ("nh2:MessageKeyCodeText", "1", "1"), ("nh2:OriginatingORIID", "1", "1"),
        ("nh2:DestinationORIID", "1", "unbounded"), ("nh2:DocumentControlFieldText", "0", "1")))
    out = d.x(header[0], "sequence", minOccurs="0")
    for name in xm.HEADER_OUTPUT:
        d.x(out, "element", ref=xm.prefixed(name))
    d.complex("InquiryDataType", "choice", (
        ("n2:ReasonCode", "1", "1"), ("n2:Person", "1", "1"), ("nc:Vehicle", "1", "1"),
        ("n2:InquiryDescriptionText", "1", "1"), ("n2:Field", "1", "1")),
        minOccurs="0", maxOccurs="unbounded")
    d.complex("ResponseDataType", "sequence", (("n2:ResponseText", "1", "1"),))
    d.complex("MailDataType", "choice", (
        ("n2:MailMessageText", "1", "1"), ("n2:StatusMessageText", "1", "1")))
    d.complex("PersonType", "all", _opt(
        "nc:PersonName", "nc:PersonBirthDate", "nc:PersonSexCode", "nc:PersonRaceCode",
        "nc:PersonDriverLicenseIdentification", "nc:PersonSSNIdentification",
        "j:PersonFBIIdentification", "j:PersonStateFingerprintIdentification"))
    field = d.x(d.root, "complexType", name="FieldType")
    ext = d.x(d.x(field, "simpleContent"), "extension", base="n2:TextType")
    d.x(ext, "attribute", ref="n2:tag", use="required")

    for name, type_, doc in (
        ("NLETS", "NLETSType", "The envelope: the header, then one data element."),
        ("NLETSMessageHeader", "NLETSMessageHeaderType", "The header (PROTOCOL parts 2, 3)."),
        ("NLETSInquiryData", "InquiryDataType", "The data of an inquiry (keys ...Q)."),
        ("NLETSUpdateData", "InquiryDataType", "The data of a directory update (TA TU TD)."),
        ("NLETSResponseData", "ResponseDataType", "The data of a response (keys ...R)."),
        ("NLETSMailData", "MailDataType", "The data of AM, ER and SM."),
        ("ResponseText", "FreeTextType", "The response text, as in the legacy body."),
        ("MailMessageText", "FreeTextType", "The text of AM and ER."),
        ("StatusMessageText", "FreeTextType", "The text of SM."),
        ("InquiryDescriptionText", "FreeTextType", "The free text of LQ and its like."),
        ("ReasonCode", "TextType", "Legacy field RSN."),
        ("Person", "PersonType", "The person fields, in the legacy fields' order."),
        ("Field", "FieldType", "Any legacy field without an element of its own."),
    ):
        d.element(name, f"n2:{type_}", doc)
    return d


def xsd_documents(schemas: SchemaSet) -> dict[str, str]:
    """The XSD for ``schemas``: file name -> text, :data:`MAIN` first."""
    docs = (_main_doc(schemas), _header_doc(schemas), _core_doc(), _jxdm_doc())
    return {_FILE_OF[d.ns]: d.text() for d in docs}


class _Resolver(etree.Resolver):
    """Answers the XSD's imports from memory; nothing is read from disk or network."""

    def __init__(self, docs: Mapping[str, str]) -> None:
        super().__init__()
        self._docs = docs

    def resolve(self, system_url: str | None, public_id: str | None,
                context: object) -> _InputDocument | None:
        name = (system_url or "").rsplit("/", 1)[-1]
        text = self._docs.get(name)
        if text is None:
            return None  # not ours: libxml2 fails the import (no network, no such file)
        return self.resolve_string(text.encode("utf-8"), context)


def compile_xsd(docs: Mapping[str, str]) -> etree.XMLSchema:
    """Compile :func:`xsd_documents`' output (imports resolved from ``docs`` only)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_Resolver(docs))
    root = etree.fromstring(docs[MAIN].encode("utf-8"), parser,
                            base_url=f"nlets-switch-xsd:/{MAIN}")
    return etree.XMLSchema(root)
