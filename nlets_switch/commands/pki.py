"""``nlets-switch pki``: a small CA for TLS links (see docs/tls.md).

::

    nlets-switch pki init   [--dir DIR] [--host NAME ...] [--days N] [--force]
    nlets-switch pki issue  ORI [--dir DIR] [--days N]
    nlets-switch pki revoke ORI [--dir DIR] [--serial HEX]
    nlets-switch pki crl    [--dir DIR] [--days N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from cryptography import x509

from nlets_switch.server import pki


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pki`` and its sub-commands."""
    parser = subparsers.add_parser(
        "pki",
        help="make a CA and the certificates for TLS links",
        description="A small certificate authority for TLS links: a CA, the switch's "
        "server certificate, one client certificate per ORI, and a CRL. "
        "Keys are written 0600 and directories 0700.",
    )
    parser.set_defaults(func=lambda _args: _usage(parser))
    sub = parser.add_subparsers(dest="pki_command", metavar="ACTION")

    def with_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--dir", type=Path, default=pki.DEFAULT_DIR,
            help=f"the PKI directory (default: ./{pki.DEFAULT_DIR})",
        )
        return p

    p = with_dir(sub.add_parser(
        "init", help="make the CA, an empty CRL and the switch's server certificate",
        description="Make a CA (EC P-256), an empty CRL and a server certificate for "
        f"{pki.SWITCH_ORI} valid for localhost and 127.0.0.1 (and every --host).",
    ))
    p.add_argument("--host", action="append", default=[], metavar="NAME",
                   help="another DNS name or IP address for the server certificate "
                   "(repeat or separate with commas)")
    p.add_argument("--days", type=int, default=pki.SERVER_DAYS,
                   help=f"server certificate validity in days (default {pki.SERVER_DAYS})")
    p.add_argument("--force", action="store_true",
                   help="replace an existing CA; every certificate it issued stops working")
    p.set_defaults(func=_init)

    p = with_dir(sub.add_parser(
        "issue", help="issue a client certificate and key for an ORI",
        description="Issue a client certificate (CN = ORI, SAN URI "
        f"{pki.ORI_URI_PREFIX}ORI, clientAuth) and its key, signed by the CA.",
    ))
    p.add_argument("ori", metavar="ORI", help="the ORI, e.g. AZNLETS20")
    p.add_argument("--days", type=int, default=pki.CLIENT_DAYS,
                   help=f"validity in days (default {pki.CLIENT_DAYS})")
    p.set_defaults(func=_issue)

    p = with_dir(sub.add_parser(
        "revoke", help="revoke an ORI's current certificate and re-issue the CRL",
    ))
    p.add_argument("ori", metavar="ORI", help="the ORI, e.g. AZNLETS20")
    p.add_argument("--serial", type=_hex, default=None, metavar="HEX",
                   help="revoke this serial (hex, as printed by `issue`) instead of "
                   "the ORI's newest certificate")
    p.set_defaults(func=_revoke)

    p = with_dir(sub.add_parser(
        "crl", help="issue the CRL again with a fresh next-update",
    ))
    p.add_argument("--days", type=int, default=pki.CRL_DAYS,
                   help=f"days until next-update (default {pki.CRL_DAYS})")
    p.set_defaults(func=_crl)


def _hex(text: str) -> int:
    try:
        return int(text.replace(":", ""), 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a hex serial: {text!r}") from None


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _fail(exc: Exception) -> int:
    print(f"nlets-switch pki: {exc}", file=sys.stderr)
    return 1


def _show(rows: list[tuple[str, str]]) -> None:
    """Print label/value rows with the values lined up."""
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _init(args: argparse.Namespace) -> int:
    hosts = [h.strip() for item in args.host for h in item.split(",") if h.strip()]
    try:
        paths = pki.init_ca(args.dir, hosts, force=args.force, server_days=args.days)
    except pki.PkiError as exc:
        return _fail(exc)
    cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    names += [str(n) for n in san.get_values_for_type(x509.IPAddress)]
    print(f"made a CA in {paths.dir}")
    _show([
        ("CA certificate", str(paths.ca)),
        ("CA key", f"{paths.ca_key}  (0600; keep it offline in real use)"),
        ("server certificate", f"{paths.cert}  (CN {pki.SWITCH_ORI}; {', '.join(names)})"),
        ("server key", f"{paths.key}  (0600)"),
        ("CRL", f"{paths.crl}  (empty)"),
        ("index", str(paths.index)),
    ])
    print(f"next: nlets-switch pki issue AZNLETS20 --dir {paths.dir}")
    return 0


def _issue(args: argparse.Namespace) -> int:
    try:
        cert_path, key_path = pki.issue_client(args.dir, args.ori, days=args.days)
    except pki.PkiError as exc:
        return _fail(exc)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    paths = pki.pki_paths(args.dir)
    print(f"issued a client certificate for {args.ori}")
    _show([
        ("certificate", str(cert_path)),
        ("key", f"{key_path}  (0600)"),
        ("serial", f"{cert.serial_number:X}"),
        ("valid until", _when(cert.not_valid_after_utc)),
    ])
    print("try it: openssl s_client -connect 127.0.0.1:7443 "
          f"-cert {cert_path} -key {key_path} -CAfile {paths.ca}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        serial = pki.revoke(args.dir, args.ori, serial=args.serial)
    except pki.PkiError as exc:
        return _fail(exc)
    paths = pki.pki_paths(args.dir)
    crl = pki.load_crl(paths.crl)
    print(f"revoked {args.ori}, serial {serial:X}")
    _show([
        ("CRL", f"{paths.crl}  ({len(crl)} revoked)"),
        ("next update", _when(_next_update(crl))),
    ])
    print("a running switch checks each new connection against it (it re-reads the CRL when "
          "the file changes)")
    return 0


def _crl(args: argparse.Namespace) -> int:
    try:
        path = pki.write_crl(args.dir, days=args.days)
    except pki.PkiError as exc:
        return _fail(exc)
    crl = pki.load_crl(path)
    print(f"issued the CRL again: {path}")
    _show([
        ("revoked", str(len(crl))),
        ("next update", _when(_next_update(crl))),
    ])
    return 0


def _next_update(crl: x509.CertificateRevocationList) -> dt.datetime:
    nu = crl.next_update_utc
    assert nu is not None  # pki always sets one
    return nu
