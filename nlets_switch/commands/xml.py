"""``nlets-switch xml``: translate and check XML messages (XML.md) offline.

The same code the switch runs on an XML link (:mod:`nlets_switch.wire.xml`),
against the same XSD, so an integrator can try a document before sending it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nlets_switch.commands._common import SubParsers
from nlets_switch.errors import ConfigError, ErCode, LinkError, MessageError
from nlets_switch.wire.message import address_kind, decode_body, parse_message, parse_output
from nlets_switch.wire.schema import SchemaSet, load_schemas
from nlets_switch.wire.xml import MAX_XML, XmlCodec

EPILOG = """examples:
  nlets-switch xml to-xml dq.txt > dq.xml      legacy text -> XML (pretty-printed)
  nlets-switch xml to-text dq.xml              XML -> legacy text
  nlets-switch xml validate dq.xml             check it as the switch would
  nlets-switch xml xsd ./xsd                   write the XSD files
  printf 'DQ.AZNLETS20.TX.TXT\\nOLN/D11111111' | nlets-switch xml to-xml -

FILE '-' reads standard input. A refused document prints the ER (or the
link-level N) the switch would answer with.

exit status: 0 done (valid), 1 refused (the ER or N is printed), 2 usage error or
unreadable file or schema directory.

docs/xml.md describes the format and the field mapping.
"""

# Only the switch sends these (PROTOCOL part 4).
_SWITCH_KEYS = frozenset({"ER", "SM"})
_SWITCH_ORI = "NL0000000"


def register(sub: SubParsers) -> None:
    """Add ``xml`` and its sub-commands."""
    p = sub.add_parser(
        "xml", help="translate XML messages to and from legacy text, check them (XML.md)",
        description="Translate Nlets XML (NIEM, version 4.00) messages to legacy text and "
        "back, and check documents as the switch does on an XML link.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    xsub = p.add_subparsers(dest="xml_command", metavar="SUBCOMMAND", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--schemas", metavar="DIR", action="append", default=[],
                       help="an extra schema directory (as an adapter's); may be repeated")
        q.add_argument("--max-bytes", type=int, default=MAX_XML, metavar="N",
                       help=f"largest document accepted (default {MAX_XML}, the largest "
                       "M body of PROTOCOL part 1)")

    q = xsub.add_parser(
        "to-text", help="translate an XML document to legacy text",
        description="Print the legacy text of an XML document: the input layout of "
        "PROTOCOL part 2, or the output layout of part 3 when the document carries the "
        "switch's delivery header (nh2:MessageReceiveDate ...). The document is checked "
        "against the XSD first.")
    q.add_argument("file", metavar="FILE", help="the XML document ('-' for standard input)")
    common(q)
    q.set_defaults(func=to_text)

    q = xsub.add_parser(
        "to-xml", help="translate a legacy text message to XML",
        description="Print the XML document of a legacy text message, in the input layout "
        "(PROTOCOL part 2) or the output layout (part 3). Field values are not checked, "
        "so an invalid message translates too and the switch answers its XML with the "
        "same ER.")
    q.add_argument("file", metavar="FILE", help="the text message ('-' for standard input)")
    q.add_argument("--compact", action="store_true",
                   help="one line, as the switch sends it (default: indented)")
    common(q)
    q.set_defaults(func=to_xml)

    q = xsub.add_parser(
        "validate", help="check an XML document as the switch would",
        description="Check a document as the switch checks one from an XML link: size and "
        "characters, no DTD, well-formed, valid against the XSD, then the message key's "
        "rules (destination limits and fields, schemas/*.yaml). Whether the origin may "
        "use a link and whether the destinations are registered depend on the switch's "
        "directory and are not checked here. A delivery (a document with the switch's "
        "nh2:MessageReceiveDate ...) is checked against the XSD and its key's fields.")
    q.add_argument("file", metavar="FILE", help="the XML document ('-' for standard input)")
    common(q)
    q.set_defaults(func=validate)

    q = xsub.add_parser(
        "xsd", help="write the XSD files (for the bundled or given schemas)",
        description="Write the XSD of XML.md's subset (nlets.xsd and the three schema "
        "documents it imports) into DIR: the files shipped under schemas/xml/, or, with "
        "--schemas, the XSD for your extra keys and tags too.")
    q.add_argument("dir", metavar="DIR", help="directory to write into (created if needed)")
    common(q)
    q.set_defaults(func=write_xsd)


def _codec(args: argparse.Namespace) -> XmlCodec | None:
    try:
        schemas = load_schemas([Path(d) for d in args.schemas])
    except ConfigError as e:
        print(f"nlets-switch xml: {e}", file=sys.stderr)
        return None
    return XmlCodec(schemas, max_bytes=args.max_bytes)


def _read(path: str) -> bytes | None:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        return Path(path).read_bytes()
    except OSError as e:
        print(f"nlets-switch xml: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return None


def _refused(path: str, err: LinkError | MessageError) -> int:
    name = "standard input" if path == "-" else path
    if isinstance(err, LinkError):
        print(f"{name}: refused at link level: N {err.wire}", file=sys.stderr)
    else:
        print(f"{name}: refused: ER {err.code.wire}", file=sys.stderr)
        if err.detail:
            print(f"  {err.detail}", file=sys.stderr)
    return 1


def to_text(args: argparse.Namespace) -> int:
    """``xml to-text``: print the legacy text of a document."""
    codec, body = _codec(args), _read(args.file)
    if codec is None or body is None:
        return 2
    try:
        text = codec.to_text(body)
    except (LinkError, MessageError) as e:
        return _refused(args.file, e)
    print(text)
    return 0


def to_xml(args: argparse.Namespace) -> int:
    """``xml to-xml``: print the document of a legacy text message."""
    codec, body = _codec(args), _read(args.file)
    if codec is None or body is None:
        return 2
    try:
        text = decode_body(body, args.max_bytes).rstrip("\r\n")
        doc = codec.text_to_xml(text, pretty=not args.compact)
    except (LinkError, MessageError) as e:
        return _refused(args.file, e)
    sys.stdout.write(doc.decode("ascii").rstrip("\n") + "\n")
    return 0


def check_offline(text: str, schemas: SchemaSet) -> tuple[tuple[str, str], ...]:
    """The checks of an input text that need no directory; returns its fields.

    The key (``.01.``), who may send it, the number (``.01.``) and kinds
    (``.02.``) of destinations, then the key's fields: what the router
    checks, less the directory's part (origin allowed on the link,
    destinations registered).
    """
    msg = parse_message(text)
    schema = schemas.get(msg.key)
    if schema is None:
        raise MessageError(ErCode.HEADER, f"UNKNOWN MESSAGE KEY {msg.key}", msg.control)
    if msg.key in _SWITCH_KEYS and msg.origin != _SWITCH_ORI:
        raise MessageError(ErCode.HEADER, f"ONLY {_SWITCH_ORI} SENDS {msg.key}", msg.control)
    rule = schema.destinations
    if not rule.min <= len(msg.destinations) <= rule.max:
        want = f"{rule.min}" if rule.min == rule.max else f"{rule.min} TO {rule.max}"
        raise MessageError(ErCode.HEADER, f"{msg.key} TAKES {want} DESTINATION(S)",
                           msg.control)
    wrong = [d for d in msg.destinations if address_kind(d) not in rule.kinds]
    if wrong:
        err = MessageError.naming(ErCode.KEY_NOT_ALLOWED, f"{msg.key} NOT ALLOWED TO", wrong)
        err.control = msg.control
        raise err
    try:
        return schema.validate(msg.body)
    except MessageError as err:
        err.control = msg.control
        raise


def validate(args: argparse.Namespace) -> int:
    """``xml validate``: check a document; 0 when the switch would take it."""
    codec, body = _codec(args), _read(args.file)
    if codec is None or body is None:
        return 2
    name = "standard input" if args.file == "-" else args.file
    try:
        text = codec.to_text(body)
        try:
            out = parse_output(text)
        except MessageError:
            out = None
        if out is not None:
            # A delivery (what the switch sent): the XSD and the key's text rules.
            fields = codec.schemas[out.key].validate(out.text.lstrip(" \r\n"))
            sender, to, kind = out.sender, out.receiver, "delivery of "
        else:
            fields = check_offline(text, codec.schemas)
            msg = parse_message(text)
            sender, to, kind = msg.origin, ",".join(msg.destinations), ""
    except (LinkError, MessageError) as e:
        return _refused(args.file, e)
    key = text.split(".", 1)[0]
    what = (f"{len(fields)} field(s): {', '.join(t for t, _ in fields)}" if fields
            else "free text")
    print(f"{name}: valid {kind}{key} from {sender} to {to} ({what})")
    return 0


def write_xsd(args: argparse.Namespace) -> int:
    """``xml xsd``: write the XSD files into a directory."""
    codec = _codec(args)
    if codec is None:
        return 2
    out = Path(args.dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in codec.xsd_documents.items():
            (out / name).write_text(text, encoding="utf-8")
    except OSError as e:
        print(f"nlets-switch xml: cannot write {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    for name in codec.xsd_documents:
        print(out / name)
    return 0
