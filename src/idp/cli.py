"""The `idp` command: serve, migrate, and operate clients, users and keys."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from idp.cli_accounts import add_account_commands
from idp.cli_consent import add_consent_commands
from idp.cli_export import add_export_command
from idp.cli_support import run_with_context
from idp.services import InvalidInput
from idp.services.accounts import admin
from idp.services.context import Context
from idp.settings import Settings
from idp.store import migrate

log = logging.getLogger("idp")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise SystemExit(f"idp: invalid settings: {problems}") from None


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    migrate.upgrade(settings.database_url, args.revision)
    print(f"database migrated to {args.revision}")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from idp.main import create_app

    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    migrate.upgrade(settings.database_url)

    async def prepare(ctx: Context) -> int:
        created = await ctx.keys.ensure_keys()
        if created:
            print(f"generated signing keys: {', '.join(created)}")
        try:
            # Decrypt the keys now: a wrong IDP_KEY_ENCRYPTION_SECRET must stop the start,
            # not turn every token request into a 500 behind a healthy readiness check.
            await ctx.keys.ring()
        except RuntimeError as exc:
            print(f"idp: {exc}", file=sys.stderr)
            return 1
        if not await admin.list_clients(ctx):
            print(FIRST_RUN.format(issuer=settings.issuer))
        return 0

    if run_with_context(settings, prepare) != 0:
        return 1
    print(f"idp serving {settings.issuer} (discovery: "
          f"{settings.issuer}/.well-known/openid-configuration)", flush=True)
    uvicorn.run(
        create_app(settings), host=args.host, port=args.port, access_log=False,
        proxy_headers=False, timeout_graceful_shutdown=10, log_level=settings.log_level.lower(),
    )
    return 0


FIRST_RUN = """
No clients yet. Create a first app and customer (in another terminal, same environment):

  .venv/bin/idp clients create --name "My app" --redirect-uri http://127.0.0.1:3000/callback \\
      --type public --application-type native --json
  .venv/bin/idp users create --email alice@example.com --password 'a long passphrase'

