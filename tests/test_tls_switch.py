"""The switch with a TLS listener (PROTOCOL part 7), certificates made by nlets_switch.server.pki.

The client certificate's ORI (subject CN or SAN URI) must be the ORI that
signs on; no certificate, another ORI's certificate or a revoked one is
refused - a revocation applies to new connections without restarting the
switch. Checked with the project's Client and with the real
``openssl s_client`` speaking the binary frames.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
from pathlib import Path
from typing import Any

import pytest

from nlets_switch.server import pki
from nlets_switch.server.switch import Switch
from nlets_switch.tools.client import Client, SignOnError
from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from tests.conftest import SwitchFactory
from tests.conftest_security import eventually

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
needs_openssl = pytest.mark.skipif(not os.path.exists(OPENSSL), reason="openssl not installed")
REJECTED = ".01. SIGN-ON REJECTED"


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    """A CA, the switch's certificate, and client certificates for AZ and NY."""
    d = tmp_path / "pki"
    pki.init_ca(d)
    for ori in ("AZNLETS20", "NYNLETS00"):
        pki.issue_client(d, ori)
    return d


def tls_world(d: Path) -> dict[str, Any]:
    """The demo directory behind one TLS listener that requires client certificates."""
    p = pki.pki_paths(d)
    return {"listeners": [{"address": "127.0.0.1:0", "tls": {
        "ca": str(p.ca), "cert": str(p.cert), "key": str(p.key), "crl": str(p.crl),
        "require_client_cert": True}}]}


def ctx_for(d: Path, ori: str | None) -> ssl.SSLContext:
    p = pki.pki_paths(d)
    if ori is None:
        return pki.client_ssl_context(p.ca)
    cert, key = p.client(ori)
    return pki.client_ssl_context(p.ca, cert, key)


async def tls_connect(sw: Switch, d: Path, cert_ori: str | None, sign_on_as: str) -> Client:
    host, port = sw.addresses[0]
    return await Client.connect(host, port, sign_on_as, ssl_context=ctx_for(d, cert_ori))


def audits(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["subject"], e["outcome"]) for e in events
            if e.get("event") == "audit" and e.get("type") == "sign_on"]


async def test_certificate_for_az_signs_on_as_az_and_carries_traffic(
        make_switch: SwitchFactory, pki_dir: Path) -> None:
    sw = await make_switch(tls_world(pki_dir))
    az = await tls_connect(sw, pki_dir, "AZNLETS20", "AZNLETS20")
    ny = await tls_connect(sw, pki_dir, "NYNLETS00", "NYNLETS00")
    assert sw.online("AZNLETS20") and sw.online("NYNLETS00")
    assert (await az.send("AM.AZNLETS20.NYNLETS00.TXT OVER TLS")).ok
    assert parse_output(await ny.receive(3)).text == "OVER TLS"
    await az.close()
    await ny.close()


async def test_certificate_for_az_cannot_sign_on_as_ny(make_switch: SwitchFactory,
                                                       pki_dir: Path) -> None:
    sw = await make_switch(tls_world(pki_dir))
    events: list[dict[str, Any]] = []
    sw.observers.append(lambda e: events.append(e.to_dict()))
    with pytest.raises(SignOnError, match=REJECTED):
        await tls_connect(sw, pki_dir, "AZNLETS20", "NYNLETS00")
    assert not sw.online("NYNLETS00")
    assert audits(events) == [("NYNLETS00", "failure")]


async def test_no_client_certificate_is_refused_and_audited(make_switch: SwitchFactory,
                                                            pki_dir: Path) -> None:
    sw = await make_switch(tls_world(pki_dir))
    events: list[dict[str, Any]] = []
    sw.observers.append(lambda e: events.append(e.to_dict()))
    # TLS 1.3: the server checks the client's certificate after the client has
    # finished its half, so the refusal shows on the first read.
    with pytest.raises((SignOnError, ssl.SSLError, ConnectionError)):
        await tls_connect(sw, pki_dir, None, "AZNLETS20")
    assert not sw.online("AZNLETS20")
    await eventually(lambda: any(e.get("type") == "sign_on" and e.get("outcome") == "failure"
                                 and str(e.get("reason", "")).startswith("tls")
                                 for e in events), 2, "the failed handshake audited")


async def test_certificate_of_another_ca_is_refused(make_switch: SwitchFactory, pki_dir: Path,
                                                    tmp_path: Path) -> None:
    other = tmp_path / "other-pki"
    pki.init_ca(other)
    pki.issue_client(other, "AZNLETS20")
    sw = await make_switch(tls_world(pki_dir))
    p, q = pki.pki_paths(pki_dir), pki.pki_paths(other)
    cert, key = q.client("AZNLETS20")
    host, port = sw.addresses[0]
    with pytest.raises((SignOnError, ssl.SSLError, ConnectionError)):
        await Client.connect(host, port, "AZNLETS20",
                             ssl_context=pki.client_ssl_context(p.ca, cert, key))
    assert not sw.online("AZNLETS20")


async def test_plain_tcp_to_a_tls_listener_gets_nowhere(make_switch: SwitchFactory,
                                                        pki_dir: Path) -> None:
    sw = await make_switch(tls_world(pki_dir))
    host, port = sw.addresses[0]
    with pytest.raises((SignOnError, ConnectionError, TimeoutError)):
        await Client.connect(host, port, "AZNLETS20", timeout=2)
    assert not sw.online("AZNLETS20")


