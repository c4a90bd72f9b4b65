"""XML links in the sans-IO engine (core/formats.py): what a receiver gets in its
format, the journal's document read back, reload changing a link's format, the
size rule, and local services seeing text (no sockets, no sleeps)."""

from __future__ import annotations

from typing import Any

from nlets_switch.config import config_from_dict
from nlets_switch.core.events import Rejected, Routed
from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import OutputMessage, parse_output
from nlets_switch.wire.schema import load_schemas
from nlets_switch.wire.xml import XmlCodec
from tests.engine_world import World

CODEC = XmlCodec(load_schemas(), max_bytes=None)


def links(xml: bool = True) -> dict[str, Any]:
    return {"links": [
        {"ori": "AZNLETS20", "role": "control_terminal"},
        {"ori": "NYNLETS00", "role": "control_terminal"},
        {"ori": "AZ0070500", "format": "xml" if xml else "text"},
        {"ori": "VTICE0900", "role": "service"},
    ]}


def xml_got(peer: Any) -> list[OutputMessage]:
    out = []
    for f in peer.messages():
        assert f.body.startswith(b"<?xml"), f.body[:80]
        out.append(CODEC.read_output(f.body))
    return out


def test_a_document_in_is_text_to_a_text_link_and_the_journal_keeps_the_document() -> None:
    w = World(links())
    ag, ny = w.sign_on("AZ0070500"), w.sign_on("NYNLETS00")
    w.ack_all(ag), w.ack_all(ny)
    doc = CODEC.input_to_xml("AM.AZ0070500.NYNLETS00.*C1.TXT\nHELLO")
    w.send(ag, fr.MESSAGE, doc)
    assert [e.outcome for e in w.of(Routed)] == ["routed"]
    [got] = [parse_output(f.body.decode()) for f in ny.messages()]
    assert (got.key, got.sender, got.control, got.text) == ("AM", "AZ0070500", "C1", "HELLO")
    [row] = [m for m in w.store.messages.values() if m.key == "AM"]
    assert (row.text, row.body_start, row.control) == (doc.decode(), 0, "C1")


def test_held_for_a_text_link_the_document_is_read_back_as_text() -> None:
    w = World(links())
    ag = w.sign_on("AZ0070500")
    w.ack_all(ag)
    w.send(ag, fr.MESSAGE, CODEC.input_to_xml("AM.AZ0070500.NYNLETS00.*H1.TXT\nLATER\nTWO"))
    [sm] = xml_got(ag)
    assert (sm.key, sm.control) == ("SM", "H1") and sm.text.startswith(".02.")
    ny = w.sign_on("NYNLETS00")
    got = [parse_output(f.body.decode()) for f in ny.messages()]
    assert [(g.key, g.control, g.text) for g in got] == [("AM", "H1", "LATER\nTWO")]


def test_a_reload_changes_the_format_of_a_live_link() -> None:
    w = World(links(xml=False))
    ag, ny = w.sign_on("AZ0070500"), w.sign_on("NYNLETS00")
    w.ack_all(ag), w.ack_all(ny)
    w.message(ny, "AM.NYNLETS00.AZ0070500.TXT AS TEXT")
    assert parse_output(ag.messages()[0].body.decode()).text == "AS TEXT"
    w.run(w.engine.reload(config_from_dict(links()), w.now))
    w.message(ny, "AM.NYNLETS00.AZ0070500.TXT AS XML")
    assert [m.text for m in xml_got(ag)] == ["AS XML"]
    # And what it sends is read as a document from now on.
    w.send(ag, fr.MESSAGE, CODEC.input_to_xml("AM.AZ0070500.NYNLETS00.TXT\nBACK"))
    assert [parse_output(f.body.decode()).text for f in ny.messages()] == ["BACK"]


def test_too_long_as_a_document_is_refused_at_input_and_nothing_is_delivered() -> None:
    w = World(links())
    ag, ny = w.sign_on("AZ0070500"), w.sign_on("NYNLETS00")
    w.ack_all(ag), w.ack_all(ny)
    w.message(ny, "DR.NYNLETS00.AZ0070500.*BIG.TXT\n" + "&" * 13_000)
    [rej] = w.of(Rejected)
    assert rej.code == 22
    [er] = [parse_output(f.body.decode()) for f in ny.messages()]
    assert er.text.startswith(".22. INVALID MESSAGE FORMAT\nTOO LONG AS XML FOR AZ0070500: ")
    assert ag.messages() == []
    # The same to a text receiver fits.
    w.message(ny, "AM.NYNLETS00.AZNLETS20.TXT\n" + "&" * 13_000)
    assert [e.outcome for e in w.of(Routed)] == ["held"]


def test_a_local_service_gets_the_text_of_a_document() -> None:
    w = World(links())
    w.attach_local("VTICE0900")
    ag = w.sign_on("AZ0070500")
    w.ack_all(ag)
    w.send(ag, fr.MESSAGE, CODEC.input_to_xml("AM.AZ0070500.VTICE0900.*L1.TXT\nHI LESC"))
    [d] = w.local
    assert d.delivery.body == "HI LESC"
    assert w.engine.render(d.delivery).startswith("AM.AZ0070500\n")