Then send the browser to {issuer}/authorize?... (authorization code + PKCE S256).
"""


def cmd_clients_create(settings: Settings, args: argparse.Namespace) -> int:
    jwks = None
    if args.jwks_file:
        try:
            with open(args.jwks_file, encoding="utf-8") as handle:
                jwks = json.load(handle)
        except (OSError, ValueError) as exc:
            print(f"idp: cannot read a JWK set from {args.jwks_file}: {exc}", file=sys.stderr)
            return 2

    async def action(ctx: Context) -> int:
        try:
            new = await admin.create_client(
                ctx, name=args.name, redirect_uris=args.redirect_uri, client_type=args.type,
                application_type=args.application_type, grant_types=args.grant_type,
                scopes=args.scope, token_endpoint_auth_method=args.auth_method,
                id_token_signed_response_alg=args.id_token_alg,
                require_pkce=not args.no_pkce,
                long_sessions=args.long_sessions,
                post_logout_redirect_uris=args.post_logout_redirect_uri,
                backchannel_logout_uri=args.backchannel_logout_uri,
                jwks=jwks, jwks_uri=args.jwks_uri,
                optional_scopes=args.optional_scope, event_uri=args.event_uri,
            )
        except InvalidInput as exc:
            print(f"idp: {exc}", file=sys.stderr)
            return 2
        data = client_json(new.client)
        if new.client_secret:
            data["client_secret"] = new.client_secret
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            print(f"client_id: {new.client.client_id}")
            if new.client_secret:
                print(f"client_secret: {new.client_secret}  (shown once; store it now)")
        return 0

    return run_with_context(settings, action)


def client_json(client: Any) -> dict[str, Any]:
    return {
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "long_sessions": client.long_sessions,
        "client_id": client.client_id, "client_name": client.name,
        "client_type": client.client_type, "application_type": client.application_type,
        "redirect_uris": list(client.redirect_uris), "grant_types": list(client.grant_types),
        "scope": " ".join(client.allowed_scopes),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "require_pkce": client.require_pkce,
    }


def cmd_clients_list(settings: Settings, args: argparse.Namespace) -> int:
    async def action(ctx: Context) -> int:
        clients = [client_json(c) for c in await admin.list_clients(ctx)]
        if args.json:
            print(json.dumps(clients, indent=2))
        else:
            for c in clients:
                print(f"{c['client_id']}  {c['client_type']:<12}  {c['client_name']}")
        return 0

    return run_with_context(settings, action)


def cmd_users_create(settings: Settings, args: argparse.Namespace) -> int:
    profile: dict[str, Any] = {}
    for item in args.claim:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"idp: --claim takes name=value, got {item!r}", file=sys.stderr)
            return 2
        profile[name] = value
    password = args.password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")

    async def action(ctx: Context) -> int:
        try:
            user = await admin.create_user(ctx, email=args.email, password=password,
                                           profile=profile, email_verified=args.email_verified)
        except InvalidInput as exc:
            print(f"idp: {exc}", file=sys.stderr)
            return 2
        print(json.dumps({"sub": user.id, "email": user.email}) if args.json else user.id)
        return 0

    return run_with_context(settings, action)


def cmd_sessions_end(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.signin.sessions import end_user_sessions

    async def action(ctx: Context) -> int:
        ended = await end_user_sessions(ctx, args.email)
        if ended is None:
            print(f"idp: no account for {args.email}", file=sys.stderr)
            return 2
        print(f"ended {ended} session(s); apps are notified by back-channel logout")
        return 0

    return run_with_context(settings, action)


def cmd_upstreams_add(settings: Settings, args: argparse.Namespace) -> int:
    from pydantic import ValidationError as ConfigError

    from idp.federation.config import UpstreamConfig
    from idp.services.upstream.providers import parse_config_file, save_upstream

    try:
        with open(args.config_file, encoding="utf-8") as handle:
            config = UpstreamConfig.model_validate(parse_config_file(handle.read()))
    except (OSError, ValueError, ConfigError) as exc:
        # Never echo the file: it holds the upstream's secrets (requirement 13).
        print(f"idp: the upstream configuration is not valid: {type(exc).__name__}",
              file=sys.stderr)
        return 2

    async def action(ctx: Context) -> int:
        await save_upstream(ctx, config)
        print(json.dumps({"alias": config.alias, "type": config.type}))
        return 0

    return run_with_context(settings, action)


def cmd_upstreams_list(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.upstream.providers import enabled_upstreams

    async def action(ctx: Context) -> int:
        print(json.dumps(await enabled_upstreams(ctx), indent=2))
        return 0

    return run_with_context(settings, action)


def cmd_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    from idp.store import keys as key_store

    async def action(ctx: Context) -> int:
        async with ctx.db.transaction() as session:
            rows = await key_store.all_keys(session)
        data = [{"kid": r.kid, "alg": r.alg, "state": r.state, "created_at": r.created_at,
                 "retired_at": r.retired_at, "published_until": r.publish_until} for r in rows]
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            for k in data:
                print(f"{k['kid']}  {k['alg']}  {k['state']}")
        return 0

    return run_with_context(settings, action)


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    async def action(ctx: Context) -> int:
        created = await ctx.keys.rotate(tuple(args.alg) if args.alg else ("RS256", "ES256"))
        print(json.dumps({"active": created}) if args.json else "\n".join(created))
        return 0

    return run_with_context(settings, action)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the app; independent of the settings' values."""
    from idp.main import create_app

    settings = Settings(dev_mode=True, database_url="sqlite+aiosqlite:///:memory:")
    return create_app(settings).openapi()


