"""Signing keys: create on first start, rotate, sign, and verify our own tokens.

All replicas read the same keys from the database. The in-memory `KeyRing` is refreshed when it
is older than `key_cache_seconds` or when a token names a `kid` it does not know, so a rotation
made by the CLI or another replica is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import text

from idp.crypto.keys import (
    SUPPORTED_ALGS,
    Key,
    KeyEncryptor,
    KeyRing,
    generate_key,
    import_private_key,
    public_jwk,
)
from idp.settings import Settings
from idp.store import keys as key_store
from idp.store.db import Database
from idp.store.models import SigningKey

log = logging.getLogger("idp.keys")

MAX_JWT_LENGTH = 16 * 1024  # REL-10: size-cap every JWT before parsing
# PostgreSQL NOTIFY channel of key changes (KeyManager.listen).
KEYS_CHANNEL = "idp_signing_keys"
KEY_LISTEN_RETRY_SECONDS = 1.0
# Tokens that verified, by the token itself: a backend presents the same access token to
# introspection or UserInfo on every call it serves, and the signature check (parsing,
# header rules, the ECDSA or RSA verify) was an eighth of a UserInfo request. Only tokens
# that passed are kept, at most this many, each for at most VERIFIED_SECONDS and never
# beyond the key ring it was checked against. Live state is still judged on every call.
VERIFIED_CACHE_SIZE = 4096
VERIFIED_SECONDS = 60


# Replicas starting together on an empty database take turns at creating the first keys.
KEYS_LOCK = 0x1D9_4B45  # "idp" "KE"


async def _serialize(session: Any) -> None:
    """Hold off other processes' key changes until this transaction ends: a PostgreSQL
    transaction-level advisory lock (SQLite's writing transactions are serialized already),
    so two replicas starting at once on an empty database do not both create keys."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": KEYS_LOCK})


