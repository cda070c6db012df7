"""DKIM: per-domain signing keys and signing outbound mail at send time (dkimpy).

A mailbox domain signs when `var/dkim/<domain>.<selector>.key` exists; `keygen(settings,
domain)` creates that RSA key (once: an existing key is kept, because replacing it would
invalidate the DNS record already published) and returns the TXT record to publish at
`<selector>._domainkey.<domain>`. The outbox signs each message just before handing it to
the sender, so a retried message carries a fresh signature and stored rows stay unsigned.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.settings import Settings

log = logging.getLogger(__name__)

KEY_BITS = 2048


@dataclass(frozen=True, slots=True)
class DkimRecord:
    """The DNS TXT record that publishes a domain's public key."""

    name: str
    value: str
    created: bool

    def zone_line(self) -> str:
        """The record in zone-file syntax, split into strings of at most 255 characters."""
        chunks = " ".join(f'"{self.value[i:i + 255]}"' for i in range(0, len(self.value), 255))
        return f"{self.name}. IN TXT ( {chunks} )"


def key_path(settings: Settings, domain: str) -> Path:
    return settings.dkim_dir / f"{domain.lower()}.{settings.dkim_selector}.key"


def public_record_value(private_pem: bytes) -> str:
    """`v=DKIM1; k=rsa; p=…` for the public half of a PEM private key."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def keygen(settings: Settings, domain: str) -> DkimRecord:
    """Create the domain's signing key unless it exists; return the record to publish."""
    domain = domain.strip().lower().rstrip(".")
    if not domain or "." not in domain or "/" in domain:
        raise ValueError(f"{domain!r} is not a mail domain like example.com")
    path = key_path(settings, domain)
    created = not path.exists()
    if created:
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    name = f"{settings.dkim_selector}._domainkey.{domain}"
    return DkimRecord(name, public_record_value(path.read_bytes()), created)


class DkimSigner:
    """Signs raw messages for domains that have a key; others pass through unsigned."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._keys: dict[str, bytes] = {}

    def sign(self, raw: bytes, domain: str) -> bytes:
        key = self._key(domain.lower())
        if key is None:
            return raw
        signature = dkim.sign(
            raw,
            self._settings.dkim_selector.encode(),
            domain.lower().encode(),
            key,
            canonicalize=(b"relaxed", b"relaxed"),
        )
        return signature + raw

    def _key(self, domain: str) -> bytes | None:
        if domain not in self._keys:
            path = key_path(self._settings, domain)
            if not path.is_file():
                log.debug("no DKIM key for %s at %s; sending unsigned", domain, path)
                return None
            self._keys[domain] = path.read_bytes()
        return self._keys[domain]
