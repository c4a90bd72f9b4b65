"""The PKI tool: `nlets-switch pki`, its files, and real TLS handshakes.

Handshakes run against a real asyncio server on 127.0.0.1 port 0 using
`server_ssl_context`, with Python clients and the real `openssl s_client`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import ssl
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nlets_switch.cli import main
from nlets_switch.server import pki, tls

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
needs_openssl = pytest.mark.skipif(not os.path.exists(OPENSSL), reason="openssl not installed")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    """A fresh PKI with a CA and a client certificate for AZNLETS20."""
    d = tmp_path / "pki"
    pki.init_ca(d)
    pki.issue_client(d, "AZNLETS20")
    return d


# --------------------------------------------------------------------------
# Files and the command line
# --------------------------------------------------------------------------


def test_cli_round_trip_init_issue_revoke_crl(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "data" / "pki"
    assert main(["pki", "init", "--dir", str(d), "--host", "switch.example,10.1.2.3"]) == 0
    out = capsys.readouterr().out
    for name in ("ca.pem", "ca.key", "server.pem", "server.key", "crl.pem", "index.json"):
        assert str(d / name) in out
        assert (d / name).is_file()

    server = _cert(d / "server.pem")
    assert server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "NL0000000"
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "switch.example"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1", "10.1.2.3"}
    assert len(tls.load_crl(d / "crl.pem")) == 0

    assert main(["pki", "issue", "AZNLETS20", "--dir", str(d), "--days", "30"]) == 0
    out = capsys.readouterr().out
    cert_path, key_path = d / "clients" / "AZNLETS20.pem", d / "clients" / "AZNLETS20.key"
    assert str(cert_path) in out and str(key_path) in out
    cert = _cert(cert_path)
    assert f"{cert.serial_number:X}" in out
    assert cert.not_valid_after_utc - cert.not_valid_before_utc < dt.timedelta(days=31)

    assert main(["pki", "revoke", "AZNLETS20", "--dir", str(d)]) == 0
    assert f"{cert.serial_number:X}" in capsys.readouterr().out
    crl = tls.load_crl(d / "crl.pem")
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert tls.is_revoked(crl, cert)

    assert main(["pki", "crl", "--dir", str(d), "--days", "7"]) == 0
    out = capsys.readouterr().out
    assert str(d / "crl.pem") in out
    again = tls.load_crl(d / "crl.pem")
    assert tls.is_revoked(again, cert), "re-issuing the CRL keeps the revocations"
    number = again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert again.next_update_utc is not None
    left = again.next_update_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=6) < left <= dt.timedelta(days=7)


def test_client_certificate_names_the_ori_and_is_for_client_auth(pki_dir: Path) -> None:
    paths = pki.pki_paths(pki_dir)
    cert = _cert(paths.clients / "AZNLETS20.pem")
    ca = _cert(paths.ca)
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "AZNLETS20"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:nlets-switch:ori:AZNLETS20"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert tls.ori_of_certificate(cert) == {"AZNLETS20"}
    assert tls.ori_of_certificate(cert.public_bytes(Encoding.DER)) == {"AZNLETS20"}
    # The CA's own certificate names no ORI.
    assert tls.ori_of_certificate(ca) == set()


def test_keys_are_0600_and_directories_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        d = tmp_path / "pki"
        paths = pki.init_ca(d)
        cert_path, key_path = pki.issue_client(d, "AZ0070500")
    finally:
        os.umask(old)
    for key in (paths.ca_key, paths.key, key_path):
        assert _mode(key) == 0o600, key
    for directory in (paths.dir, paths.clients):
        assert _mode(directory) == 0o700, directory
    assert not [p for p in d.rglob("*.tmp")], "no temporary files left behind"
    # Certificates and the CRL are public: anyone may read them.
    assert _mode(cert_path) & 0o044 == 0o044


def test_init_refuses_an_existing_ca_unless_forced(pki_dir: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ca_before = (pki_dir / "ca.pem").read_bytes()
    assert main(["pki", "init", "--dir", str(pki_dir)]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert (pki_dir / "ca.pem").read_bytes() == ca_before

    assert main(["pki", "init", "--dir", str(pki_dir), "--force"]) == 0
    assert (pki_dir / "ca.pem").read_bytes() != ca_before
    # The old CA's client certificates would no longer verify: they are gone.
    assert not (pki_dir / "clients" / "AZNLETS20.pem").exists()
    assert "AZNLETS20" not in pki.load_index(pki_dir).certs


@pytest.mark.parametrize("bad", ["AZ12", "aznlets20", "AZNLETS2O0", "1ZNLETS20", "AZ-LETS20", ""])
def test_issue_refuses_a_malformed_ori(pki_dir: Path, bad: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", "issue", bad, "--dir", str(pki_dir)]) == 1
    err = capsys.readouterr().err
    assert "malformed ORI" in err and "AZNLETS20" in err
    assert not (pki_dir / "clients" / f"{bad}.pem").exists()


def test_issue_refuses_the_switchs_own_ori(pki_dir: Path) -> None:
    with pytest.raises(pki.PkiError, match="switch's own ORI"):
        pki.issue_client(pki_dir, "NL0000000")


def test_issue_without_a_ca_says_to_run_init(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", "issue", "AZNLETS20", "--dir", str(tmp_path / "none")]) == 1
    assert "pki init" in capsys.readouterr().err


def test_index_keeps_every_serial_per_ori_and_revoke_takes_the_newest(pki_dir: Path) -> None:
    first = _cert(pki_dir / "clients" / "AZNLETS20.pem").serial_number
    pki.issue_client(pki_dir, "AZNLETS20")
    second = _cert(pki_dir / "clients" / "AZNLETS20.pem").serial_number
    data = json.loads((pki_dir / "index.json").read_text())
    assert [e["serial"] for e in data["certificates"]["AZNLETS20"]] == [
        f"{first:X}", f"{second:X}"]

    assert pki.revoke(pki_dir, "AZNLETS20") == second
    assert pki.revoke(pki_dir, "AZNLETS20", serial=first) == first
    crl = tls.load_crl(pki_dir / "crl.pem")
    assert {r.serial_number for r in crl} == {first, second}
    with pytest.raises(pki.PkiError, match="already revoked"):
        pki.revoke(pki_dir, "AZNLETS20")
    with pytest.raises(pki.PkiError, match="no certificate was issued"):
        pki.revoke(pki_dir, "NYNLETS00")


# --------------------------------------------------------------------------
# TLS handshakes
# --------------------------------------------------------------------------


@dataclass
class Server:
    """A TLS echo-of-identity server: greets each client with its ORIs."""

    port: int
    accepted: list[set[str]] = field(default_factory=list)


@asynccontextmanager
async def tls_server(ctx: ssl.SSLContext) -> AsyncIterator[Server]:
    state = Server(port=0)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        oris = tls.peer_oris(writer.get_extra_info("ssl_object"))
        state.accepted.append(oris)
        writer.write(f"HELLO {','.join(sorted(oris)) or '-'}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=ctx)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


async def py_client(port: int, ctx: ssl.SSLContext) -> bytes:
    """The server's greeting, or b"" when the server refused us.

    With TLS 1.3 the server checks the client certificate after the client
    has finished its side of the handshake, so a refusal shows up on the
    first read; asyncio's server closes without sending its alert.
    """
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="localhost")
        try:
            return await reader.readline()
        except (ssl.SSLError, ConnectionError):
            return b""
        finally:
            writer.close()


async def s_client(port: int, ca: Path, *extra: str) -> tuple[int, str, str]:
    """Run the real `openssl s_client`; returns (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}",
        "-servername", "localhost", "-verify_hostname", "localhost",
        "-CAfile", str(ca), "-verify_return_error",
        # Keep reading after stdin's EOF until the server closes.
        "-ign_eof", *extra,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(15):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _client_files(d: Path, ori: str) -> tuple[str, ...]:
    return ("-cert", str(d / "clients" / f"{ori}.pem"), "-key", str(d / "clients" / f"{ori}.key"))


