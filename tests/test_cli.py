"""The `idp` command, run in-process through `idp.cli.main` with the environment it would read,
and as a real process where the exit status and stderr are the behaviour under test.

Every test gets an empty database of its own, so listings are exact; `migrate` starts from
nothing where that is under test.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from idp.cli import main
from idp.main import create_app
from idp.services.context import build_context
from idp.settings import Settings
from tests.conftest import ISSUER, TEST_SECRET, make_settings
from tests.helpers import App, Flow, get_code, redeem, throwaway_database

IDP = Path(sys.executable).parent / "idp"
PASSPHRASE = "a long and memorable passphrase"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]


def clean_env(**values: str) -> dict[str, str]:
    """The process environment without any IDP_ setting of the caller's, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(values)
    return env


@pytest.fixture
def fresh_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of the test's own; for the tests that take `migrated`, a copy of one
    migrated once (`migrate` on it then has nothing to do, and says so)."""
    with throwaway_database(tmp_path, migrated="migrated" in request.fixturenames) as url:
        yield url


@pytest.fixture
def env(fresh_url: str) -> dict[str, str]:
    return {
        "IDP_DATABASE_URL": fresh_url, "IDP_ISSUER": ISSUER,
        "IDP_KEY_ENCRYPTION_SECRET": TEST_SECRET,
        "IDP_ARGON2_TIME_COST": "1", "IDP_ARGON2_MEMORY_KIB": "1024",
    }


@pytest.fixture
def idp(env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Run:
    """`idp ARGS...` in-process; argparse's and the settings' exits become exit codes."""
    for name in [k for k in os.environ if k.startswith("IDP_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def run(*argv: str, stdin: str | None = None) -> Result:
        capsys.readouterr()
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            code = main(list(argv))
        except SystemExit as exc:
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
                code = 1
            else:
                code = exc.code or 0
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def migrated(idp: Run) -> Run:
    result = idp("migrate")
    assert result.code == 0, result.err
    assert result.out.startswith("database migrated to head\n")
    return idp


def settings_of(env: dict[str, str]) -> Settings:
    return make_settings(env["IDP_DATABASE_URL"])


def userinfo_after_sign_in(settings: Settings, app: App, email: str, password: str
                           ) -> dict[str, Any]:
    """Run the code flow against an app on the same database; the end-user's claims."""

    async def flow() -> dict[str, Any]:
        ctx = build_context(settings)
        try:
            await ctx.keys.ensure_keys()
            transport = httpx.ASGITransport(app=create_app(settings, ctx=ctx))
            async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
                login = Flow(app)
                token = await redeem(http, login, await get_code(http, login, email, password))
                assert token.status_code == 200, token.text
                info = await http.get("/userinfo", headers={
                    "Authorization": f"Bearer {token.json()['access_token']}"})
                assert info.status_code == 200, info.text
                result: dict[str, Any] = info.json()
                return result
        finally:
            await ctx.close()

    return asyncio.run(flow())


# --- migrate -----------------------------------------------------------------------------


def test_migrate_creates_the_schema_and_is_idempotent(idp: Run) -> None:
    assert idp("migrate").code == 0
    assert idp("clients", "list", "--json").json() == []
    again = idp("migrate")
    assert (again.code, again.out) == (0, "database migrated to head\n")


# --- clients -----------------------------------------------------------------------------


