"""Authorization requests pushed by clients (RFC 9126) and pending ones waiting for the
end-user."""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Integer,
    String,
    Table,
    bindparam,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from idp.domain import ClientConfig
from idp.store import users as user_store
from idp.store.clients import to_config
from idp.store.models import AuthorizationCode, Client, Interaction, PushedRequest, User
from idp.store.prepared import Connection, Prepared, detached, labelled


def _could_be_id(interaction_id: str) -> bool:
    """False for what no interaction's id can be (PostgreSQL text cannot even hold a NUL)."""
    return bool(interaction_id) and len(interaction_id) <= 64 and "\x00" not in interaction_id


async def get_interaction(session: AsyncSession, interaction_id: str, now: int
                          ) -> Interaction | None:
    if not _could_be_id(interaction_id):
        return None
    # Locked (PostgreSQL) for the caller's unit of work: a double-submitted form's two
    # requests take turns, and the second finds what the first left (or nothing) instead of
    # updating a row the first has deleted. SQLite's writers take turns anyway.
    row = await session.get(Interaction, interaction_id, with_for_update=True)
    if row is None or row.expires_at <= now:
        return None
    return row


_INTERACTIONS = cast(Table, Interaction.__table__)
_COLUMNS = tuple(column.name for column in _INTERACTIONS.c)
_LOCK = Prepared(select(*_INTERACTIONS.c).where(_INTERACTIONS.c.id == bindparam("b_id"))
                 .with_for_update())
_CLIENTS = cast(Table, Client.__table__)
_CLIENT_COLUMNS = tuple(column.name for column in _CLIENTS.c)
# A sign-in page's read: the interaction and its app's registration, in one statement and
# without a lock (the page only shows them; the form's POST locks the interaction).
_FOR_PAGE = Prepared(
    select(*labelled(_INTERACTIONS, "i_"), *labelled(_CLIENTS, "c_"))
    .select_from(_INTERACTIONS.outerjoin(
        _CLIENTS, _CLIENTS.c.client_id == _INTERACTIONS.c.client_id))
    .where(_INTERACTIONS.c.id == bindparam("b_id")))


async def interaction_for_page(connection: Connection, interaction_id: str, now: int
                               ) -> tuple[Interaction, ClientConfig | None] | None:
    """The open interaction (detached, read-only) and its app's registration (None when the
    app is gone), from one prepared read; None when there is no such open interaction."""
    if not _could_be_id(interaction_id):
        return None
    values = await _FOR_PAGE.first(connection, {"b_id": interaction_id})
    if values is None or values["i_expires_at"] <= now:
        return None
    interaction = detached(Interaction, "i_", _COLUMNS, values)
    if values["c_client_id"] is None:
        return interaction, None
    return interaction, to_config(detached(Client, "c_", _CLIENT_COLUMNS, values))


# A new interaction is written with every column but the pending import (NULL until an
# upstream login offers one).
_NEW = tuple(name for name in _COLUMNS if name != "pending_import")
_INSERT = Prepared(insert(_INTERACTIONS).values({name: bindparam(name) for name in _NEW}))


async def add_interaction(connection: Connection, row: Interaction) -> None:
    """A new interaction, written at once (the object stays outside any unit of work: a
    change to it later goes through this module, as to a detached one)."""
    await _INSERT.run(connection, {name: getattr(row, name) for name in _NEW})


_SET_SESSION_SID = Prepared(update(_INTERACTIONS).where(_INTERACTIONS.c.id == bindparam("b_id"))
                            .values(session_sid=bindparam("b_sid")))


async def lock_interaction(connection: Connection, interaction_id: str, now: int
                           ) -> Interaction | None:
    """`get_interaction`, locked the same way, as a detached object from one prepared read
    (the password sign-in's): read it; its one change, `signed_in_here`, is written at once."""
    if not _could_be_id(interaction_id):
        return None
    values = await _LOCK.first(connection, {"b_id": interaction_id})
    if values is None or values["expires_at"] <= now:
        return None
    return detached(Interaction, "", _COLUMNS, values)


async def signed_in_here(connection: Connection, interaction: Interaction, sid: str) -> None:
    """The customer signed in at this interaction with the session `sid` (the next page sees
    it): on the unit of work's own object, written with it; on a detached one, now."""
    interaction.session_sid = sid
    if not (isinstance(connection, AsyncSession) and interaction in connection):
        await _SET_SESSION_SID.run(connection, {"b_id": interaction.id, "b_sid": sid})


_PENDING = Prepared(select(_INTERACTIONS.c.client_id).where(
    _INTERACTIONS.c.id == bindparam("b_id"),
    _INTERACTIONS.c.browser_hash == bindparam("b_browser_hash"),
    _INTERACTIONS.c.expires_at > bindparam("b_now")))


