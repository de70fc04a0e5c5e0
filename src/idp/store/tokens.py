"""Refresh token records and the live state access tokens are judged by: revocation by
token, code, grant, browser session or account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    null,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from idp.protocol.privacy import Standing
from idp.store.models import Client, Grant, RefreshToken, TokenRevocation, User
from idp.store.prepared import Connection, Prepared, detached, labelled
from idp.store.privacy import standing_from, with_standing


async def get_refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    return await session.get(RefreshToken, token_hash)


# The hot paths' statements, built once: each request binds its values, and SQLAlchemy's
# compiled-statement cache key is computed once per statement instead of per request.

# Every access token is at most this old (Settings.access_token_ttl's upper bound), so a
# revocation entry older than this names no live token.
REVOCATION_KEPT_SECONDS = 86_400
# An access token can be named by three revocation keys (jti, browser session, code chain);
# a token without one binds an empty string, which no entry has.
_KEYS: tuple[BindParameter[str], ...] = (
    bindparam("k_jti"), bindparam("k_sid"), bindparam("k_chain"))
_REVOKED = (select(TokenRevocation.key).where(TokenRevocation.key.in_(_KEYS))
            .limit(1).scalar_subquery())
# Columns, not entities: the hottest read of all (every UserInfo and introspection call)
# skips the ORM's row loading; the caller gets detached Grant and User objects built from them.
_GRANTS, _USERS = cast(Table, Grant.__table__), cast(Table, User.__table__)


_GRANT_COLUMNS = tuple(column.name for column in _GRANTS.c)
# The account as the token paths read it: everything but its password hash, which they
# never need (and which then never travels on every UserInfo, introspection and refresh).
_USER_COLUMNS = tuple(column.name for column in _USERS.c if column.name != "password_hash")
_USER_READ = [_USERS.c[name].label(f"u_{name}") for name in _USER_COLUMNS]
_CLIENTS = cast(Table, Client.__table__)
# The pairwise sector of the grant's client (OIDC Core §8.1; NULL for a public client).
_SECTOR = (select(_CLIENTS.c.sector_identifier)
           .where(_CLIENTS.c.client_id == _GRANTS.c.client_id)
           .scalar_subquery().label("c_sector"))


def _grant_with_user(*extra: Any) -> Select[*tuple[Any, ...]]:
    """A grant with its account, the account's standing and its client's sector (and
    `extra` columns), as each token path reads it: `GrantState`'s columns. The account's
    privacy choices (the `consent` claim carries them) come in the same statement
    (`idp.store.privacy.with_standing`)."""
    return with_standing(
        select(*labelled(_GRANTS, "g_"), *_USER_READ, *extra, _SECTOR)
        .join(_USERS, _USERS.c.id == _GRANTS.c.user_id), _USERS.c.id)


_USER_TOKEN_STATE = Prepared(_grant_with_user(_REVOKED.label("revoked"))
                             .where(_GRANTS.c.id == bindparam("grant_id")))
# A code's or a device code's grant (no lock: a redemption changes nothing of the grant).
_GRANT_STATE = Prepared(_grant_with_user().where(_GRANTS.c.id == bindparam("grant_id")))
_CLIENT_TOKEN_STATE = Prepared(select(
    select(Client.client_id).where(Client.client_id == bindparam("client_id"))
    .scalar_subquery().label("client_id"), _REVOKED.label("revoked")))
_REFRESHES = cast(Table, RefreshToken.__table__)
_REFRESH_COLUMNS = tuple(column.name for column in _REFRESHES.c)
_REFRESH_TOKEN_STATE = Prepared(with_standing(
    select(*labelled(_REFRESHES, "r_"), *labelled(_GRANTS, "g_"), *_USER_READ,
           _SECTOR)
    .join(_GRANTS, _GRANTS.c.id == _REFRESHES.c.grant_id)
    .join(_USERS, _USERS.c.id == _REFRESHES.c.user_id)
    .where(_REFRESHES.c.token_hash == bindparam("token_hash")), _USERS.c.id))
_LOCK_GRANT = (_grant_with_user()
               .where(_GRANTS.c.id == select(_REFRESHES.c.grant_id)
                      .where(_REFRESHES.c.token_hash == bindparam("token_hash"))
                      .scalar_subquery())
               .with_for_update(of=_GRANTS))
_LOCK_GRANT_OF_REFRESH_TOKEN = Prepared(_LOCK_GRANT)
_CLAIMABLE = (
    # (Bind names differ from the column names: an UPDATE reserves those for SET.)
    _REFRESHES.c.token_hash == bindparam("b_token_hash"),
    # RFC 6749 §10.4: bound to the client it was issued to.
    _REFRESHES.c.client_id == bindparam("b_client_id"),
    _REFRESHES.c.used_at.is_(None),
    _REFRESHES.c.revoked_at.is_(None),
    _REFRESHES.c.expires_at > bindparam("b_now"),
    _REFRESHES.c.idle_expires_at > bindparam("b_now"),
    # RFC 9449 §5: one bound to a DPoP key only with a proof of that key (a NULL b_jkt,
    # no proof, matches no bound token). Left unclaimed otherwise: the holder's next
    # refresh must not look like a reuse.
    or_(_REFRESHES.c.dpop_jkt.is_(None), _REFRESHES.c.dpop_jkt == bindparam("b_jkt")),
)
_CLAIM_REFRESH_TOKEN = Prepared(
    update(_REFRESHES).where(*_CLAIMABLE).values(used_at=bindparam("b_now"))
    .returning(*_REFRESHES.c))


def _rotation() -> Any:
    """The whole of a refresh token's rotation as one PostgreSQL statement (its own
    transaction): lock the grant, claim the token, insert its successor, and read back the
    claimed row with the grant and its account. It rotates only a token every check of the
    refresh grant would pass; anything else it leaves untouched, for the general path.

    - Locks in the order every refresh and revocation takes them, grant first: the claim's
      condition reads the locked grant, so PostgreSQL locks it before the token's row.
    - Of concurrent rotations of one token one wins: the loser, waiting on the grant's lock,
      re-reads the claimed row (READ COMMITTED's recheck) and finds it used.
    - The claim holds only when the grant is live and is the token's, with the token's
      account; when the token is not a device's (issue 13 item 2 asks the purposes, in
      Python); and when `b_requested` (JSON, or NULL for no `scope`) narrows the token's scope
      (RFC 6749 §6). The successor is inserted from the claimed row, so there is one only
      when the claim holds; one statement commits both or neither."""
    state = _LOCK_GRANT.cte("state")
    # (none_as_null: JSON's None is otherwise the JSON text null, which is not NULL.)
    requested = bindparam("b_requested", type_=JSONB(none_as_null=True))
    claimed = (
        update(_REFRESHES)
        .where(*_CLAIMABLE,
               _REFRESHES.c.device.is_(False),
               _REFRESHES.c.grant_id == select(state.c.g_id)
               .where(state.c.g_revoked_at.is_(None),
                      state.c.u_id == _REFRESHES.c.user_id).scalar_subquery(),
               or_(requested.is_(None),
                   sql_cast(_REFRESHES.c.scopes, JSONB).op("@>")(requested)))
        .values(used_at=bindparam("b_now"))
        .returning(*_REFRESHES.c).cte("claimed"))
    carried = {name: claimed.c[name] for name in _REFRESH_COLUMNS}
    successor_values = {
        **carried,
        "token_hash": bindparam("s_token_hash"), "created_at": bindparam("b_now"),
        # mint_refresh_token's lifetimes: the chain's end, and the idle one within it.
        "idle_expires_at": func.least(claimed.c.expires_at, bindparam("s_idle_until")),
        "used_at": null(), "revoked_at": null(), "dpop_jkt": bindparam("s_jkt"),
    }
    successor = (insert(_REFRESHES)
                 .from_select(list(_REFRESH_COLUMNS),
                              select(*(successor_values[name] for name in _REFRESH_COLUMNS)))
                 .returning(_REFRESHES.c.token_hash).cte("successor"))
    return (select(*labelled(cast(Table, claimed), "r_"), *state.c,
                   select(successor.c.token_hash).scalar_subquery().label("s_token_hash"))
            .join_from(claimed, state, state.c.g_id == claimed.c.grant_id))


# PostgreSQL only (a data-modifying WITH); compiled when first run.
_ROTATE_REFRESH_TOKEN = Prepared(_rotation())


@dataclass(frozen=True)
class GrantState:
    """A grant as the token paths read it: detached (read it, never change it), with its
    account, the account's standing (privacy choices, withheld purposes) and the pairwise
    sector of the grant's client (None for a public client)."""

    grant: Grant
    user: User
    standing: Standing
    sector: str | None


