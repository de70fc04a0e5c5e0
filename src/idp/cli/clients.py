"""`idp clients ...`: registering, changing and listing client apps."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from idp.cli.common import run_admin, run_with_context
from idp.protocol.device import DEVICE_CODE_GRANT
from idp.services import InvalidInput
from idp.services.accounts import admin
from idp.services.context import Context
from idp.settings import Settings

GRANT_TYPE_HELP = ("authorization_code (the default), refresh_token, client_credentials, "
                   "device_code (RFC 8628: sign-in on a TV or speaker, approved on a phone)")


def grant_type(value: str) -> str:
    """`device_code` is short for the device grant's URN (RFC 8628 §3.4)."""
    return DEVICE_CODE_GRANT if value == "device_code" else value


def register(sub: Any) -> None:
    clients = sub.add_parser("clients", help="register, change and list client apps")
    csub = clients.add_subparsers(dest="clients_command", required=True)
    create = csub.add_parser("create", help="register a client; prints its id and secret once")
    create.add_argument("--name", required=True)
    create.add_argument("--redirect-uri", action="append", default=[],
                        help="repeat; required unless the client only uses client_credentials")
    create.add_argument("--type", choices=["public", "confidential"], default="confidential")
    create.add_argument("--application-type", choices=["web", "native"], default="web")
    create.add_argument("--grant-type", action="append", default=None, type=grant_type,
                        help=GRANT_TYPE_HELP)
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
    create.add_argument("--require-par", action="store_true",
                        help="accept this client's authorization requests only pushed to /par "
                             "first (RFC 9126)")
    create.add_argument("--dpop-bound-access-tokens", action="store_true",
                        help="accept this client's token requests only with a DPoP proof "
                             "(RFC 9449 §5.2)")
    create.add_argument("--require-mfa", action=argparse.BooleanOptionalAction, default=False,
                        help="every sign-in to this client uses a second factor (step-up; "
                             "tokens carry acr urn:idp:acr:mfa)")
    add_display_options(create)
    create.add_argument("--subject-type", choices=["public", "pairwise"], default="public",
                        help="pairwise: the app gets a sub of its own sector (OIDC Core §8.1), "
                             "for apps outside the brand's own family; fixed once registered")
    create.add_argument("--sector-identifier-uri", default=None, metavar="URL",
                        help="https URL of a JSON array listing every redirect URI; its host "
                             "is the pairwise sector (needed when redirect URIs span hosts)")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_clients_create)
    update = csub.add_parser(
        "update", help="change a client's registration (the admin API's PATCH, same rules)")
    update.add_argument("client_id")
    update.add_argument("--name", default=None)
    update.add_argument("--redirect-uri", action="append", default=None,
                        help="replaces the registered redirect URIs (repeat for several)")
    update.add_argument("--grant-type", action="append", default=None, type=grant_type,
                        help="replaces the grant types (repeat for several); " + GRANT_TYPE_HELP)
    update.add_argument("--scope", action="append", default=None,
                        help="replaces the allowed scopes (repeat for several)")
    update.add_argument("--require-par", action=argparse.BooleanOptionalAction, default=None,
                        help="accept authorization requests only pushed to /par (RFC 9126)")
    update.add_argument("--dpop-bound-access-tokens", action=argparse.BooleanOptionalAction,
                        default=None,
                        help="accept token requests only with a DPoP proof (RFC 9449 §5.2)")
    update.add_argument("--require-mfa", action=argparse.BooleanOptionalAction, default=None,
                        help="every sign-in to this client uses a second factor")
    add_display_options(update)
    update.add_argument("--sector-identifier-uri", default=None, metavar="URL",
                        help="a pairwise client's sector identifier document (same host)")
    update.add_argument("--json", action="store_true")
    update.set_defaults(func=cmd_clients_update)
    lst = csub.add_parser("list", help="list clients")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_clients_list)


def add_display_options(parser: argparse.ArgumentParser) -> None:
    # OIDC Registration §2: shown on the consent page; on update, "" removes one.
    parser.add_argument("--logo-uri", default=None, metavar="URL",
                        help="the app's logo (https), shown on the consent page")
    parser.add_argument("--policy-uri", default=None, metavar="URL",
                        help="the app's privacy policy (https), linked from the consent page")
    parser.add_argument("--tos-uri", default=None, metavar="URL",
                        help="the app's terms of service (https), linked from the consent page")


def display_options(args: argparse.Namespace) -> dict[str, str]:
    return {key: value for key, value in (("logo_uri", args.logo_uri),
                                          ("policy_uri", args.policy_uri),
                                          ("tos_uri", args.tos_uri)) if value is not None}


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
                require_par=args.require_par,
                dpop_bound_access_tokens=args.dpop_bound_access_tokens,
                require_mfa=args.require_mfa,
                **display_options(args),
                subject_type=args.subject_type,
                sector_identifier_uri=args.sector_identifier_uri,
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
        "require_pushed_authorization_requests": client.require_par,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "require_mfa": client.require_mfa,
        "logo_uri": client.logo_uri, "policy_uri": client.policy_uri, "tos_uri": client.tos_uri,
        "subject_type": client.subject_type,
        "sector_identifier_uri": client.sector_identifier_uri,
    }


def cmd_clients_update(settings: Settings, args: argparse.Namespace) -> int:
    changes = {key: value for key, value in {
        "name": args.name, "redirect_uris": args.redirect_uri, "grant_types": args.grant_type,
        "scopes": args.scope, "require_par": args.require_par,
        "dpop_bound_access_tokens": args.dpop_bound_access_tokens,
        "require_mfa": args.require_mfa,
        "sector_identifier_uri": args.sector_identifier_uri}.items()
        if value is not None} | display_options(args)
    if not changes:
        print("idp: nothing to change (see idp clients update --help)", file=sys.stderr)
        return 2

    async def action(ctx: Context) -> int:
        client = await admin.update_client(ctx, args.client_id, changes)
        data = client_json(client)
        print(json.dumps(data, indent=2) if args.json else f"updated {client.client_id}")
        return 0

    return run_admin(settings, action)


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
