"""Settings are validated at start-up; production refuses unsafe configurations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from idp.settings import Settings

pytestmark = pytest.mark.no_database

SECRET = "s" * 40


def test_production_refuses_http_issuer() -> None:
    with pytest.raises(ValidationError, match="https"):
        Settings(issuer="http://login.example.com", key_encryption_secret=SECRET)


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:8000", "http://localhost:9000",
                                    "http://[::1]:8000", "https://login.example.com"])
def test_production_accepts_https_and_loopback(issuer: str) -> None:
    assert Settings(issuer=issuer, key_encryption_secret=SECRET).issuer == issuer


def test_production_requires_key_encryption_secret() -> None:
    with pytest.raises(ValidationError, match="IDP_KEY_ENCRYPTION_SECRET"):
        Settings(issuer="https://login.example.com")


@pytest.mark.parametrize("secret", ["changeme", "short-secret"])
def test_production_refuses_placeholder_or_short_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="32"):
        Settings(issuer="https://login.example.com", key_encryption_secret=secret)


def test_dev_mode_allows_http_and_generates_a_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(issuer="http://idp.internal", dev_mode=True, data_dir=tmp_path)
    first = settings.resolved_key_secret()
    assert len(first) >= 32
    assert settings.resolved_key_secret() == first  # kept, so keys stay decryptable
    # In the data directory, where the next start (another process) reads it again; another
    # directory is another installation, with a secret of its own.
    assert (tmp_path / "dev-key-encryption-secret").read_text().strip() == first
    other = Settings(issuer="http://idp.internal", dev_mode=True, data_dir=tmp_path / "other")
    assert other.resolved_key_secret() not in ("", first)
    again = Settings(issuer="http://idp.internal", dev_mode=True, data_dir=tmp_path)
    assert again.resolved_key_secret() == first


@pytest.mark.parametrize("issuer", ["https://login.example.com/", "https://a.example?x=1",
                                    "https://a.example#f", "login.example.com", "ftp://a.example"])
def test_issuer_shape(issuer: str) -> None:
    with pytest.raises(ValidationError):
        Settings(issuer=issuer, key_encryption_secret=SECRET)


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_ISSUER", "https://login.example.com")
    monkeypatch.setenv("IDP_KEY_ENCRYPTION_SECRET", SECRET)
    monkeypatch.setenv("IDP_ACCESS_TOKEN_TTL", "900")
    settings = Settings()
    assert settings.issuer == "https://login.example.com"
    assert settings.access_token_ttl == 900
    assert settings.session_cookie_name == "__Host-idp_session"


def test_code_lifetime_is_capped() -> None:
    with pytest.raises(ValidationError):
        Settings(issuer="https://a.example", key_encryption_secret=SECRET,
                 authorization_code_ttl=61)