@dataclass(frozen=True)
class Successor:
    """What a rotation's new refresh token does not carry over from the one it replaces:
    its digest, the end of its idle lifetime (before the chain's end caps it), and the DPoP
    key it is bound to."""

    token_hash: str
    idle_until: int
    jkt: str | None


def _grant_state(values: Mapping[Any, Any]) -> GrantState:
    return GrantState(detached(Grant, "g_", _GRANT_COLUMNS, values),
                      detached(User, "u_", _USER_COLUMNS, values), standing_from(values),
                      values["c_sector"])


def chain_of(code_hash: str) -> str:
    """The name the tokens descended from one authorization code share (access tokens carry
    it as `chain`): half the code's digest, which says nothing about the used code."""
    return code_hash[:32]


def revocation_keys(jti: str, sid: str | None, chain: str | None) -> dict[str, str]:
    return {"k_jti": f"jti:{jti}", "k_sid": f"sid:{sid}" if sid else "",
            "k_chain": f"code:{chain}" if chain else ""}


async def user_token_state(session: Connection, grant_id: str,
                           keys: dict[str, str]) -> tuple[GrantState, bool] | None:
    """What an end-user's access token is judged by, in one statement: its grant with the
    grant's user, and whether any of its revocation keys was revoked."""
    values = await _USER_TOKEN_STATE.first(session, {"grant_id": grant_id, **keys})
    if values is None:
        return None
    return _grant_state(values), values["revoked"] is not None


