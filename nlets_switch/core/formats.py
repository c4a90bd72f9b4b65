"""Link formats: XML links (XML.md) beside legacy text ones, for the engine.

The engine speaks legacy text inside: the router, the schemas and every
service see the text of PROTOCOL parts 2 and 3. An ORI whose directory entry
says ``format: xml`` sends and receives XML documents instead, and this
module is the translation at the edges:

* in: :meth:`Formats.read` turns an ``M`` body of an XML link into an
  :class:`~nlets_switch.wire.xml.XmlInput` (its text, or the ER it gets);
* out: :meth:`Formats.render` writes a delivery as the receiver's link
  expects it (text, or a document with the output header in ``nh2:``);
* size: :meth:`Formats.check_plan` refuses at input a message whose
  document would not fit the receiver's frame limit (docs/xml.md);
* read-back: :meth:`Formats.owed_text` turns a journaled document back into
  the legacy body a delivery carries.

Pure like the rest of the core: the codec (:mod:`nlets_switch.wire.xml`)
does no I/O.
"""

from __future__ import annotations

from typing import Final

from nlets_switch.core.delivery import Delivery
from nlets_switch.core.directory import Directory
from nlets_switch.core.router import Plan
from nlets_switch.errors import ErCode, LinkError, MessageError
from nlets_switch.store.records import OwedRow
from nlets_switch.wire.message import Message, OutputMessage, format_output, parse_message
from nlets_switch.wire.schema import SchemaSet
from nlets_switch.wire.xml import XmlCodec, XmlInput

#: The output header's values have fixed widths (part 3), so one rendering
#: with any stamp has the size of every rendering of the same delivery.
_STAMP: Final = "00:00 01/01/2000"
#: A body this many times smaller than the limit fits as a document whatever
#: it holds: escaping grows a character at most 5 times (``&amp;``, ``&#13;``)
#: and a field at most about 16 (a ``TAG/v`` that opens its own element).
_GROWTH: Final = 16
_ENVELOPE: Final = 2048


class Formats:
    """The XML codec of one engine and the rules that use it."""

    def __init__(self, schemas: SchemaSet, directory: Directory, max_message: int) -> None:
        self.codec = XmlCodec(schemas, max_message)
        self.directory = directory
        self.max_message = max_message

    def reconfigure(self, directory: Directory, max_message: int) -> None:
        """A reload: the new directory and size limit."""
        self.directory = directory
        self.max_message = self.codec.max_bytes = max_message

    def is_xml(self, ori: str) -> bool:
        """Whether the link of ``ori`` speaks XML."""
        e = self.directory.entry(ori)
        return e is not None and e.xml

    def read(self, body: bytes) -> XmlInput:
        """An ``M`` body of an XML link; raises LinkError for what deserves ``N``."""
        return self.codec.read_input(body)

    def render(self, d: Delivery, received: str, sent: str, xml: bool) -> bytes:
        """A delivery as its receiver's link takes it (PROTOCOL part 3, XML.md)."""
        if xml:
            try:
                return self.codec.output_to_xml(OutputMessage(
                    d.key, d.sender, received, d.input_no, sent, d.output_no, d.receiver,
                    d.control, d.body))
            except MessageError:
                # Only a message that never passed the key's checks can fail
                # here (it was journaled before the receiver became XML);
                # text is better than nothing, and the receiver can tell.
                pass
        return format_output(d.key, d.sender, received, d.input_no, sent, d.output_no,
                             d.receiver, d.control, d.body).encode("ascii")

    def check_plan(self, msg: Message, plan: Plan) -> None:
        """Refuse (``ER .22.``) a message too long as a document for an XML receiver.

        The rule of docs/xml.md: what the switch accepts it can deliver, so
        a message whose document would pass ``limits.max_message`` for one
        of its XML receivers is refused at input, whoever sent it.
        """
        body = msg.body
        if len(body) * _GROWTH + _ENVELOPE <= self.max_message:
            return
        for r in plan.routes:
            t = r.target
            if not self.is_xml(t.link):
                continue
            try:
                size = len(self.codec.output_to_xml(OutputMessage(
                    msg.key, msg.origin, _STAMP, 1, _STAMP, 1, t.receiver, msg.control, body)))
            except MessageError:
                continue
            if size > self.max_message:
                raise MessageError(
                    ErCode.FORMAT, f"TOO LONG AS XML FOR {t.receiver}: {size} BYTES, "
                    f"AT MOST {self.max_message}", control=msg.control)

    def owed_text(self, row: OwedRow) -> OwedRow:
        """A read-back row with the legacy body of a journaled XML document.

        The journal keeps what an XML link sent (the whole document, read
        back as the body); anything else comes back as it is. (A text message
        whose whole body is a valid document of its own key and origin would
        be read as that document too: no interface sends that.)
        """
        body = row.body
        # Cheap on every row: the journal keeps a document without its BOM.
        if not body.lstrip(" \t\r\n").startswith("<"):
            return row
        try:
            got = self.codec.read_input(body.encode("ascii"))
        except (LinkError, UnicodeError):
            return row
        if got.text is None:
            return row
        try:
            msg = parse_message(got.text)
        except MessageError:
            return row
        if msg.key != row.key or msg.origin != row.origin:
            return row
        return row._replace(body=msg.body)