async def _announce(session: Any) -> None:
    """Tell every listening process that the keys changed; PostgreSQL delivers it when the
    caller's transaction commits, and only then."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, '')"),
                              {"channel": KEYS_CHANNEL})


def _header_kid(token: str) -> str | None:
    try:
        segment = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


class KeyManager:
    def __init__(self, settings: Settings, db: Database, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._db = db
        self._clock = clock
        self._encryptor = KeyEncryptor(settings.resolved_key_secret())
        self._ring: KeyRing | None = None
        self._lock = asyncio.Lock()
        # Private keys already decrypted and parsed, by kid: a key's material never changes,
        # and parsing an RSA key costs tens of milliseconds at every ring reload.
        self._imported: dict[str, Key] = {}
        # (token, typ) -> (ring it verified against, until, claims)
        self._verified: OrderedDict[tuple[str, str | None],
                                    tuple[KeyRing, float, dict[str, Any]]] = OrderedDict()

    def _now(self) -> int:
        return int(self._clock())

    def retired_key_lifetime(self) -> int:
        """How long a retired key stays published: its longest-lived token plus JWKS caching."""
        s = self._settings
        return max(s.id_token_ttl, s.access_token_ttl) + s.key_cache_seconds + 60

    async def ensure_keys(self) -> list[str]:
        """Give each supported algorithm an active key and a published next key (REL-06);
        returns the kids created."""
        created: list[str] = []
        async with self._db.transaction() as session:
            await _serialize(session)
            states = {(k.alg, k.state) for k in await key_store.all_keys(session)}
            for alg in SUPPORTED_ALGS:
                for state in ("active", "next"):
                    if (alg, state) not in states:
                        created.append(self._add_key(session, alg, state))
            if created:
                await _announce(session)
        if created:
            self._ring = None
        return created

    async def rotate(self, algs: tuple[str, ...] = SUPPORTED_ALGS) -> list[str]:
        """Per algorithm: the next key (published since the last rotation, so every cached
        JWKS already has it) starts signing; the active one is retired but stays published
        until every token it signed has expired; a new next key is published. Returns the
        kids that now sign."""
        now = self._now()
        active: list[str] = []
        async with self._db.transaction() as session:
            await _serialize(session)
            for alg in algs:
                await key_store.retire_active(
                    session, alg, now, now + self.retired_key_lifetime()
                )
                promoted = await key_store.promote_next(session, alg, now)
                active.append(promoted or self._add_key(session, alg, "active"))
                self._add_key(session, alg, "next")
            await _announce(session)
        self._ring = None
        return active

    async def listen(self) -> None:
        """PostgreSQL: reload the keys the moment any process (another replica, the CLI)
        changes them, instead of up to `key_cache_seconds` later. Runs until cancelled, on a
        connection of its own outside the pool; while that connection is down the cache time
        is the fallback, and every (re)connection reloads once for what it may have missed."""
        import asyncpg  # type: ignore[import-untyped]

        url = self._db.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while True:
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(dsn, timeout=5)
            except (TimeoutError, OSError, asyncpg.PostgresError) as error:
                log.warning("signing keys: cannot listen for changes (%s); retrying",
                            type(error).__name__)
                await asyncio.sleep(KEY_LISTEN_RETRY_SECONDS)
                continue
            try:
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(KEYS_CHANNEL, self._changed)
                self._ring = None
                await lost.wait()
                log.warning("signing keys: change notifications lost; reconnecting")
            finally:
                await connection.close(timeout=2)

    def _changed(self, *_notification: Any) -> None:
        self._ring = None  # the next request reloads

    async def rotate_if_due(self) -> list[str]:
        """Automatic rotation: rotate the algorithms whose active key is older than the
        configured period. Safe to run on every replica: a second rotation in the same
        period finds a young key and does nothing."""
        period = self._settings.key_rotation_days * 86_400
        if period <= 0:
            return []
        now = self._now()
        async with self._db.transaction() as session:
            due = tuple(
                k.alg for k in await key_store.all_keys(session)
                if k.state == "active" and (k.activated_at or k.created_at) + period <= now
            )
        return await self.rotate(due) if due else []

    def _add_key(self, session: Any, alg: str, state: str) -> str:
        key = generate_key(alg)
        now = self._now()
        session.add(
            SigningKey(
                kid=key.kid,
                alg=alg,
                state=state,
                public_jwk=public_jwk(key),
                private_jwk_encrypted=self._encryptor.encrypt(key.as_dict(private=True)),
                created_at=now,
                activated_at=now if state == "active" else None,
                retired_at=None,
                publish_until=None,
            )
        )
        return str(key.kid)

    async def ring(self, force: bool = False) -> KeyRing:
        ring = self._ring
        if (
            not force
            and ring is not None
            and self._clock() - ring.loaded_at < self._settings.key_cache_seconds
        ):
            return ring
        async with self._lock:
            if self._ring is not None and self._ring is not ring:
                # Reloaded by another request while this one waited for the lock, forced or
                # not: parallel requests with unknown kids reload the key set once.
                return self._ring
            self._ring = await self._load()
            return self._ring

    async def _load(self) -> KeyRing:
        now = self._now()
        async with self._db.transaction(read_only=True) as session:
            rows = await key_store.published_keys(session, now)
        signing = {}
        imported = {}
        for row in rows:
            # Newest active key per algorithm signs (rows come newest first).
            if row.state == "active" and row.alg not in signing:
                key = self._imported.get(row.kid)
                if key is None:
                    key = import_private_key(self._encryptor.decrypt(row.private_jwk_encrypted))
                signing[row.alg] = imported[row.kid] = key
        self._imported = imported
        published = [row.public_jwk for row in rows]
        verify_set = KeySet.import_key_set({"keys": published})
        return KeyRing(signing, published, self._clock(), verify_set)

    async def sign(self, claims: dict[str, Any], alg: str = "RS256", typ: str = "JWT") -> str:
        """Sign outside a unit of work; inside one, sign with a ring fetched beforehand (SQLite
        allows one writer, so loading keys mid-transaction would wait on ourselves)."""
        return (await self.ring()).sign(claims, alg, typ)

    async def verify_own(self, token: str, typ: str | None) -> dict[str, Any] | None:
        """Claims of a JWT we signed, or None. Expiry is the caller's decision (an expired
        `id_token_hint` is still a valid hint)."""
        if not token or len(token) > MAX_JWT_LENGTH or token.count(".") != 2:
            return None
        ring = await self.ring()
        cached = self._verified.get((token, typ))
        if cached is not None:
            verified_by, until, claims = cached
            if verified_by is ring and self._clock() < until:
                return dict(claims)
            del self._verified[(token, typ)]
        kid = _header_kid(token)
        known = {k.get("kid") for k in ring.published}
        if kid is not None and kid not in known and self._clock() - ring.loaded_at >= 1:
            # An unknown kid may be a key another replica just created: reload, at most once a
            # second, so forged kids cannot turn into a database load.
            ring = await self.ring(force=True)
        try:
            decoded = jwt.decode(token, ring.verify_set, algorithms=list(SUPPORTED_ALGS))
        except (JoseError, ValueError, TypeError):
            return None
        if typ is not None and decoded.header.get("typ") != typ:
            return None
        if decoded.claims.get("iss") != self._settings.issuer:
            return None
        claims = dict(decoded.claims)
        self._verified[(token, typ)] = (ring, self._clock() + VERIFIED_SECONDS, claims)
        while len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)  # the oldest
        return dict(claims)