async def grant_state(connection: Connection, grant_id: str) -> GrantState | None:
    """What tokens issued under the grant say: the grant, its account, and the account's
    standing, in one statement (all detached); None when either is gone."""
    values = await _GRANT_STATE.first(connection, {"grant_id": grant_id})
    return _grant_state(values) if values is not None else None


async def client_token_state(session: Connection, client_id: str,
                             keys: dict[str, str]) -> tuple[bool, bool]:
    """A client's own access token, in one statement: whether the client still exists, and
    whether the token was revoked."""
    values = await _CLIENT_TOKEN_STATE.first(session, {"client_id": client_id, **keys})
    assert values is not None  # a SELECT of two scalar subqueries has one row
    return values["client_id"] is not None, values["revoked"] is not None


async def refresh_token_state(session: Connection, token_hash: str
                              ) -> tuple[RefreshToken, GrantState] | None:
    """A refresh token with its grant and its user, in one statement (all detached). None
    when any of them is gone."""
    values = await _REFRESH_TOKEN_STATE.first(session, {"token_hash": token_hash})
    if values is None:
        return None
    return detached(RefreshToken, "r_", _REFRESH_COLUMNS, values), _grant_state(values)


async def lock_grant_of_refresh_token(session: Connection, token_hash: str
                                      ) -> GrantState | None:
    """Take the row lock of the grant the refresh token belongs to (PostgreSQL; SQLite's
    BEGIN IMMEDIATE already serialises writers). Every refresh of a grant, and the reuse
    revocation a losing one runs, then goes one at a time. Without it, twenty parallel
    refreshes deadlocked: a loser keeps the lock of the token row it re-checked, while
    another loser that skipped that row already holds others of the grant's tokens.

    Returns the grant and its user, so the refresh that follows reads them under the lock
    and not again."""
    values = await _LOCK_GRANT_OF_REFRESH_TOKEN.first(session, {"token_hash": token_hash})
    return _grant_state(values) if values is not None else None


async def claim_refresh_token(session: Connection, token_hash: str,
                              client_id: str, now: int, jkt: str | None = None
                              ) -> RefreshToken | None:
    """Mark a live refresh token used; only one concurrent caller gets the row (REL-02).
    `jkt`: the key of the request's DPoP proof. The row is detached (read it, never change
    it): built the way the ORM loads rows, not through the constructor's change tracking."""
    values = await _CLAIM_REFRESH_TOKEN.first(session, {
        "b_token_hash": token_hash, "b_client_id": client_id, "b_now": now, "b_jkt": jkt})
    return detached(RefreshToken, "", _REFRESH_COLUMNS, values) if values is not None else None


