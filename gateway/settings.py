"""One typed Settings object for every part of Wicket.

Values come from `WICKET_*` environment variables, then from an optional TOML file named by
`WICKET_CONFIG`, then from the defaults below. Nothing else in the code base reads the
environment: components receive a `Settings` instance. Secret keys are a list, newest first,
so a key can be rotated without breaking links already sent; when none is configured, the
key file under `var_dir` is used (and created on first start by `ensure_secret_key`).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator, model_validator
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

    secret_keys: list[str] = Field(default_factory=list)
    loop_token: str = "wicket"

    process_batch_size: int = Field(default=20, ge=1)
    process_max_attempts: int = Field(default=5, ge=1)
    process_lease_seconds: float = Field(default=300.0, gt=0)
    process_poll_seconds: float = Field(default=1.0, gt=0)
    process_retry_base_seconds: float = Field(default=30.0, ge=0)

    dev: bool = False

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
