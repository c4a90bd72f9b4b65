"""XML links (XML.md): Nlets' NIEM envelope, translated to and from legacy text.

Pure, like the rest of the codec: no asyncio, sockets, clock, logging or
storage. An :class:`XmlCodec` is built once from the loaded schemas (it
compiles the XSD of :mod:`nlets_switch.wire.xml_xsd`) and then translates:

* :meth:`XmlCodec.read_input` (the switch, for an ``M`` body from an XML
  link): a link-level :class:`~nlets_switch.errors.LinkError` (``N``) for
  an oversize body or characters outside PROTOCOL's set, else an
  :class:`XmlInput` holding either the input text of PROTOCOL part 2 (which
  then runs the same checks as a text message, so it gets the same ``ER``)
  or the :class:`~nlets_switch.errors.MessageError` its ``ER`` reports;
* :meth:`XmlCodec.output_to_xml` (the switch, for a delivery to an XML
  link): the output header of part 3 in the ``nh2:`` header elements;
* :meth:`XmlCodec.input_to_xml`, :meth:`XmlCodec.to_text`,
  :meth:`XmlCodec.read_output` for tools and tests.

Parsing (hardened against XXE, entity expansion and network access) is in
:mod:`nlets_switch.wire.xml_parse`, the field mapping in
:mod:`nlets_switch.wire.xml_map`, the XSD in :mod:`nlets_switch.wire.xml_xsd`.
docs/xml.md describes the format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from lxml import etree

from nlets_switch.errors import ErCode, MessageError
from nlets_switch.wire import xml_map as xm
from nlets_switch.wire.message import Message, OutputMessage, parse_message, parse_output
from nlets_switch.wire.schema import KeySchema, SchemaSet, parse_fields
from nlets_switch.wire.xml_parse import (
    MAX_XML,
    Header,
    canonical,
    check_body,
    parse_document,
    parse_raw,
    pretty,
    read_header,
    xml_parser,
    xsd_error,
)
from nlets_switch.wire.xml_xsd import compile_xsd, xsd_documents

__all__ = [
    "MAX_XML",
    "XmlCodec",
    "XmlInput",
    "canonical",
    "is_xml",
    "parse_document",
    "pretty",
]

_LEAD = " \r\n"
_TRAIL = "\r\n"


@dataclass(frozen=True, slots=True)
class XmlInput:
    """What an XML link sent, read: the document and its translation or its ER.

    ``document`` is the body as sent (what the journal keeps and an ``ER``
    quotes); exactly one of ``text`` (the input text of PROTOCOL part 2) and
    ``error`` is set. ``header`` is the header as read (its ``text`` empty),
    when the document got that far: the key, origin and control field an
    ``ER`` for a refused document can use, as for a text message whose
    header parsed.
    """

    document: str
    text: str | None
    error: MessageError | None
    header: Message | None = None


def is_xml(body: bytes) -> bool:
    """Whether a message body is an XML document rather than legacy text.

    Legacy text starts with its key (uppercase letters); a document starts
    with ``<``, after an optional byte-order mark and blanks.
    """
    return body.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")[:1] == b"<"


# --------------------------------------------------------------------------
# The codec.
# --------------------------------------------------------------------------


def _body(text: str) -> str:
    return text.lstrip(_LEAD).rstrip(_TRAIL)


@dataclass(frozen=True, slots=True)
class _KeyForm:
    """How one key's message looks in XML: its data element and text holder."""

    schema: KeySchema
    data: str                  # Clark name of the data element
    holder: str | None         # Clark name of the text element, None for fields
    data_name: str             # the same, prefixed
    holder_name: str | None


_OPEN: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<n2:NLETS '
    + " ".join(f'xmlns:{p}="{u}"' for p, u in xm.NSMAP.items())
    + f' n2:version="{xm.VERSION}"><n2:NLETSMessageHeader>'
)
_KEY_NAME, _ORIGIN_NAME, _DEST_NAME, _CONTROL_NAME = (xm.prefixed(n) for n in xm.HEADER_INPUT)
_OUTPUT_NAMES: Final = tuple(xm.prefixed(n) for n in xm.HEADER_OUTPUT)