async def test_revoked_certificate_is_refused_without_restarting_the_switch(
        make_switch: SwitchFactory, pki_dir: Path) -> None:
    sw = await make_switch(tls_world(pki_dir))
    az = await tls_connect(sw, pki_dir, "AZNLETS20", "AZNLETS20")
    ny = await tls_connect(sw, pki_dir, "NYNLETS00", "NYNLETS00")
    await ny.close()
    pki.revoke(pki_dir, "NYNLETS00")   # issues the CRL again
    pki.write_crl(pki_dir)
    with pytest.raises((SignOnError, ssl.SSLError, ConnectionError)):
        await tls_connect(sw, pki_dir, "NYNLETS00", "NYNLETS00")
    assert not sw.online("NYNLETS00")
    # AZ, not revoked, still signs on anew; its live link was never disturbed.
    assert (await az.send("AM.AZNLETS20.AZNLETS20.TXT STILL UP")).ok
    az2 = await tls_connect(sw, pki_dir, "AZNLETS20", "AZNLETS20")
    await az2.close()
    await az.close(sign_off=False)


# --------------------------------------------------------------------------
# The real openssl s_client
# --------------------------------------------------------------------------


async def s_client(sw: Switch, d: Path, cert_ori: str | None, sign_on_as: str,
                   tmp_path: Path) -> tuple[int, list[fr.Frame]]:
    """Send a sign-on and a sign-off through `openssl s_client`; (exit code, frames back).

    ``cert_ori`` None: no client certificate at all.
    """
    p = pki.pki_paths(d)
    mine = [] if cert_ori is None else ["-cert", str(p.client(cert_ori)[0]),
                                        "-key", str(p.client(cert_ori)[1])]
    host, port = sw.addresses[0]
    stdin = tmp_path / f"signon-{sign_on_as}.bin"
    stdin.write_bytes(fr.encode_frame(fr.SIGN_ON, 1, sign_on_as.encode())
                      + fr.encode_frame(fr.SIGN_OFF, 2))
    with stdin.open("rb") as f:
        proc = await asyncio.create_subprocess_exec(
            OPENSSL, "s_client", "-connect", f"{host}:{port}", "-quiet", "-ign_eof",
            "-servername", "localhost", "-verify_hostname", "localhost",
            "-verify_return_error", "-CAfile", str(p.ca), *mine,
            stdin=f, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(15):
                out, _err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    assert proc.returncode is not None
    return proc.returncode, fr.FrameBuffer().feed(out)


@needs_openssl
async def test_openssl_s_client_signs_on_as_its_certificates_ori(
        make_switch: SwitchFactory, pki_dir: Path, tmp_path: Path) -> None:
    sw = await make_switch(tls_world(pki_dir))
    _code, frames = await s_client(sw, pki_dir, "AZNLETS20", "AZNLETS20", tmp_path)
    # A to the sign-on with the switch's ORI, then A to the sign-off (part 1).
    assert [(f.letter, f.seq, f.body) for f in frames] == [("A", 1, b"NL0000000"), ("A", 2, b"")]


@needs_openssl
async def test_openssl_s_client_cannot_sign_on_as_another_ori(
        make_switch: SwitchFactory, pki_dir: Path, tmp_path: Path) -> None:
    sw = await make_switch(tls_world(pki_dir))
    _code, frames = await s_client(sw, pki_dir, "AZNLETS20", "NYNLETS00", tmp_path)
    assert [(f.letter, f.seq, f.body) for f in frames] == [("N", 1, REJECTED.encode())]
    assert not sw.online("NYNLETS00")


@needs_openssl
async def test_openssl_s_client_without_a_certificate_is_refused(
        make_switch: SwitchFactory, pki_dir: Path, tmp_path: Path) -> None:
    sw = await make_switch(tls_world(pki_dir))
    events: list[dict[str, Any]] = []
    sw.observers.append(lambda e: events.append(e.to_dict()))
    code, frames = await s_client(sw, pki_dir, None, "AZNLETS20", tmp_path)
    assert frames == [] and code != 0
    assert not sw.online("AZNLETS20")
    assert ("", "failure") in audits(events)  # the refused handshake is audited


@needs_openssl
async def test_openssl_s_client_with_a_revoked_certificate_is_refused(
        make_switch: SwitchFactory, pki_dir: Path, tmp_path: Path) -> None:
    sw = await make_switch(tls_world(pki_dir))
    code, frames = await s_client(sw, pki_dir, "NYNLETS00", "NYNLETS00", tmp_path)
    assert [f.letter for f in frames] == ["A", "A"]
    pki.revoke(pki_dir, "NYNLETS00")
    code, frames = await s_client(sw, pki_dir, "NYNLETS00", "NYNLETS00", tmp_path)
    assert frames == []
    assert code != 0
    assert not sw.online("NYNLETS00")


def test_client_hello_sent_at_once_is_never_lost(pki_dir: Path, tmp_path: Path) -> None:
    """A client whose ClientHello reaches `serve` with the connection signs on.

    (Upgrading an accepted plain connection with start_tls lost a ClientHello
    that arrived before the upgrade, and the handshake hung until the sign-on
    timeout: 14 of 15 such clients against `serve` under uvloop.)
    """
    import signal
    import socket

    import yaml

    from tests.conftest import free_port
    from tests.test_durability import start_switch

    port = free_port()
    world = tls_world(pki_dir)
    world["listeners"][0]["address"] = f"127.0.0.1:{port}"
    conf = tmp_path / "tls.yaml"
    conf.write_text(yaml.safe_dump(world))
    proc = start_switch(tmp_path / "data", port, "--config", str(conf))
    ctx = ctx_for(pki_dir, "AZNLETS20")
    try:
        for _ in range(10):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                    ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(fr.encode_frame(fr.SIGN_ON, 1, b"AZNLETS20"))
                reply = tls.recv(64)
            assert fr.FrameBuffer().feed(reply)[0].body == b"NL0000000"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
