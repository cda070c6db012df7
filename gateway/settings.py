"""One typed Settings object for every part of Wicket.

Values come from `WICKET_*` environment variables, then from an optional TOML file named by
`WICKET_CONFIG`, then from the defaults below. Nothing else in the code base reads the
environment: components receive a `Settings` instance. Secret keys are a list, newest first,
so a key can be rotated without breaking links already sent; when none is configured, the
key file under `var_dir` is used (and created on first start by `ensure_secret_key`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SecretKey:
    """A signing key and its public id (a short digest, so rows can name the key)."""

    kid: str
    secret: bytes

    @classmethod
    def from_text(cls, text: str) -> SecretKey:
        secret = text.encode()
        return cls(kid=hashlib.sha256(b"wicket-kid:" + secret).hexdigest()[:8], secret=secret)


class Settings(BaseSettings):
    """Everything an operator can configure."""

    model_config = SettingsConfigDict(env_prefix="WICKET_", extra="ignore", frozen=True)

    var_dir: Path = Path("var")
    database_url: str = "sqlite+aiosqlite:///var/wicket.db"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_statement_timeout_ms: int = Field(default=30_000, ge=0)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_hostname: str = "wicket.localhost"
    smtp_idle_timeout: float = Field(default=300.0, gt=0)
    smtp_tls_cert_file: Path | None = None
    smtp_tls_key_file: Path | None = None
    max_message_size: int = Field(default=25 * MiB, ge=1024)
    max_recipients: int = Field(default=50, ge=1)

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    # Prometheus scrapes /metrics with this bearer token; without one, only local connections may.
    metrics_token: SecretStr | None = None

    secret_keys: list[str] = Field(default_factory=list)
    loop_token: str = "wicket"

    process_batch_size: int = Field(default=100, ge=1)  # rows claimed at once (and parsed ahead together)
    process_commit_seconds: float = Field(default=0.05, ge=0)  # one transaction gathers messages this long
    process_max_attempts: int = Field(default=5, ge=1)
    process_lease_seconds: float = Field(default=300.0, gt=0)
    process_poll_seconds: float = Field(default=1.0, gt=0)
    process_retry_base_seconds: float = Field(default=30.0, ge=0)
    process_parse_workers: int = Field(default=1, ge=0)  # processes parsing a backlog ahead; 0: inline
    # Sender checks (SPF, DKIM, DMARC, ARC): off stores no verdicts (a node without DNS, or one
    # behind an MTA that checks already); the DNS servers asked (empty: the system's, from
    # /etc/resolv.conf) and the time one message's checks may take before they give temperror.
    sender_checks: bool = True
    dns_nameservers: list[str] = Field(default_factory=list)
    dns_timeout_seconds: float = Field(default=5.0, gt=0)

    dev: bool = False
    log_format: Literal["json", "text"] = "json"

    # Outbound mail: the sender, the relay it uses, DKIM and the delivery worker.
    outbound_sender: Literal["smtp", "maildir", "memory"] = "maildir"
    relay_host: str = "127.0.0.1"
    relay_port: int = Field(default=587, ge=1, le=65535)
    relay_security: Literal["starttls", "tls", "none"] = "starttls"
    relay_username: str | None = None
    relay_password: SecretStr | None = None
    relay_ca_file: Path | None = None  # CA bundle the relay's certificate must chain to; default: the system's
    relay_timeout_seconds: float = Field(default=60.0, gt=0)
    dkim_selector: str = Field(default="wicket", pattern=r"^[a-z0-9][a-z0-9-]*$")
    outbox_batch_size: int = Field(default=20, ge=1)
    outbox_max_attempts: int = Field(default=8, ge=1)
    outbox_lease_seconds: float = Field(default=120.0, gt=0)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_retry_base_seconds: float = Field(default=60.0, ge=0)
    outbox_retry_max_seconds: float = Field(default=3600.0, ge=0)
    # Webhooks: delivery from the leased queue, retried with doubling backoff (capped) for
    # more than a day before the dead letter (see docs/architecture.md, "Webhooks").
    webhook_batch_size: int = Field(default=50, ge=1)
    webhook_max_attempts: int = Field(default=35, ge=1)
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_retry_base_seconds: float = Field(default=5.0, ge=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, ge=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_secret_overlap_hours: float = Field(default=24.0, ge=0)  # the old secret signs too while rotating
    webhook_inline_attachment_bytes: int = Field(default=256 * 1024, ge=0)  # larger ones: a signed URL
    webhook_attachment_url_hours: float = Field(default=72.0, gt=0)  # outlives the retry window
    ack_limit_per_sender: int = Field(default=10, ge=0)
    ack_window_seconds: float = Field(default=3 * 3600.0, gt=0)

    # Ticket status rules (docs/architecture.md, "Ticket status") and the team's periodic jobs.
    reopen_window_days: float = Field(default=30.0, ge=0)  # a later reply opens a new, linked ticket
    pending_auto_resolve_days: float = Field(default=0.0, ge=0)  # 0: pending tickets wait forever
    digest_waiting_hours: float = Field(default=24.0, gt=0)  # the digest lists tickets waiting longer
    periodic_poll_seconds: float = Field(default=60.0, gt=0)  # how often the auto-resolve and digest job looks

    # Magic links, portal sessions and sign-in doors.
    reply_link_ttl_minutes: int = Field(default=60, ge=1)
    signin_link_ttl_minutes: int = Field(default=15, ge=1)
    code_max_attempts: int = Field(default=5, ge=1, le=20)
    session_idle_minutes: int = Field(default=120, ge=1)
    session_absolute_days: int = Field(default=14, ge=1, le=90)
    rate_limit_window_minutes: int = Field(default=15, ge=1)
    rate_limit_mail_per_address: int = Field(default=5, ge=1)
    rate_limit_mail_per_ip: int = Field(default=20, ge=1)
    rate_limit_failures_per_address: int = Field(default=10, ge=1)
    rate_limit_failures_per_ip: int = Field(default=60, ge=1)
    rate_limit_portal_posts_per_contact: int = Field(default=30, ge=1)  # new requests and replies
    password_min_length: int = Field(default=10, ge=8)
    sso_jwt_algorithm: Literal["HS256", "RS256", "ES256"] | None = None
    sso_jwt_secret: SecretStr | None = None
    sso_jwt_public_key: str | None = None
    sso_jwt_audience: str | None = None
    sso_jwt_issuer: str | None = None
    sso_max_age_seconds: int = Field(default=300, ge=10, le=86_400)
    brand_primary_color: str = Field(default="#2454d6", pattern=r"^#[0-9a-fA-F]{6}$")
    brand_accent_color: str = Field(default="#0f9d76", pattern=r"^#[0-9a-fA-F]{6}$")
    brand_logo_url: str | None = None
    # Reverse proxies in front of the portal (IPs or CIDRs) and the header they write the
    # client's address into; see docs/deploy.md.
    trusted_proxies: list[str] = Field(default_factory=list)
    trusted_proxy_header: Literal["X-Forwarded-For", "Forwarded"] = "X-Forwarded-For"

    # The customer portal: template overrides and what a portal upload may be.
    template_dir: Path | None = None
    portal_attachment_max_bytes: int = Field(default=10 * MiB, ge=1024)
    portal_attachment_max_count: int = Field(default=5, ge=0, le=20)
    # Mail HTML larger than this (as sent, or once sanitized) is not kept for display: the
    # portal shows the text version, itself cut at this many characters, and offers the
    # original as a download. Sanitizing and showing megabytes of HTML stalls the portal.
    max_display_html_bytes: int = Field(default=MiB, ge=1024)
    # Customers' files in agent notifications: attached while together they fit this many
    # bytes, above it listed with signed download links for the agent, valid this long.
    notify_attachment_max_bytes: int = Field(default=10 * MiB, ge=0)
    agent_download_ttl_hours: int = Field(default=72, ge=1, le=24 * 30)
    portal_attachment_extensions: list[str] = Field(
        default_factory=lambda: (
            "png jpg jpeg gif webp heic pdf txt log csv md json xml zip eml "
            "doc docx xls xlsx ppt pptx odt ods odp rtf"
        ).split()
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # raises ValueError with the bad entry
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("metrics_token must be at least 32 characters (e.g. `openssl rand -hex 16`)")
        return value

    @field_validator("reply_link_ttl_minutes", "signin_link_ttl_minutes")
    @classmethod
    def _link_ttl_at_most_a_day(cls, value: int) -> int:
        if value > 24 * 60:
            raise ValueError("magic links must expire within 24 hours (1440 minutes)")
        return value

    @model_validator(mode="after")
    def _sso_key_matches_algorithm(self) -> Settings:
        algorithm = self.sso_jwt_algorithm
        if algorithm == "HS256" and not self.sso_jwt_secret:
            raise ValueError("sso_jwt_algorithm HS256 needs sso_jwt_secret")
        if algorithm in ("RS256", "ES256") and not self.sso_jwt_public_key:
            raise ValueError(f"sso_jwt_algorithm {algorithm} needs sso_jwt_public_key (PEM)")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("WICKET_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise ValueError(f"WICKET_CONFIG names {config_file!r}, which is not a file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.smtp_tls_cert_file is None) != (self.smtp_tls_key_file is None):
            raise ValueError("smtp_tls_cert_file and smtp_tls_key_file go together")
        return self

    @property
    def secret_key_file(self) -> Path:
        return self.var_dir / "secret.key"

    @cached_property
    def keys(self) -> tuple[SecretKey, ...]:
        """Signing keys, newest first. Raises when none is configured or on file."""
        texts = list(self.secret_keys)
        if not texts and self.secret_key_file.is_file():
            texts = [self.secret_key_file.read_text().strip()]
        if not texts:
            raise RuntimeError(
                "no secret key: set WICKET_SECRET_KEYS or run `wicket serve` once to create "
                f"{self.secret_key_file}"
            )
        return tuple(SecretKey.from_text(t) for t in texts)

    @property
    def maildir_dir(self) -> Path:
        return self.var_dir / "maildir"

    @property
    def dkim_dir(self) -> Path:
        return self.var_dir / "dkim"

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")


def ensure_secret_key(settings: Settings) -> None:
    """Create the key file on first start when no key is configured."""
    if settings.secret_keys or settings.secret_key_file.is_file():
        return
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    path = settings.secret_key_file
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
