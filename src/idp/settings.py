"""One settings object, read from `IDP_` environment variables and validated at start-up.

Nothing else in the code base reads the environment: `create_app(settings)` and the CLI pass
this object down.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from idp import brand, locales

DEFAULT_ISSUER = "http://127.0.0.1:8000"
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "changethis", "dev"})


def is_loopback_host(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IDP_", extra="ignore", frozen=True)

    issuer: str = DEFAULT_ISSUER
    database_url: str = "sqlite+aiosqlite:///./var/idp.db"
    data_dir: Path = Path("./var")
    dev_mode: bool = False
    # Encrypts the private halves of signing keys at rest and keys the CSRF MACs.
    key_encryption_secret: SecretStr | None = None

    # Lifetimes in seconds (shared/reference/security.md §9).
    # security.md §0 item 3: at most 60 s.
    authorization_code_ttl: int = Field(default=60, ge=1, le=60)
    access_token_ttl: int = Field(default=600, ge=30, le=86_400)
    # RFC 9068 access tokens: ES256 signs in ~35 µs, RS256 in ~820 µs, and resource servers
    # verify either from the JWKS. ID tokens follow each client's registered algorithm.
    access_token_signing_alg: Literal["ES256", "RS256"] = "ES256"
    id_token_ttl: int = Field(default=300, ge=30, le=86_400)
    session_ttl: int = Field(default=14 * 86_400, ge=60)
    # RFC 9700 §4.14.2 / ASVS 10.4.8: sliding idle and absolute refresh token lifetimes.
    refresh_token_idle_ttl: int = Field(default=14 * 86_400, ge=60)
    refresh_token_absolute_ttl: int = Field(default=90 * 86_400, ge=60)
    # Automatic signing-key rotation period in days; 0 turns it off (rotate with the CLI).
    key_rotation_days: int = Field(default=90, ge=0)
    interaction_ttl: int = Field(default=30 * 60, ge=60, le=86_400)
    # RFC 8628: how long a device's codes live, and the polling interval it is given.
    device_code_ttl: int = Field(default=600, ge=60, le=3600)
    device_poll_interval: int = Field(default=5, ge=1, le=60)
    # Linking, unlinking and deleting the account need a sign-in at most this old
    # (federation.md §9 requirement 25: 5 minutes by default).
    recent_auth_seconds: int = Field(default=300, ge=30, le=3600)
    # Upstream-initiated revocations reach brand apps within this bound (requirement 32).
    upstream_revocation_max_delay_seconds: int = Field(default=60, ge=1, le=3600)
    # Apple `account-delete` took an account's only sign-in method (requirement 27):
    # "deactivate" it (no sign-in, sessions and tokens ended) or "keep" it as it is.
    upstream_account_delete_policy: Literal["deactivate", "keep"] = "deactivate"
    # How long the server trusts its in-memory copy of the key set before re-reading it, so a
    # rotation done by the CLI or another replica is picked up.
    key_cache_seconds: int = Field(default=30, ge=0, le=3600)
    # How long a replica trusts its in-memory copy of a client registration at the token,
    # introspection and revocation endpoints (0: read it on every request).
    client_cache_seconds: int = Field(default=10, ge=0, le=3600)

    # RFC 9700 §2.1.1: PKCE for every client unless an operator opts a confidential one out.
    require_pkce_for_confidential_clients: bool = True

    # argon2id, OWASP Password Storage Cheat Sheet second option (19 MiB, t=2, p=1).
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19_456, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    # Hashes running at once in one process. The default leaves a core to the event loop, so
    # a burst of sign-ins never starves the token endpoints (their threads also run at a lower
    # CPU priority than the loop; see idp.crypto.passwords).
    argon2_max_concurrency: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) - 1), ge=1)
    password_min_length: int = Field(default=8, ge=8)
    password_max_length: int = Field(default=256, ge=64)
    # Brute force (security.md ATO-01, ATO-02): per account, a few free failures, then a delay
    # doubling from 1 s up to a cap, never a hard lockout; per source network (/24, /64), a cap
    # on failures per window across all accounts (credential stuffing).
    throttle_free_failures: int = Field(default=5, ge=1)
    throttle_max_delay_seconds: int = Field(default=900, ge=1)
    throttle_account_window_seconds: int = Field(default=86_400, ge=60)
    throttle_source_failures: int = Field(default=100, ge=1)
    throttle_source_window_seconds: int = Field(default=3600, ge=60)
    # ATO-04: the client address is taken from X-Forwarded-For only behind these proxies
    # (addresses or networks, e.g. "10.0.0.0/8"); otherwise the connection's peer address.
    trusted_proxies: tuple[str, ...] = ()

    # `idp serve` upgrades the schema before serving (the embedded default). Off where a
    # separate step runs `idp migrate` (a container's migration job): serve then refuses a
    # database that lacks this release's migrations instead of changing it.
    migrate_on_start: bool = True

    # The outbox dispatcher and periodic maintenance (key rotation, purging) in `idp serve`.
    background_tasks: bool = True
    outbox_interval_seconds: float = Field(default=2.0, gt=0)
    maintenance_interval_seconds: int = Field(default=600, ge=1)

    # The data controller named in consent receipts (Kantara CR v1.1 / ISO/IEC TS 27560).
    controller_name: str = "idp operator"
    controller_contact: str = "privacy@example.com"
    privacy_policy_url: str = "https://example.com/privacy"
    jurisdiction: str = "EU"
    # Aggregate consent figures for the brand (GET /admin/v1/consent/statistics) show no
    # count below this: a cell of 1 to k-1 customers reads null, so nobody can be singled out.
    consent_statistics_min_count: int = Field(default=5, ge=2, le=1000)

    # The brand's look (issue 15 item 6). A theme folder holds templates/ (overriding ours by
    # name) and static/ (served at /theme/); the logo and favicon are files in static/. The
    # footer links to brand_support_url and privacy_policy_url. Colours are #rrggbb, checked
    # for contrast at start-up (idp.brand); without text and background colours the pages
    # follow the browser's light or dark scheme.
    theme_dir: Path | None = None
    brand_name: str = Field(default="idp", min_length=1, max_length=100)
    brand_logo: str | None = None
    brand_favicon: str | None = None
    brand_primary_color: str = "#1f5fbf"
    brand_on_primary_color: str = "#ffffff"
    brand_text_color: str | None = None
    brand_background_color: str | None = None
    brand_error_color: str | None = None
    brand_support_url: str | None = None

    # Dynamic client registration (RFC 7591, RFC 7592): "off"; "token", where registering
    # needs an initial access token issued through the admin API or `idp admin
    # registration-token`; or "open" to anyone. Self-registered clients may have only the
    # grant types and scopes below (never an admin scope), and always use PKCE; registration
    # requests are capped per source network and hour.
    registration: Literal["off", "token", "open"] = "off"
    registration_grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    registration_scopes: tuple[str, ...] = (
        "openid", "profile", "email", "address", "phone", "offline_access")
    registration_per_hour: int = Field(default=20, ge=1)
    # RFC 9126: every client must push its authorization requests to /par first (a client
    # can also be set to, on its own).
    require_pushed_authorization_requests: bool = False
    # DPoP (RFC 9449 §11.1): how old a proof's iat may be, and how far ahead of our clock it
    # may run; proofs are remembered (replay) this long. With dpop_require_nonce every proof
    # must carry a nonce we issued (§8, §9) in the last two to three minutes.
    dpop_proof_max_age_seconds: int = Field(default=60, ge=5, le=300)
    dpop_proof_future_seconds: int = Field(default=5, ge=0, le=60)
    dpop_require_nonce: bool = False

    # Mail (password reset links, notices), sent through the outbox. Without a relay, dev mode
    # writes each message as an .eml file to mail_dir and logs its link; elsewhere messages
    # wait in the outbox, failing, until a relay is set.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65_535)
    # "starttls" (port 587), "tls" (implicit TLS, port 465) or "none" (a relay on loopback).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    mail_from: str = "no-reply@localhost"
    mail_dir: Path = Path("./var/mail")
    # Password reset links: single use, this long (security.md ATO: at most 30 minutes).
    password_reset_ttl: int = Field(default=1800, ge=300, le=1800)
    # Registration links (issue 12 item 2): single use, this long.
    signup_ttl: int = Field(default=3600, ge=300, le=86_400)

    # The languages of pages, mails and consent texts: every catalog under src/idp/locales
    # (adding a language is adding a catalog), or only these of them. The default answers
    # when neither the authorization request, the customer nor the browser names one.
    ui_locales_supported: tuple[str, ...] | None = None
    default_locale: str = "en"
    db_pool_size: int = Field(default=10, ge=1)
    log_level: str = "INFO"
    # One JSON object per line (with the request's id), or plain text for a terminal.
    log_format: Literal["json", "text"] = "json"
    # Prometheus /metrics. When a token is set, a scrape must send it as a bearer token;
    # otherwise keep /metrics off the public network (it names apps and outbox state).
    # SIGTERM: /health/ready answers 503 this long while requests are still served, so load
    # balancers take the process out before it stops accepting connections.
    shutdown_drain_seconds: float = Field(default=5.0, ge=0, le=300)
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # A typo here would silently make every request come from the proxy (ATO-04).
        for proxy in value:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {proxy!r} is not an address or network"
                                 ) from exc
        return value

    @field_validator("registration_scopes")
    @classmethod
    def _no_admin_scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # An app that registers itself must never be able to run the admin API.
        for scope in value:
            if scope.startswith("admin:"):
                raise ValueError(f"registration_scopes: {scope} is an admin scope")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_shape(cls, value: str) -> str:
        # OIDC Discovery §3: https URL with no query or fragment; we also forbid a trailing slash
        # so `iss` is compared byte-for-byte without ambiguity.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("issuer must be an absolute http(s) URL")
        if parts.query or parts.fragment or value.endswith("/"):
            raise ValueError("issuer must not have a query, fragment or trailing slash")
        return value

    @model_validator(mode="after")
    def _revocation_bound(self) -> Settings:
        # Requirement 32: a hook wakes the dispatcher at once, but if that wake-up is missed
        # (another replica took the request) the next periodic pass must still come in time.
        if self.outbox_interval_seconds > self.upstream_revocation_max_delay_seconds:
            raise ValueError("outbox_interval_seconds must not exceed "
                             "upstream_revocation_max_delay_seconds")
        return self

    @model_validator(mode="after")
    def _mail_credentials_encrypted(self) -> Settings:
        # Credentials never cross the network in clear: plaintext SMTP only on loopback.
        if (self.smtp_host and self.smtp_security == "none" and self.smtp_username
                and not is_loopback_host(self.smtp_host)):
            raise ValueError("smtp_security none sends the SMTP password in clear; use "
                             "starttls or tls for a relay that is not on this machine")
        return self

    @field_validator("brand_primary_color", "brand_on_primary_color", "brand_text_color",
                     "brand_background_color", "brand_error_color")
    @classmethod
    def _colour(cls, value: str | None) -> str | None:
        return None if value is None else brand.parse_colour(value)

    @model_validator(mode="after")
    def _brand_look(self) -> Settings:
        problems = brand.palette_problems(
            self.brand_primary_color, self.brand_on_primary_color, self.brand_text_color,
            self.brand_background_color, self.brand_error_color)
        if self.theme_dir is not None and not self.theme_dir.is_dir():
            problems.append(f"IDP_THEME_DIR {self.theme_dir} is not a folder")
        for name, setting in ((self.brand_logo, "IDP_BRAND_LOGO"),
                              (self.brand_favicon, "IDP_BRAND_FAVICON")):
            problem = brand.theme_file_problem(self.theme_dir, name, setting) if name else None
            problems += [problem] if problem else []
        for url, setting in ((self.brand_support_url, "IDP_BRAND_SUPPORT_URL"),
                             (self.privacy_policy_url, "IDP_PRIVACY_POLICY_URL")):
            problem = brand.link_problem(url, setting) if url else None
            problems += [problem] if problem else []
        if problems:
            raise ValueError("the brand's look: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _languages(self) -> Settings:
        missing = [tag for tag in (*(self.ui_locales_supported or ()), self.default_locale)
                   if tag not in locales.catalog_locales()]
        if missing:
            raise ValueError(f"no catalog for {', '.join(missing)}: the languages are "
                             f"{', '.join(locales.catalog_locales())}")
        if self.ui_locales_supported and self.default_locale not in self.ui_locales_supported:
            raise ValueError("default_locale must be one of ui_locales_supported")
        return self

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages offered, the default first."""
        offered = self.ui_locales_supported or locales.catalog_locales()
        return (self.default_locale,
                *(tag for tag in dict.fromkeys(offered) if tag != self.default_locale))

    @model_validator(mode="after")
    def _production_guards(self) -> Settings:
        if self.dev_mode:
            return self
        parts = urlsplit(self.issuer)
        if parts.scheme != "https" and not is_loopback_host(parts.hostname):
            raise ValueError("issuer must use https outside dev mode (loopback excepted)")
        if self.key_encryption_secret is None:
            raise ValueError("IDP_KEY_ENCRYPTION_SECRET is required outside dev mode")
        secret = self.key_encryption_secret.get_secret_value()
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 32:
            raise ValueError("IDP_KEY_ENCRYPTION_SECRET must be at least 32 random characters")
        return self

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.issuer).scheme == "https"

    @property
    def session_cookie_name(self) -> str:
        # The __Host- prefix needs Secure, which browsers honour only over https.
        return "__Host-idp_session" if self.secure_cookies else "idp_session"

    @property
    def device_cookie_name(self) -> str:
        return "__Host-idp_device" if self.secure_cookies else "idp_device"

    @property
    def browser_cookie_name(self) -> str:
        return "__Host-idp_browser" if self.secure_cookies else "idp_browser"

    def endpoint(self, path: str) -> str:
        return f"{self.issuer}{path}"

    def resolved_key_secret(self) -> str:
        """The key-encryption secret; in dev mode one is generated once and kept in data_dir."""
        if self.key_encryption_secret is not None:
            return self.key_encryption_secret.get_secret_value()
        return _dev_key_secret(self.data_dir)


@functools.lru_cache(maxsize=8)
def _dev_key_secret(data_dir: Path) -> str:
    """Read once per process: sign-ins and cookies derive keys from it on every request
    (keyed by the settings' own `data_dir`, whose hash the path keeps: joining the file's path
    on every call had cost 3.1 us of the 3.4, on every cookie, CSRF token and device entry
    the pages derive a key for)."""
    path = data_dir / "dev-key-encryption-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