# The login page's password post asks both in one round trip: the client of the interaction
# while it is open for this browser (NULL otherwise), and the account the address names (its
# columns NULL when there is none).
_USERS = cast(Table, User.__table__)
_PENDING_AND_ACCOUNT = Prepared(
    select(_PENDING.statement.scalar_subquery().label("pending_client_id"),
           *user_store.ACCOUNT_COLUMNS)
    .select_from(select(literal(1).label("one")).subquery())
    .outerjoin(_USERS, _USERS.c.email == bindparam("b_email")))


async def pending_client_and_account(connection: Connection, interaction_id: str,
                                     browser_hash: str, now: int, email: str
                                     ) -> tuple[str | None, tuple[User, bool] | None]:
    """`pending_client` and `users.account_by_email` in one statement."""
    address = "" if "\x00" in email else user_store.normalize_email(email)  # no such account
    row = await _PENDING_AND_ACCOUNT.first(connection, {
        "b_id": interaction_id if _could_be_id(interaction_id) else "",
        "b_browser_hash": browser_hash, "b_now": now, "b_email": address})
    assert row is not None  # one row, whatever matched
    client_id = row["pending_client_id"]
    return (None if client_id is None else str(client_id)), user_store.account_of(row)


async def pending_client(connection: Connection, interaction_id: str, browser_hash: str,
                         now: int) -> str | None:
    """The client of the interaction while it is still open for this browser, else None: the
    cheap check a password attempt makes before it is counted and the hash work is spent."""
    if not _could_be_id(interaction_id):
        return None
    row = await _PENDING.first(connection, {"b_id": interaction_id,
                                            "b_browser_hash": browser_hash, "b_now": now})
    return None if row is None else str(row["client_id"])


_DELETE = Prepared(delete(_INTERACTIONS).where(_INTERACTIONS.c.id == bindparam("b_id")),
                   batched=True)


async def delete_interaction(connection: Connection, interaction_id: str) -> None:
    """The interaction ends. A unit of work that loaded it lets go of its object, with any
    change to it not yet written, as the ORM's own DELETE would."""
    await _DELETE.run(connection, {"b_id": interaction_id})
    if isinstance(connection, AsyncSession):
        held = connection.identity_map.get(identity_key(Interaction, interaction_id))
        if held is not None:
            connection.expunge(held)


async def purge_expired(session: AsyncSession, now: int) -> None:
    await session.execute(delete(Interaction).where(Interaction.expires_at <= now))
    await session.execute(delete(PushedRequest).where(PushedRequest.expires_at <= now))


def add_pushed(session: AsyncSession, handle_hash: str, client_id: str,
               params: dict[str, str], now: int, expires_at: int) -> None:
    session.add(PushedRequest(handle_hash=handle_hash, client_id=client_id, params=params,
                              created_at=now, expires_at=expires_at))


async def take_pushed(session: AsyncSession, handle_hash: str, client_id: str, now: int
                      ) -> dict[str, Any] | None:
    """A pushed request's parameters, once: one conditional DELETE, so of two redemptions
    only one gets them. None when it is unknown, used, expired or another client's (which
    leaves it to its own client)."""
    params = await session.scalar(
        delete(PushedRequest)
        .where(PushedRequest.handle_hash == handle_hash, PushedRequest.client_id == client_id,
               PushedRequest.expires_at > now)
        .returning(PushedRequest.params))
    return dict(params) if isinstance(params, dict) else None


_CODE_VALUES = {"code_challenge": AuthorizationCode.code_challenge,
                "nonce": AuthorizationCode.nonce}


@functools.cache
def _carried(names: tuple[str, ...]) -> Prepared:
    """recently_used's statement for these request parameters: built and compiled once (the
    expression and its cache key, built per request, had been a third of an authorization
    request's CPU)."""
    client: BindParameter[str] = bindparam("b_client", type_=String)
    since: BindParameter[int] = bindparam("b_since", type_=Integer)
    return Prepared(select(*(
        or_(
            exists().where(Interaction.client_id == client, Interaction.created_at >= since,
                           Interaction.request[name].as_string() == bindparam(f"b_{name}")),
            exists().where(AuthorizationCode.client_id == client,
                           AuthorizationCode.created_at >= since,
                           _CODE_VALUES[name] == bindparam(f"b_{name}")),
        ).label(name)
        for name in names)))


async def recently_used(session: Connection, client_id: str, since: int,
                        values: dict[str, str]) -> set[str]:
    """Which of `values` ("code_challenge", "nonce": the value) an authorization request of
    `client_id` made since `since` already carried: one still waiting for the end-user (an
    interaction) or one answered with a code. Read from the database, so every replica sees
    every other replica's requests."""
    if not values:
        return set()
    names = tuple(sorted(values))
    row = await _carried(names).first(session, {
        "b_client": client_id, "b_since": since,
        **{f"b_{name}": value for name, value in values.items()}})
    assert row is not None  # a SELECT of EXISTS answers one row
    return {name for name in names if row[name]}