def test_server_context_requires_tls_1_2_and_client_certificates(pki_dir: Path) -> None:
    ctx = tls.server_ssl_context(pki.pki_paths(pki_dir))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF


async def test_python_client_with_a_valid_certificate_gets_in_as_its_ori(pki_dir: Path) -> None:
    paths = pki.pki_paths(pki_dir)
    cert, key = paths.client("AZNLETS20")
    async with tls_server(tls.server_ssl_context(paths)) as server:
        greeting = await py_client(server.port, tls.client_ssl_context(paths.ca, cert, key))
    assert greeting == b"HELLO AZNLETS20\n"
    assert server.accepted == [{"AZNLETS20"}]


@needs_openssl
@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
async def test_openssl_s_client_with_a_client_certificate_succeeds(pki_dir: Path,
                                                                   version: str) -> None:
    paths = pki.pki_paths(pki_dir)
    async with tls_server(tls.server_ssl_context(paths)) as server:
        rc, out, err = await s_client(server.port, paths.ca, version,
                                      *_client_files(pki_dir, "AZNLETS20"))
    assert "HELLO AZNLETS20" in out, err
    assert rc == 0, err
    assert "Verify return code: 0 (ok)" in out
    assert server.accepted == [{"AZNLETS20"}]


@needs_openssl
async def test_openssl_s_client_without_a_client_certificate_fails(pki_dir: Path) -> None:
    paths = pki.pki_paths(pki_dir)
    async with tls_server(tls.server_ssl_context(paths)) as server:
        rc, out, _ = await s_client(server.port, paths.ca)
    assert rc != 0
    assert "HELLO" not in out
    assert server.accepted == []