class XmlCodec:
    """Translates between XML.md's documents and legacy text, for one set of schemas.

    Build it once (it compiles the XSD); its methods are pure. Use one codec
    per thread: it reuses one parser and one validator. ``max_bytes`` is
    the largest document accepted (the switch passes its
    ``limits.max_message``); None accepts any size.
    """

    def __init__(self, schemas: SchemaSet, max_bytes: int | None = MAX_XML) -> None:
        self.schemas = schemas
        self.max_bytes = max_bytes
        #: The XSD documents (file name -> text), as :mod:`xml_xsd` wrote them.
        self.xsd_documents = xsd_documents(schemas)
        self._xsd = compile_xsd(self.xsd_documents)
        self._parser = xml_parser()
        self._forms: dict[str, _KeyForm] = {}
        for key, ks in schemas.items():
            data = xm.data_element(key, ks.kind)
            holder = xm.text_element(key, ks.kind, ks.free_text)
            self._forms[key] = _KeyForm(ks, data, holder, xm.prefixed(data),
                                        xm.prefixed(holder) if holder else None)

    def _form(self, key: str, control: str | None) -> _KeyForm:
        form = self._forms.get(key)
        if form is None:
            raise MessageError(ErCode.HEADER, f"UNKNOWN MESSAGE KEY {key}", control=control)
        return form

    def _root(self, body: bytes) -> etree._Element:
        return parse_raw(check_body(body, self.max_bytes), self._parser)

    # -- XML -> text ------------------------------------------------------

    def read_input(self, body: bytes) -> XmlInput:
        """Read an ``M`` body from an XML link (the switch's entry point).

        Raises :class:`~nlets_switch.errors.LinkError` for what PROTOCOL
        answers with ``N``: a body over ``max_bytes`` (``.03.``), a byte or a
        character reference outside PROTOCOL's set (``.02.``). Everything
        else is an :class:`XmlInput`: its ``text`` goes on through
        ``parse_message`` and the router like a text message; its ``error``
        is answered with an ``ER`` quoting ``document``.
        """
        raw = check_body(body, self.max_bytes)
        document = raw.decode("ascii")
        header: Header | None = None
        try:
            root = parse_raw(raw, self._parser)
            header = read_header(root)
            text = self._input_text(root, header)
        except MessageError as err:
            return XmlInput(document, None, err, header.message if header else None)
        return XmlInput(document, text, None, header.message)

    def input_to_text(self, body: bytes) -> str:
        """The input text (PROTOCOL part 2) of an input document; raises its error."""
        return self._input_text(self._root(body))

    def read_output(self, body: bytes) -> OutputMessage:
        """A delivered document (with the switch's header elements) as an output message."""
        return self._output(self._root(body))

    def to_text(self, body: bytes) -> str:
        """Legacy text of any document: the output layout (part 3) for a delivery,
        the input layout (part 2) otherwise."""
        root = self._root(body)
        header = read_header(root)
        if header.output:
            return self._output(root, header).format()
        return self._input_text(root, header)

    def _output(self, root: etree._Element, header: Header | None = None) -> OutputMessage:
        header = header or read_header(root)
        msg, out = header.message, header.output
        missing = [xm.prefixed(n) for n in xm.HEADER_OUTPUT if n not in out]
        if missing:
            raise MessageError.naming(ErCode.HEADER, "XML: MISSING", missing)
        if len(msg.destinations) != 1:
            raise MessageError(ErCode.HEADER, "XML: A DELIVERY HAS ONE nh2:DestinationORIID")
        body_text = self._check_and_read(root, msg)
        r_date, r_time, r_no, s_date, s_time, s_no = (out[n] for n in xm.HEADER_OUTPUT)
        return OutputMessage(msg.key, msg.origin, f"{r_time} {r_date}", int(r_no),
                             f"{s_time} {s_date}", int(s_no), msg.destinations[0],
                             msg.control, body_text)

    def _input_text(self, root: etree._Element, header: Header | None = None) -> str:
        header = header or read_header(root)
        msg = header.message
        if header.output:
            name = xm.prefixed(next(iter(header.output)))
            raise MessageError(ErCode.HEADER, f"XML: {name} IS SET BY THE SWITCH",
                               control=msg.control)
        body = self._check_and_read(root, msg)
        return Message(msg.key, msg.origin, msg.destinations, msg.control,
                       f"\n{body}" if body else "").format()

    def _check_and_read(self, root: etree._Element, msg: Message) -> str:
        """Validate against the XSD and return the legacy body of the data element."""
        form = self._form(msg.key, msg.control)
        if not self._xsd.validate(root):
            raise xsd_error(form.schema, root, self._xsd.error_log[0], msg.control)
        data = root[1]
        if data.tag != form.data:
            raise MessageError(ErCode.FORMAT, f"{xm.prefixed(str(data.tag))}: {msg.key} TAKES "
                               f"{form.data_name}", control=msg.control)
        if form.holder is not None:
            if len(data) != 1 or data[0].tag != form.holder:
                raise MessageError(ErCode.FORMAT, f"{form.data_name}: {msg.key} TAKES ONE "
                                   f"{form.holder_name}", control=msg.control)
            return _body(data[0].text or "")
        if any(child.tag == xm.DESCRIPTION for child in data):
            raise MessageError(ErCode.FORMAT, f"{form.data_name}: {msg.key} TAKES FIELDS, NOT "
                               f"{xm.prefixed(xm.DESCRIPTION)}", control=msg.control)
        try:
            fields = xm.xml_to_fields(data)
        except MessageError as err:
            err.control = msg.control
            raise
        return ".".join(f"{tag}/{value}" for tag, value in fields)

    # -- text -> XML ------------------------------------------------------

    def input_to_xml(self, text: str, *, pretty: bool = False) -> bytes:
        """The document of an input message (PROTOCOL part 2); raises its MessageError.

        Only the header and the field grammar are checked: an invalid value
        (``DOB/19501301``) is translated as it is, so that the switch gives
        the XML twin the ER it gives the text.
        """
        msg = parse_message(text)
        return self._document(msg.key, msg.origin, msg.destinations, msg.control, (),
                              msg.body, pretty)

    def output_to_xml(self, out: OutputMessage, *, pretty: bool = False) -> bytes:
        """The document the switch delivers to an XML link (XML.md, PROTOCOL part 3).

        ``out.received`` and ``out.sent`` are ``HH:MM MM/DD/YYYY`` as the
        switch stamps them; the receiver is the one ``nh2:DestinationORIID``.
        """
        r_time, _, r_date = out.received.partition(" ")
        s_time, _, s_date = out.sent.partition(" ")
        extra = (r_date, r_time, f"{out.input_no:05d}", s_date, s_time, f"{out.output_no:05d}")
        return self._document(out.key, out.sender, (out.receiver,), out.control, extra,
                              _body(out.text), pretty)

    def text_to_xml(self, text: str, *, pretty: bool = False) -> bytes:
        """The document of a legacy message in either layout (output if it parses as one)."""
        try:
            out = parse_output(text)
        except MessageError:
            return self.input_to_xml(text, pretty=pretty)
        return self.output_to_xml(out, pretty=pretty)

    def _document(self, key: str, origin: str, destinations: Sequence[str],
                  control: str | None, output: Sequence[str], body: str,
                  pretty: bool) -> bytes:
        # Written as text, not built as a tree: this runs for every delivery
        # to an XML link. Every value is escaped; tests validate the result.
        form = self._form(key, control)
        esc = xm.escape
        parts = [_OPEN, f"<{_KEY_NAME}>{esc(key)}</{_KEY_NAME}>",
                 f"<{_ORIGIN_NAME}>{esc(origin)}</{_ORIGIN_NAME}>"]
        parts += [f"<{_DEST_NAME}>{esc(d)}</{_DEST_NAME}>" for d in destinations]
        if control is not None:
            parts.append(f"<{_CONTROL_NAME}>{esc(control)}</{_CONTROL_NAME}>")
        parts += [f"<{n}>{esc(v)}</{n}>" for n, v in zip(_OUTPUT_NAMES, output, strict=False)]
        parts.append(f"</n2:NLETSMessageHeader><{form.data_name}>")
        if form.holder_name is not None:
            parts.append(f"<{form.holder_name}>{esc(body)}</{form.holder_name}>")
        else:
            try:
                fields = parse_fields(body)
            except MessageError as err:
                err.control = control
                raise
            parts.append(xm.write_fields(fields))
        parts.append(f"</{form.data_name}></n2:NLETS>")
        doc = "".join(parts).encode("ascii", "xmlcharrefreplace")
        if pretty:
            root = etree.fromstring(doc, self._parser)
            doc = _OPEN[:_OPEN.index("\n") + 1].encode() + etree.tostring(root, pretty_print=True)
        return doc