async def rotate_refresh_token(connection: Connection, token_hash: str, client_id: str,
                               now: int, jkt: str | None, requested: list[str] | None,
                               successor: Successor) -> tuple[RefreshToken, GrantState] | None:
    """PostgreSQL: the token rotated to `successor` in one statement and one round trip, with
    what it was claimed as and its grant's state; None when it was left as it was because
    some check of the refresh would fail (the caller's general path says which). See
    `_rotation`; `jkt` and `requested` are as `claim_refresh_token`'s and the `scope`
    parameter (parsed)."""
    values = await _ROTATE_REFRESH_TOKEN.first(connection, {
        "token_hash": token_hash, "b_token_hash": token_hash, "b_client_id": client_id,
        "b_now": now, "b_jkt": jkt, "b_requested": requested,
        "s_token_hash": successor.token_hash, "s_idle_until": successor.idle_until,
        "s_jkt": successor.jkt})
    if values is None:
        return None
    # The successor's row is the statement's own: read back, it proves the insert ran.
    assert values["s_token_hash"] == successor.token_hash
    return detached(RefreshToken, "r_", _REFRESH_COLUMNS, values), _grant_state(values)


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def _revoke_refresh(session: AsyncSession, now: int, *criteria: Any) -> int:
    """Mark the live refresh tokens matching the criteria revoked; the one UPDATE behind
    every revocation below. Row locks are taken grant first, then its refresh tokens, as
    every refresh takes them: twenty parallel refreshes deadlocked in any other order."""
    return _count(await session.execute(
        update(RefreshToken).where(RefreshToken.revoked_at.is_(None), *criteria)
        .values(revoked_at=now)))


async def _raise_epoch(session: AsyncSession, *criteria: Any) -> int:
    """End every access token issued so far under the matching grants."""
    return _count(await session.execute(
        update(Grant).where(*criteria).values(token_epoch=Grant.token_epoch + 1)
        .execution_options(synchronize_session="fetch")))


async def _add_revocations(session: AsyncSession, keys: list[str], now: int) -> None:
    if not keys:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    # Revoking twice is revoking once: the first entry stands.
    await session.execute(
        insert(TokenRevocation).on_conflict_do_nothing(index_elements=["key"]),
        [{"key": key, "revoked_at": now, "expires_at": now + REVOCATION_KEPT_SECONDS}
         for key in keys])


async def revoke_by_code(session: AsyncSession, code_hash: str, now: int) -> int:
    """Every access and refresh token descended from one authorization code: the code's own
    tokens and the refresh chain it began (each link carries the code's digest)."""
    await _add_revocations(session, [f"code:{chain_of(code_hash)}"], now)
    return await _revoke_refresh(session, now, RefreshToken.code_hash == code_hash)


async def revoke_by_grant(session: AsyncSession, grant_id: str, now: int) -> int:
    """Every access and refresh token issued under the grant."""
    await _raise_epoch(session, Grant.id == grant_id)
    return await _revoke_refresh(session, now, RefreshToken.grant_id == grant_id)


async def revoke_by_session(session: AsyncSession, sid: str, now: int) -> int:
    """What a browser session issued, except refresh tokens granted offline_access."""
    await _add_revocations(session, [f"sid:{sid}"], now)
    return await _revoke_refresh(session, now, RefreshToken.sid == sid,
                                 RefreshToken.offline.is_(False))


async def revoke_all_of_sessions(session: AsyncSession, sids: list[str], now: int) -> int:
    """Every token issued in these browser sessions, offline refresh tokens included: an
    upstream revocation withdraws everything that login led to (federation.md §9 req 27)."""
    if not sids:
        return 0
    await _add_revocations(session, [f"sid:{sid}" for sid in sids], now)
    return await _revoke_refresh(session, now, RefreshToken.sid.in_(sids))


async def revoke_access_token(session: AsyncSession, jti: str, now: int) -> None:
    await _add_revocations(session, [f"jti:{jti}"], now)


async def revoke_refresh_tokens_of_user(session: AsyncSession, user_id: str, now: int) -> int:
    """Every refresh token of the account, offline ones included (ATO-11, RFC 9700 §4.14.2)."""
    return await _revoke_refresh(session, now, RefreshToken.user_id == user_id)


async def revoke_all_of_user(session: AsyncSession, user_id: str, now: int) -> int:
    """Every access and refresh token of the account: it was deactivated (federation.md §9
    requirement 27, `account-delete` with no other way in)."""
    await _raise_epoch(session, Grant.user_id == user_id)
    return await _revoke_refresh(session, now, RefreshToken.user_id == user_id)


async def purge_revocations(session: AsyncSession, now: int) -> None:
    await session.execute(delete(TokenRevocation).where(TokenRevocation.expires_at <= now))
