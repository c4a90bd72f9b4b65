"""XML links in the benchmark (``bench_switch.py --format xml``, docs/xml.md).

The inquirers' ORIs get ``format: xml`` in a copy of the configuration:
they send each ``DQ`` as its XML document and get each ``DR`` back as a
document, while the answerers stay text terminals. The switch then reads,
validates and translates every inquiry, and writes every answer as XML:
the cost of an XML link, beside the text run's.

Kept apart from the driver so that the driver pays only a byte test per
message: documents are made once per (inquirer, state) by the switch's own
codec, and only the control field changes between two inquiries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

from nlets_switch.wire.schema import load_schemas
from nlets_switch.wire.xml import XmlCodec

#: A control field that occurs nowhere else in a document: replaced per inquiry.
_MARK: Final = "QQQQQQQQQQ"
_KEY: Final = b"<nh2:MessageKeyCodeText>"
_ORIGIN: Final = b"<nh2:OriginatingORIID>"
_CONTROL: Final = b"<nh2:DocumentControlFieldText>"


def xml_config(config: Path, inquirers: list[str], out: Path) -> Path:
    """A copy of ``config`` (written to ``out``) where ``inquirers`` speak XML."""
    raw = yaml.safe_load(config.read_text())
    chosen = set(inquirers)
    for link in raw["links"]:
        if link["ori"] in chosen:
            link["format"] = "xml"
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


class Inquiries:
    """The DQ documents of one inquirer, one per answering state."""

    def __init__(self, ori: str, states: list[str], text: str) -> None:
        codec = XmlCodec(load_schemas(), max_bytes=None)
        self.parts: dict[bytes, tuple[bytes, bytes]] = {}
        for st in states:
            doc = codec.input_to_xml(f"DQ.{ori}.{st}.*{_MARK}.TXT\n{text}")
            head, _, tail = doc.partition(_MARK.encode())
            self.parts[st.encode()] = (head, tail)

    def document(self, state: bytes, control: bytes) -> bytes:
        """The DQ to ``state`` with ``control``."""
        head, tail = self.parts[state]
        return head + control + tail


def _element(body: bytes, start: bytes) -> bytes | None:
    i = body.find(start)
    if i < 0:
        return None
    i += len(start)
    return body[i:body.index(b"<", i)]


def header(body: bytes) -> tuple[bytes, bytes, bytes | None]:
    """Key, sender and control of a delivered document (what the driver needs)."""
    return (_element(body, _KEY) or b"", _element(body, _ORIGIN) or b"",
            _element(body, _CONTROL))


def report(text: dict[str, Any], xml: dict[str, Any], cost: float | None) -> str:
    """The XML run beside the text run, for the readable table."""

    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    rows = [
        ("messages routed per s", f(text["msgs_per_s"], ",.0f"), f(xml["msgs_per_s"], ",.0f")),
        ("latency p50 (ms, DQ->DR)", f(text["p50_ms"], ".2f"), f(xml["p50_ms"], ".2f")),
        ("latency p99 (ms, DQ->DR)", f(text["p99_ms"], ".2f"), f(xml["p99_ms"], ".2f")),
        ("peak RSS (MiB)", f(text["peak_rss_mb"], ".1f"), f(xml["peak_rss_mb"], ".1f")),
        ("server CPU (%)", f(text["server_cpu_percent"], ".0f"),
         f(xml["server_cpu_percent"], ".0f")),
        ("errors / naks / unanswered", f"{text['errors']}/{text['naks']}/{text['unanswered']}",
         f"{xml['errors']}/{xml['naks']}/{xml['unanswered']}"),
    ]
    lines = ["", "XML inquirers (format: xml), text answerers:",
             f"{'':28}{'text':>14}{'xml':>14}"]
    lines += [f"{a:28}{b:>14}{c:>14}" for a, b, c in rows]
    lines.append(f"XML cost per message: {f(cost, '.2f')}x text (goal: under 2x)")
    return "\n".join(lines)
