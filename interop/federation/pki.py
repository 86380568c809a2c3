"""A throw-away test PKI for the federation suite: one CA, one certificate per domain.

Everything is made with the `openssl` command line tool (no Python dependency): an
EC P-256 CA, self-signed, valid for 90 days (ejabberd warns about anything expiring
within 30); for each XMPP domain a P-256 key and a certificate signed by that CA whose
subjectAltName carries the domain as a dNSName, with serverAuth and clientAuth extended
key usages (a server presents the same certificate when it dials out, so the peer
checks it as a client certificate).

`issue(domain, xmpp_addr=True)` also puts the domain in an XmppAddr otherName
(id-on-xmppAddr, RFC 6120 section 13.7.1.4). It is off by default: Debian's ejabberd
23.01 crashes its s2s_in process on SASL EXTERNAL when the peer's certificate has one
(badarg in xmpp_stream_pkix:get_cert_domains), so the control run would fail on that.

    ca = TestCA(workdir / "pki")
    cert = ca.issue("prosody.example")
    cert.cert, cert.key, cert.bundle   # PEM paths; bundle = certificate + key
    ca.cert                            # the CA certificate every server trusts
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL_TIMEOUT = 30.0
DAYS = 90
XMPP_ADDR_OID = "1.3.6.1.5.5.7.8.5"


class PKIError(RuntimeError):
    pass


@dataclass(frozen=True)
class Issued:
    domain: str
    cert: Path  # the leaf certificate (PEM)
    key: Path  # its private key (PEM, unencrypted)
    chain: Path  # leaf + CA certificate
    bundle: Path  # leaf + key (+ CA): one file, for servers that want that (ejabberd)


def _openssl(*args: str, cwd: Path) -> None:
    try:
        proc = subprocess.run(
            ["openssl", *args], cwd=cwd, stdin=subprocess.DEVNULL,
            capture_output=True, timeout=OPENSSL_TIMEOUT, check=False,
        )
    except FileNotFoundError:
        raise PKIError("the openssl command line tool is not installed") from None
    except subprocess.TimeoutExpired:
        raise PKIError(f"openssl {args[0]} did not finish within {OPENSSL_TIMEOUT}s") from None
    if proc.returncode != 0:
        raise PKIError(f"openssl {' '.join(args)} exited {proc.returncode}: "
                       f"{proc.stderr.decode(errors='replace').strip()}")


class TestCA:
    """A CA in `directory` (created): ca.pem / ca.key, and `issue(domain)`."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path, name: str = "Herald federation test CA") -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = self.dir / "ca.pem"
        self.key = self.dir / "ca.key"
        self._serial = 1
        ext = self.dir / "ca.ext"
        ext.write_text(
            "[req]\ndistinguished_name = dn\nprompt = no\n"
            f"[dn]\nCN = {name}\n"
            "[v3_ca]\nbasicConstraints = critical, CA:true, pathlen:0\n"
            "keyUsage = critical, keyCertSign, cRLSign\n"
            "subjectKeyIdentifier = hash\n"
        )
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.key.name, cwd=self.dir)
        _openssl("req", "-new", "-x509", "-config", ext.name, "-extensions", "v3_ca",
                 "-key", self.key.name, "-sha256", "-days", str(DAYS), "-out", self.cert.name, cwd=self.dir)

    def issue(self, domain: str, xmpp_addr: bool = False) -> Issued:
        """A key and a CA-signed certificate for the XMPP domain `domain`."""
        stem = domain
        conf = self.dir / f"{stem}.ext"
        conf.write_text(
            "[req]\ndistinguished_name = dn\nprompt = no\n"
            f"[dn]\nCN = {domain}\n"
            "[leaf]\nbasicConstraints = critical, CA:false\n"
            "keyUsage = critical, digitalSignature, keyEncipherment\n"
            "extendedKeyUsage = serverAuth, clientAuth\n"
            "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
            "subjectAltName = @names\n"
            f"[names]\nDNS.1 = {domain}\n"
            + (f"otherName.1 = {XMPP_ADDR_OID};UTF8:{domain}\n" if xmpp_addr else "")
        )
        key, csr, crt = f"{stem}.key", f"{stem}.csr", f"{stem}.pem"
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key, cwd=self.dir)
        _openssl("req", "-new", "-config", conf.name, "-key", key, "-out", csr, cwd=self.dir)
        _openssl("x509", "-req", "-in", csr, "-CA", self.cert.name, "-CAkey", self.key.name,
                 "-set_serial", str(self._next_serial()), "-sha256", "-days", str(DAYS),
                 "-extfile", conf.name, "-extensions", "leaf", "-out", crt, cwd=self.dir)
        leaf = (self.dir / crt).read_text()
        ca = self.cert.read_text()
        private = (self.dir / key).read_text()
        chain = self.dir / f"{stem}.chain.pem"
        chain.write_text(leaf + ca)
        bundle = self.dir / f"{stem}.bundle.pem"
        bundle.write_text(leaf + private + ca)
        return Issued(domain, self.dir / crt, self.dir / key, chain, bundle)

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial


if __name__ == "__main__":  # a quick look: python3 pki.py DIR DOMAIN...
    import sys

    ca = TestCA(Path(sys.argv[1]))
    for d in sys.argv[2:]:
        print(ca.issue(d))
