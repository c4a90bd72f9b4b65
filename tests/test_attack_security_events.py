"""Security events: audited and published on MQTT, never text or credentials (issue 11, hole 9).

Before: framing errors, rate limiting and lock-outs were neither audited
nor published. Now each is a :class:`~nlets_switch.core.events.Security`
event: kept by the audit trail and published on ``nlets/<switch>/security/<type>``;
the ones a flood repeats are kept once a second per peer, with a count.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from nlets_switch.server.credentials import hash_credential
from nlets_switch.wire import frames as fr
from tests.conftest_security import eventually, read_to_close
from tests.test_mqtt import mqtt_raw

if TYPE_CHECKING:
    from tests.conftest_monitoring import Broker, MonitoredFactory

pytest_plugins = ["tests.conftest_monitoring"]
from tests.test_mqtt import watch as watch  # noqa: E402 - the fixture, shared


async def test_security_events_are_audited_and_published(
        monitored: MonitoredFactory, broker: Broker, watch: Any) -> None:
    raw = {**mqtt_raw(broker.port),
           "links": [{"ori": "AZNLETS20", "role": "control_terminal",
                      "credential": hash_credential("the-secret", n=2**10)},
                     {"ori": "NYNLETS00", "role": "control_terminal"}],
           "security": {"lockout_after": 2},
           "limits": {"rate_per_ori": 1, "rate_burst": 1}}
    sw, mon = await monitored(raw)
    assert mon.mqtt is not None
    async with asyncio.timeout(5):
        await mon.mqtt.connected.wait()
    w = await watch(broker.port)
    audited: list[dict[str, Any]] = []
    sw.observers.append(lambda e: audited.append(e.to_dict()))
    host, port = sw.addresses[0]

    async def link(body: bytes, then: bytes = b"") -> list[fr.Frame]:
        r, wr = await asyncio.open_connection(host, port)
        wr.write(fr.encode_frame(fr.SIGN_ON, 1, body) + then)
        got = await read_to_close(r, 3.0)
        wr.close()
        return got

    # A bad frame after sign-on; a rate limit; two bad credentials (a lock-out).
    await link(b"NYNLETS00", b"\x00\x00\x00\x02XX")
    flood = b"".join(fr.encode_frame(fr.MESSAGE, i, b"AM.NYNLETS00.NYNLETS00.TXT SECRET TEXT")
                     for i in range(2, 6))
    _, wr = await asyncio.open_connection(host, port)
    wr.write(fr.encode_frame(fr.SIGN_ON, 1, b"NYNLETS00") + flood)
    await asyncio.sleep(0.5)
    wr.close()
    for _ in range(2):
        await link(b"AZNLETS20 wrong-guess")
    sw.unlock("AZNLETS20", by="test")
    base = "nlets/demo/security/"
    for kind in ("bad_frame", "rate_limited", "lockout", "unlock", "sign_on"):
        got = await w.wait_for(lambda t, p, k=kind: t == base + k)
        assert got["event"] == "audit" and got["security"] is True
    kinds = {e["type"] for e in audited if e.get("security")}
    assert {"bad_frame", "rate_limited", "lockout", "unlock", "sign_on"} <= kinds
    # The peer is named; never message text or a credential.
    bad = next(p for t, p in w.seen if t == base + "bad_frame")
    assert bad["peer"].startswith("127.0.0.1:")
    text = json.dumps([p for _, p in w.seen]) + json.dumps(audited)
    assert "SECRET" not in text and "wrong-guess" not in text and "the-secret" not in text


async def test_a_refused_tls_handshake_is_audited_with_the_peers_address(
        make_switch: Any, tmp_path: Any) -> None:
    import ssl

    from nlets_switch.server import pki
    from tests.test_tls_switch import tls_world

    d = tmp_path / "pki"
    pki.init_ca(d)
    sw = await make_switch(tls_world(d))
    events: list[dict[str, Any]] = []
    sw.observers.append(lambda e: events.append(e.to_dict()))
    host, port = sw.addresses[0]
    ctx = pki.client_ssl_context(pki.pki_paths(d).ca)  # no client certificate
    try:
        r, wr = await asyncio.open_connection(host, port, ssl=ctx, server_hostname="localhost")
        wr.write(fr.encode_frame(fr.SIGN_ON, 1, b"AZNLETS20"))
        await asyncio.wait_for(r.read(100), 5)
        wr.close()
    except (ssl.SSLError, ConnectionError):
        pass
    await eventually(lambda: any(e.get("tls") for e in events), 5)
    [ev] = [e for e in events if e.get("tls")]
    assert (ev["type"], ev["outcome"], ev["security"]) == ("sign_on", "failure", True)
    assert ev["peer"].startswith("127.0.0.1:") and ev["reason"].startswith("tls: ")
