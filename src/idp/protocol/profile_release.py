"""Which profile attributes an app may receive or write, and which ones its authorization
request may collect, as plain functions over the schema, the grant and the profile.

The rule (issue 16 item 2): an attribute goes to an app only for a purpose the customer
granted to that app, and a standard claim only under a scope the customer granted (OIDC Core
§5.4). When the customer limits the use of their sensitive personal information (CPRA, Cal.
Civ. Code §1798.121), an attribute flagged sensitive serves only purposes whose legal basis is
`contract` (what the customer asked for: §1798.121(a) allows use "necessary to perform the
services").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from idp.protocol.profile import APP_WRITABLE, AttributeDef, ProfileSchema
from idp.protocol.scopes import claims_for_scopes

MAX_COLLECTED = 10  # inputs one consent page asks for at most


def serving_purposes(defn: AttributeDef, granted: Collection[str],
                     legal_bases: Mapping[str, str], limit_sensitive: bool) -> tuple[str, ...]:
    """The attribute's purposes the grant covers, as far as the customer's CPRA choice lets
    them serve; empty: the attribute is not for this app."""
    purposes = tuple(p for p in defn.purposes if p in granted)
    if defn.sensitive and limit_sensitive:
        purposes = tuple(p for p in purposes if legal_bases.get(p) == "contract")
    return purposes


def readable(schema: ProfileSchema, scopes: Collection[str], granted: Collection[str],
             limit_sensitive: bool) -> set[str]:
    """What the Profile API shows an app: custom attributes for granted purposes, standard
    claims under granted scopes (a sensitive one only as its purposes allow)."""
    by_scope = claims_for_scopes(list(scopes))
    names = set()
    for defn in schema.attributes.values():
        if not defn.standard:
            if serving_purposes(defn, granted, schema.legal_bases, limit_sensitive):
                names.add(defn.name)
        elif defn.name in by_scope:
            names.add(defn.name)
    return names - withheld_standard(schema, names, granted, limit_sensitive)


def claim_names(schema: ProfileSchema, scopes: Collection[str], granted: Collection[str],
                target: str, claims_param: dict[str, Any] | None, limit_sensitive: bool
                ) -> set[str]:
    """Custom attributes released as claims to `target` ("userinfo" or "id_token"): under a
    granted operator scope (to UserInfo by scope, OIDC Core §5.4; to either target when the
    `claims` request names them, §5.5) and for a granted purpose."""
    wanted = set((claims_param or {}).get(target) or {})
    names = set()
    for defn in schema.custom:
        if defn.scope is None or defn.scope not in scopes:
            continue
        if target != "userinfo" and defn.name not in wanted:
            continue
        if serving_purposes(defn, granted, schema.legal_bases, limit_sensitive):
            names.add(defn.name)
    return names


def withheld_standard(schema: ProfileSchema, released: Iterable[str], granted: Collection[str],
                      limit_sensitive: bool) -> set[str]:
    """Standard claims flagged sensitive that the customer's CPRA choice keeps back."""
    if not limit_sensitive:
        return set()
    return {n for n in released if (d := schema.attributes.get(n)) is not None and d.standard
            and d.sensitive and not serving_purposes(d, granted, schema.legal_bases, True)}


def write_refusal(defn: AttributeDef, granted: Collection[str], legal_bases: Mapping[str, str],
                  limit_sensitive: bool) -> str | None:
    """Why an app may not write this attribute, or None (issue 16 item 2: attitudinal and
    behavioral attributes only, and only for a purpose the customer granted to that app)."""
    if defn.data_type not in APP_WRITABLE:
        return f"{defn.name} is {defn.data_type} data: apps may write attitudinal and " \
               "behavioral attributes only"
    if not serving_purposes(defn, granted, legal_bases, limit_sensitive):
        return f"{defn.name}: the customer's consent to this app covers none of its " \
               f"purposes ({', '.join(defn.purposes)})"
    return None


def requested_names(claims_param: dict[str, Any] | None) -> list[str]:
    """Attribute names a `claims` request asks for, in order, each once."""
    names: dict[str, None] = {}
    for member in ("userinfo", "id_token"):
        requested = (claims_param or {}).get(member) or {}
        names.update(dict.fromkeys(str(n) for n in requested))
    return list(names)


def to_collect(schema: ProfileSchema, claims_param: dict[str, Any] | None,
               profile: Mapping[str, Any], app_purposes: Collection[str]
               ) -> list[AttributeDef]:
    """Progressive profiling (issue 16 item 3): attributes the `claims` request names that
    the profile lacks and the customer may fill in: editable ones, and for a custom
    attribute one that serves a purpose of this app (else it could never reach it)."""
    found = []
    for name in requested_names(claims_param):
        defn = schema.attributes.get(name)
        if defn is None or not defn.customer_editable or profile.get(name) not in (None, ""):
            continue
        if defn.type == "address" or (not defn.standard and
                                      not set(defn.purposes) & set(app_purposes)):
            continue
        found.append(defn)
    return found[:MAX_COLLECTED]
