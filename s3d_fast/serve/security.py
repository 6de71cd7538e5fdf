"""Who may use the server: a token for any bind other than the loopback, and the
self-signed certificate HTTPS falls back to (browsers give the microphone only to secure
pages and localhost)."""

from __future__ import annotations

import datetime
import hmac
import ipaddress
import os
import secrets
from typing import Optional

TOKEN_HEADER = "authorization"  # "Bearer <token>"
TOKEN_QUERY = "token"  # the page's own address carries it: ?token=...
TOKEN_COOKIE = "s3d_token"  # set by the page's address, so its scripts and styles load too


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_matches(expected: Optional[str], headers, query, cookies) -> bool:
    """Whether a request carries ``expected`` (always true when no token is required)."""
    if expected is None:
        return True
    given = query.get(TOKEN_QUERY) or cookies.get(TOKEN_COOKIE)
    auth = headers.get(TOKEN_HEADER, "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def self_signed_certificate(folder: str, host: str) -> tuple[str, str]:
    """A new key and a certificate for ``host`` (and localhost) valid for 30 days, written
    into ``folder`` (the server's own); returns (cert path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s3d-fast serve")])
    alt = [x509.DNSName("localhost")]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    os.makedirs(folder, mode=0o700, exist_ok=True)
    cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    with open(key_path, "wb") as f:
        os.chmod(key_path, 0o600)
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