def cmd_openapi(settings: Settings | None, args: argparse.Namespace) -> int:
    text = json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate, create keys if needed, and serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="upgrade the database schema")
    mig.add_argument("--revision", default="head")
    mig.set_defaults(func=cmd_migrate)

    clients = sub.add_parser("clients", help="register and list client apps")
    csub = clients.add_subparsers(dest="clients_command", required=True)
    create = csub.add_parser("create", help="register a client; prints its id and secret once")
    create.add_argument("--name", required=True)
    create.add_argument("--redirect-uri", action="append", default=[], required=True)
    create.add_argument("--type", choices=["public", "confidential"], default="confidential")
    create.add_argument("--application-type", choices=["web", "native"], default="web")
    create.add_argument("--grant-type", action="append", default=None)
    create.add_argument("--scope", action="append", default=None,
                        help="allowed scope (repeat); default: openid profile email")
    create.add_argument("--auth-method", default=None,
                        choices=["client_secret_basic", "client_secret_post", "private_key_jwt",
                                 "none"])
    create.add_argument("--id-token-alg", choices=["RS256", "ES256"], default="RS256")
    create.add_argument("--no-pkce", action="store_true",
                        help="confidential clients only: do not require PKCE")
    create.add_argument("--long-sessions", action="store_true",
                        help="issue refresh tokens without offline_access")
    create.add_argument("--post-logout-redirect-uri", action="append", default=[])
    create.add_argument("--backchannel-logout-uri", default=None)
    create.add_argument("--optional-scope", action="append", default=[],
                        help="a scope the customer may decline on the consent page")
    create.add_argument("--event-uri", default=None,
                        help="RFC 8935 push endpoint for consent and session events")
    create.add_argument("--jwks-file", default=None, metavar="PATH",
                        help="private_key_jwt: a JSON file with the app's public JWK set")
    create.add_argument("--jwks-uri", default=None, metavar="URL",
                        help="private_key_jwt: where the app publishes its public JWK set")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_clients_create)
    lst = csub.add_parser("list", help="list clients")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_clients_list)

    users = sub.add_parser("users", help="create and delete customer accounts")
    usub = users.add_subparsers(dest="users_command", required=True)
    ucreate = usub.add_parser("create")
    ucreate.add_argument("--email", required=True)
    pw = ucreate.add_mutually_exclusive_group(required=True)
    pw.add_argument("--password")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    ucreate.add_argument("--claim", action="append", default=[], help="profile claim name=value")
    ucreate.add_argument("--email-verified", action="store_true")
    ucreate.add_argument("--json", action="store_true")
    ucreate.set_defaults(func=cmd_users_create)
    add_account_commands(sub, usub)
    add_export_command(usub)

    add_consent_commands(sub)

    upstreams = sub.add_parser("upstreams", help="sign-in providers (Google, Apple, OIDC)")
    upsub = upstreams.add_subparsers(dest="upstreams_command", required=True)
    upadd = upsub.add_parser("add", help="add or replace a provider from a JSON file")
    upadd.add_argument("--config-file", required=True,
                       help="UpstreamConfig as JSON (alias, type, client_id, secrets, URLs)")
    upadd.set_defaults(func=cmd_upstreams_add)
    uplist = upsub.add_parser("list")
    uplist.set_defaults(func=cmd_upstreams_list)

    sessions = sub.add_parser("sessions", help="customer sessions")
    ssub = sessions.add_subparsers(dest="sessions_command", required=True)
    send = ssub.add_parser("end", help="sign a customer out everywhere (apps are told)")
    send.add_argument("--email", required=True)
    send.set_defaults(func=cmd_sessions_end)

    api = sub.add_parser("openapi", help="write the OpenAPI document (default: stdout)")
    api.add_argument("--output", default="-")
    api.set_defaults(func=cmd_openapi, needs_settings=False)

    keys = sub.add_parser("keys", help="signing keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    klist = ksub.add_parser("list")
    klist.add_argument("--json", action="store_true")
    klist.set_defaults(func=cmd_keys_list)
    krot = ksub.add_parser("rotate", help="make new keys current; old ones stay published")
    krot.add_argument("--alg", action="append", choices=["RS256", "ES256"])
    krot.add_argument("--json", action="store_true")
    krot.set_defaults(func=cmd_keys_rotate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings() if getattr(args, "needs_settings", True) else None
    result: int = args.func(settings, args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
