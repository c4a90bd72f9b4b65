"""TLS 1.2 offers forward-secret AEAD suites only (issue 11, hole 10)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from nlets_switch.server import pki
from nlets_switch.server.tls import server_ssl_context


@pytest.fixture
def paths(tmp_path: Path) -> pki.PkiPaths:
    pki.init_ca(tmp_path / "pki")
    pki.issue_client(tmp_path / "pki", "AZNLETS20")
    return pki.pki_paths(tmp_path / "pki")


def test_server_context_offers_no_cbc_suite(paths: pki.PkiPaths) -> None:
    ctx = server_ssl_context(paths)
    tls12 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    for c in tls12:
        assert c["aead"], c["name"]
        assert c["kea"] == "kx-ecdhe", c["name"]
        assert "CBC" not in c["description"], c["name"]


async def test_a_tls12_client_offering_only_cbc_is_refused(paths: pki.PkiPaths) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0,
                                        ssl=server_ssl_context(paths, require_client_cert=False))
    port = server.sockets[0].getsockname()[1]
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cafile=paths.ca)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:AES128-SHA256")
    try:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _, w = await asyncio.open_connection("127.0.0.1", port, ssl=client,
                                                 server_hostname="localhost")
            w.close()
        # The same client with an AEAD suite gets in.
        client.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256")
        _, w = await asyncio.open_connection("127.0.0.1", port, ssl=client,
                                             server_hostname="localhost")
        assert w.get_extra_info("cipher")[1] == "TLSv1.2"
        w.close()
    finally:
        server.close()
        await server.wait_closed()