async def test_python_client_without_a_certificate_fails(pki_dir: Path) -> None:
    paths = pki.pki_paths(pki_dir)
    async with tls_server(tls.server_ssl_context(paths)) as server:
        greeting = await py_client(server.port, tls.client_ssl_context(paths.ca))
    assert greeting == b""
    assert server.accepted == []


@needs_openssl
async def test_a_revoked_certificate_fails_the_handshake(pki_dir: Path) -> None:
    paths = pki.pki_paths(pki_dir)
    pki.issue_client(pki_dir, "NYNLETS00")
    pki.revoke(pki_dir, "NYNLETS00")
    cert, key = paths.client("NYNLETS00")
    async with tls_server(tls.server_ssl_context(paths)) as server:
        greeting = await py_client(server.port, tls.client_ssl_context(paths.ca, cert, key))
        rc, out, _ = await s_client(server.port, paths.ca, *_client_files(pki_dir, "NYNLETS00"))
        # AZNLETS20 was not revoked and still gets in.
        ok = await py_client(server.port, tls.client_ssl_context(
            paths.ca, *paths.client("AZNLETS20")))
    assert greeting == b""
    assert rc != 0 and "HELLO" not in out
    assert ok == b"HELLO AZNLETS20\n"
    assert server.accepted == [{"AZNLETS20"}]


async def test_context_cache_picks_up_a_revocation(pki_dir: Path) -> None:
    paths = pki.pki_paths(pki_dir)
    cache = tls.ServerContextCache(paths)
    first = cache.context()
    assert cache.context() is first, "unchanged files: the same context"
    pki.revoke(pki_dir, "AZNLETS20")
    fresh = cache.context()
    assert fresh is not first
    client = tls.client_ssl_context(paths.ca, *paths.client("AZNLETS20"))
    async with tls_server(fresh) as server:
        assert await py_client(server.port, client) == b""


async def test_an_expired_crl_refuses_every_client(pki_dir: Path) -> None:
    # Why `pki crl` must run before next-update: OpenSSL fails closed.
    paths = pki.pki_paths(pki_dir)
    pki.write_crl(pki_dir, days=1, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    client = tls.client_ssl_context(paths.ca, *paths.client("AZNLETS20"))
    async with tls_server(tls.server_ssl_context(paths)) as server:
        assert await py_client(server.port, client) == b""
    pki.write_crl(pki_dir)
    async with tls_server(tls.server_ssl_context(paths)) as server:
        assert await py_client(server.port, client) == b"HELLO AZNLETS20\n"


async def test_the_server_certificate_cannot_be_used_as_a_client_certificate(
        pki_dir: Path) -> None:
    # Same CA, but its EKU is serverAuth only: no one signs on as NL0000000.
    paths = pki.pki_paths(pki_dir)
    client = tls.client_ssl_context(paths.ca, paths.cert, paths.key)
    async with tls_server(tls.server_ssl_context(paths)) as server:
        assert await py_client(server.port, client) == b""
    assert server.accepted == []


async def test_a_certificate_from_another_ca_is_refused(pki_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    pki.init_ca(other)
    cert, key = pki.issue_client(other, "AZNLETS20")
    paths = pki.pki_paths(pki_dir)
    # The client trusts our server; only its own certificate is foreign.
    client = tls.client_ssl_context(paths.ca, cert, key)
    async with tls_server(tls.server_ssl_context(paths)) as server:
        assert await py_client(server.port, client) == b""
    assert server.accepted == []


async def test_optional_client_certificates(pki_dir: Path) -> None:
    paths = pki.pki_paths(pki_dir)
    ctx = tls.server_ssl_context(paths, require_client_cert=False)
    async with tls_server(ctx) as server:
        anonymous = await py_client(server.port, tls.client_ssl_context(paths.ca))
        named = await py_client(server.port, tls.client_ssl_context(
            paths.ca, *paths.client("AZNLETS20")))
    assert anonymous == b"HELLO -\n"
    assert named == b"HELLO AZNLETS20\n"


async def test_a_running_listener_refuses_a_certificate_revoked_while_it_runs(
        pki_dir: Path) -> None:
    # The pattern docs/tls.md recommends: accept plain TCP, then start_tls
    # with the cache's current context, so a revocation needs no restart.
    paths = pki.pki_paths(pki_dir)
    contexts = tls.ServerContextCache(paths)
    accepted: list[set[str]] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.start_tls(contexts.context())
        except (ssl.SSLError, ConnectionError):
            writer.close()
            return
        oris = tls.peer_oris(writer.get_extra_info("ssl_object"))
        accepted.append(oris)
        writer.write(f"HELLO {','.join(sorted(oris))}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = tls.client_ssl_context(paths.ca, *paths.client("AZNLETS20"))
    try:
        assert await py_client(port, client) == b"HELLO AZNLETS20\n"
        pki.revoke(pki_dir, "AZNLETS20")
        assert await py_client(port, client) == b""
    finally:
        server.close()
        await server.wait_closed()
    assert accepted == [{"AZNLETS20"}]