def test_public_native_client(migrated: Run, env: dict[str, str]) -> None:
    result = migrated("clients", "create", "--name", "Phone app", "--type", "public",
                      "--application-type", "native",
                      "--redirect-uri", "http://127.0.0.1:3000/callback",
                      "--redirect-uri", "com.example.app:/callback", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert "client_secret" not in data
    assert data["client_name"] == "Phone app"
    assert (data["client_type"], data["application_type"]) == ("public", "native")
    assert data["token_endpoint_auth_method"] == "none"
    assert data["redirect_uris"] == ["http://127.0.0.1:3000/callback",
                                     "com.example.app:/callback"]
    assert (data["require_pkce"], data["id_token_signed_response_alg"]) == (True, "RS256")
    assert data["scope"] == "openid profile email"

    # The registration works: a code flow with PKCE and no secret.
    assert migrated("users", "create", "--email", "alice@example.com",
                    "--password", PASSPHRASE).code == 0
    app = App(data["client_id"], None, "http://127.0.0.1:3000/callback")
    info = userinfo_after_sign_in(settings_of(env), app, "alice@example.com", PASSPHRASE)
    assert info["email"] == "alice@example.com"


def test_confidential_client_secret_is_shown_once(migrated: Run, env: dict[str, str]) -> None:
    result = migrated("clients", "create", "--name", "Shop", "--redirect-uri",
                      "https://app.example/callback", "--id-token-alg", "ES256", "--json")
    assert result.code == 0, result.err
    data = result.json()
    secret = data["client_secret"]
    assert len(secret) >= 32
    assert result.out.count(secret) == 1
    assert (data["client_type"], data["application_type"]) == ("confidential", "web")
    assert data["token_endpoint_auth_method"] == "client_secret_basic"
    assert data["id_token_signed_response_alg"] == "ES256"

    listing = migrated("clients", "list", "--json")
    assert secret not in listing.out
    assert [c["client_id"] for c in listing.json()] == [data["client_id"]]

    # The printed secret is the one that authenticates the client at the token endpoint.
    assert migrated("users", "create", "--email", "alice@example.com",
                    "--password", PASSPHRASE).code == 0
    app = App(data["client_id"], secret, "https://app.example/callback")
    assert userinfo_after_sign_in(settings_of(env), app, "alice@example.com",
                                  PASSPHRASE)["email"] == "alice@example.com"


def test_a_client_credentials_client_needs_no_redirect_uri(migrated: Run) -> None:
    api = migrated("clients", "create", "--name", "Orders API", "--grant-type",
                   "client_credentials", "--scope", "orders:read", "--json")
    assert api.code == 0, api.err
    assert api.json()["redirect_uris"] == []
    # A client that signs customers in still needs one, and says so.
    web = migrated("clients", "create", "--name", "Shop")
    assert web.code == 2
    assert "at least one redirect URI is required" in web.err


def test_confidential_client_plain_output(migrated: Run) -> None:
    result = migrated("clients", "create", "--name", "Shop", "--redirect-uri",
                      "https://app.example/callback")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("client_id: ")
    assert lines[1].startswith("client_secret: ")
    assert lines[1].endswith("  (shown once; store it now)")


@pytest.mark.parametrize(("args", "message"), [
    (["--redirect-uri", "http://shop.example/callback"],
     "http redirect URIs are allowed only on 127.0.0.1 or [::1] for native clients"),
    (["--redirect-uri", "http://127.0.0.1/callback"],
     "http redirect URIs are allowed only on 127.0.0.1 or [::1] for native clients"),
    (["--redirect-uri", "https://app.example/callback#section"],
     "must not contain a fragment"),
    (["--redirect-uri", "http://localhost:3000/cb", "--type", "public",
      "--application-type", "native"], "http redirect URIs are allowed only on 127.0.0.1"),
    (["--redirect-uri", "javascript:alert(1)"], "scheme 'javascript' is not allowed"),
    (["--redirect-uri", "https://user@shop.example/callback"], "user information"),
    (["--redirect-uri", "https://app.example/cb", "--type", "public", "--no-pkce"],
     "public clients always use PKCE"),
])
def test_unsafe_registrations_are_refused(migrated: Run, args: list[str], message: str) -> None:
    result = migrated("clients", "create", "--name", "Bad", *args)
    assert result.code == 2
    assert result.err.startswith("idp: ")
    assert message in result.err
    assert result.out == ""
    assert migrated("clients", "list", "--json").json() == []


def test_alg_none_is_refused(migrated: Run) -> None:
    result = migrated("clients", "create", "--name", "Bad", "--redirect-uri",
                      "https://app.example/cb", "--id-token-alg", "none")
    assert result.code == 2
    assert "invalid choice: 'none'" in result.err
    assert migrated("clients", "list", "--json").json() == []


def test_a_device_client_is_registered_and_the_grant_taken_away(migrated: Run) -> None:
    """Issue 13 item 5: the device grant is allowed per client; `device_code` is short for
    its URN. A device-only client needs no redirect URI."""
    result = migrated("clients", "create", "--name", "TV", "--type", "public",
                      "--application-type", "native", "--grant-type", "device_code",
                      "--grant-type", "refresh_token", "--scope", "openid",
                      "--scope", "offline_access", "--json")
    assert result.code == 0, result.err
    tv = result.json()
    assert tv["grant_types"] == ["urn:ietf:params:oauth:grant-type:device_code",
                                 "refresh_token"]
    assert tv["redirect_uris"] == []
    changed = migrated("clients", "update", tv["client_id"], "--grant-type", "refresh_token",
                       "--json")
    assert changed.code == 0, changed.err
    assert changed.json()["grant_types"] == ["refresh_token"]
    refused = migrated("clients", "update", tv["client_id"], "--grant-type", "device")
    assert (refused.code, refused.err) == (2, "idp: grant type device is not supported\n")


def test_clients_list(migrated: Run) -> None:
    assert migrated("clients", "list").out == ""
    shop = migrated("clients", "create", "--name", "Shop", "--redirect-uri",
                    "https://app.example/cb", "--json").json()
    phone = migrated("clients", "create", "--name", "Phone", "--type", "public",
                     "--application-type", "native", "--redirect-uri",
                     "http://127.0.0.1/cb", "--json").json()
    listed = migrated("clients", "list", "--json").json()
    by_id = {c["client_id"]: c for c in listed}
    assert set(by_id) == {shop["client_id"], phone["client_id"]}
    shop.pop("client_secret")
    assert by_id[shop["client_id"]] == shop
    assert by_id[phone["client_id"]] == phone
    plain = migrated("clients", "list").out.splitlines()
    assert sorted(plain) == sorted([
        f"{shop['client_id']}  confidential  Shop", f"{phone['client_id']}  public        Phone"])


# --- users -------------------------------------------------------------------------------


def test_users_create_with_claims_and_sign_in(migrated: Run, env: dict[str, str]) -> None:
    result = migrated("users", "create", "--email", "Alice@Example.com", "--password",
                      PASSPHRASE, "--claim", "name=Alice Example", "--claim",
                      "locale=en-GB", "--email-verified", "--json")
    assert result.code == 0, result.err
    created = result.json()
    assert created["email"] == "alice@example.com"
    shop = migrated("clients", "create", "--name", "Shop", "--redirect-uri",
                    "https://app.example/cb", "--json").json()
    app = App(shop["client_id"], shop["client_secret"], "https://app.example/cb")
    info = userinfo_after_sign_in(settings_of(env), app, "alice@example.com", PASSPHRASE)
    assert info["sub"] == created["sub"]
    assert (info["name"], info["locale"]) == ("Alice Example", "en-GB")
    assert info["email_verified"] is True


def test_users_create_plain_output_is_the_subject(migrated: Run, env: dict[str, str]) -> None:
    result = migrated("users", "create", "--email", "bob@example.com", "--password", PASSPHRASE)
    assert result.code == 0, result.err
    shop = migrated("clients", "create", "--name", "Shop", "--redirect-uri",
                    "https://app.example/cb", "--json").json()
    app = App(shop["client_id"], shop["client_secret"], "https://app.example/cb")
    info = userinfo_after_sign_in(settings_of(env), app, "bob@example.com", PASSPHRASE)
    assert result.out == info["sub"] + "\n"
    assert info["email_verified"] is False


def test_duplicate_email_is_refused(migrated: Run) -> None:
    assert migrated("users", "create", "--email", "alice@example.com",
                    "--password", PASSPHRASE).code == 0
    for email in ("alice@example.com", "ALICE@example.com"):
        again = migrated("users", "create", "--email", email, "--password", PASSPHRASE)
        assert again.code == 2
        assert again.err == "idp: an account with this email address exists\n"


def test_password_from_stdin(migrated: Run, env: dict[str, str]) -> None:
    result = migrated("users", "create", "--email", "dana@example.com", "--password-stdin",
                      "--json", stdin=PASSPHRASE + "\n")
    assert result.code == 0, result.err
    assert PASSPHRASE not in result.out + result.err
    shop = migrated("clients", "create", "--name", "Shop", "--redirect-uri",
                    "https://app.example/cb", "--json").json()
    app = App(shop["client_id"], shop["client_secret"], "https://app.example/cb")
    info = userinfo_after_sign_in(settings_of(env), app, "dana@example.com", PASSPHRASE)
    assert info["sub"] == result.json()["sub"]


@pytest.mark.parametrize(("args", "message"), [
    (["--email", "erin@example.com", "--password", "short"],
     "idp: Choose a password of at least 8 characters.\n"),
    (["--email", "not-an-address", "--password", PASSPHRASE],
     "idp: Enter a valid email address.\n"),
    (["--email", "erin@example.com", "--password", PASSPHRASE, "--claim", "sub=x"],
     "idp: sub is not a profile claim\n"),
    (["--email", "erin@example.com", "--password", PASSPHRASE, "--claim", "name"],
     "idp: --claim takes name=value, got 'name'\n"),
])
def test_invalid_users_are_refused(migrated: Run, args: list[str], message: str) -> None:
    result = migrated("users", "create", *args)
    assert (result.code, result.err, result.out) == (2, message, "")


def test_password_is_required(migrated: Run) -> None:
    result = migrated("users", "create", "--email", "erin@example.com")
    assert result.code == 2
    assert "one of the arguments --password --password-stdin is required" in result.err


# --- keys --------------------------------------------------------------------------------


def states(listing: list[dict[str, Any]]) -> dict[str, str]:
    return {k["kid"]: k["state"] for k in listing}


def test_keys_rotate_and_list(migrated: Run) -> None:
    # `idp migrate` made the first keys: one signing and one published next per algorithm.
    initial = migrated("keys", "list", "--json").json()
    assert sorted((k["alg"], k["state"]) for k in initial) == [
        ("ES256", "active"), ("ES256", "next"), ("RS256", "active"), ("RS256", "next")]
    first = migrated("keys", "rotate", "--json")
    assert first.code == 0, first.err
    active = first.json()["active"]
    assert len(set(active)) == 2
    # The published next keys are the ones that start signing.
    assert set(active) == {k["kid"] for k in initial if k["state"] == "next"}
    listing = migrated("keys", "list", "--json").json()
    assert {k["kid"] for k in listing if k["state"] == "active"} == set(active)
    assert sorted(k["alg"] for k in listing if k["state"] == "active") == ["ES256", "RS256"]

    second = migrated("keys", "rotate", "--json").json()["active"]
    assert not set(second) & set(active)
    after = migrated("keys", "list", "--json").json()
    assert {k["kid"] for k in after if k["state"] == "active"} == set(second)
    for key in after:
        if key["kid"] in active:
            # Retired, yet still published until its last token has expired.
            assert key["state"] == "retired"
            assert key["published_until"] > key["retired_at"]

    plain = migrated("keys", "list").out.splitlines()
    assert len(plain) == len(after)
    assert f"{second[0]}  " in "\n".join(plain)


def test_keys_rotate_one_algorithm(migrated: Run) -> None:
    migrated("keys", "rotate")
    before = migrated("keys", "list", "--json").json()
    rotated = migrated("keys", "rotate", "--alg", "ES256", "--json").json()["active"]
    assert len(rotated) == 1
    after = migrated("keys", "list", "--json").json()
    algs = {k["kid"]: k["alg"] for k in after}
    assert algs[rotated[0]] == "ES256"
    rs256 = [k["kid"] for k in before if k["alg"] == "RS256" and k["state"] == "active"]
    assert [k["kid"] for k in after if k["alg"] == "RS256" and k["state"] == "active"] == rs256


# --- settings ----------------------------------------------------------------------------


def run_process(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(IDP), *argv], env=clean_env(**env), capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_installed_command_runs(env: dict[str, str]) -> None:
    result = run_process("migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("database migrated to head\ngenerated signing keys: ")
    again = run_process("migrate", env=env)
    assert (again.returncode, again.stdout) == (0, "database migrated to head\n")


@pytest.mark.no_database  # refused before any database is opened (see the last assert)
@pytest.mark.parametrize(("overrides", "message"), [
    ({"IDP_ISSUER": "http://login.example.com"},
     "idp: invalid settings: issuer must use https outside dev mode (loopback excepted)"),
    ({"IDP_KEY_ENCRYPTION_SECRET": None},
     "idp: invalid settings: IDP_KEY_ENCRYPTION_SECRET is required outside dev mode"),
    ({"IDP_KEY_ENCRYPTION_SECRET": "changeme"},
     "idp: invalid settings: IDP_KEY_ENCRYPTION_SECRET must be at least 32 random characters"),
])
def test_production_refuses_unsafe_settings(tmp_path: Path, overrides: dict[str, Any],
                                            message: str) -> None:
    env = {"IDP_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
           "IDP_ISSUER": ISSUER, "IDP_KEY_ENCRYPTION_SECRET": TEST_SECRET}
    values = {k: v for k, v in {**env, **overrides}.items() if v is not None}
    result = run_process("migrate", env=values)
    assert result.returncode != 0
    assert result.stderr.strip() == message
    assert result.stdout == ""
    assert not (tmp_path / "unused.db").exists()


def test_dev_mode_allows_http_issuer_without_a_secret(env: dict[str, str],
                                                      tmp_path: Path) -> None:
    values = {k: v for k, v in env.items() if k != "IDP_KEY_ENCRYPTION_SECRET"}
    values.update(IDP_ISSUER="http://idp.internal:8080", IDP_DEV_MODE="true",
                  IDP_DATA_DIR=str(tmp_path / "data"))
    assert run_process("migrate", env=values).returncode == 0
    rotated = run_process("keys", "rotate", "--json", env=values)
    assert rotated.returncode == 0, rotated.stderr
    secret_file = tmp_path / "data" / "dev-key-encryption-secret"
    assert len(secret_file.read_text()) >= 32
    listing = run_process("keys", "list", "--json", env=values)
    assert listing.returncode == 0, listing.stderr
    active = {k["kid"] for k in json.loads(listing.stdout) if k["state"] == "active"}
    assert active == set(json.loads(rotated.stdout)["active"])

    # The generated secret was kept, so a later process can still decrypt those keys.
    settings = Settings(issuer="http://idp.internal:8080", dev_mode=True,
                        database_url=env["IDP_DATABASE_URL"], data_dir=tmp_path / "data")
    assert {key.kid for key in asyncio.run(signing_keys(settings))} == active


async def signing_keys(settings: Settings) -> list[Any]:
    ctx = build_context(settings)
    try:
        return list((await ctx.keys.ring()).signing.values())
    finally:
        await ctx.close()
