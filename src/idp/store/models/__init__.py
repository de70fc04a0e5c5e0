"""Tables. Portable across PostgreSQL and SQLite: times are integer epoch seconds (the unit JWTs
use), lists and objects are JSON, identifiers are opaque strings.

Secrets and single-use handles are stored as SHA-256 digests only (`*_hash` columns). One
module per area; everything is importable from here, and importing this package registers
every table on `Base.metadata` (what Alembic and the tests compare against).
"""

from __future__ import annotations

from idp.store.models.accounts import (
    AccountToken,
    Client,
    InitialAccessToken,
    SigningKey,
    User,
)
from idp.store.models.base import Base, Json
from idp.store.models.consent import ClientPurpose, LedgerEntry, Purpose
from idp.store.models.devices import DeviceCode
from idp.store.models.factors import PendingSignIn, RecoveryCode, TotpFactor
from idp.store.models.federation import (
    FederationState,
    Identity,
    Picture,
    Upstream,
    UpstreamDeletion,
)
from idp.store.models.languages import ConsentText
from idp.store.models.outbox import DeliveryAttempt, OutboxMessage
from idp.store.models.passkeys import Passkey, WebAuthnChallenge
from idp.store.models.privacy import PairwiseSubject, PrivacyChoice
from idp.store.models.profile import ProfileAttribute, ProfileProvenance, ProfileRelease
from idp.store.models.security import AdminEvent, SecurityEvent, Throttle
from idp.store.models.sessions import BrowserSession, Interaction, PushedRequest, SessionClient
from idp.store.models.tokens import (
    AuthorizationCode,
    DpopProof,
    Grant,
    RefreshToken,
    TokenRevocation,
    UsedAssertion,
)

__all__ = [
    "AccountToken",
    "AdminEvent",
    "AuthorizationCode",
    "Base",
    "BrowserSession",
    "Client",
    "ClientPurpose",
    "ConsentText",
    "DeliveryAttempt",
    "DeviceCode",
    "DpopProof",
    "FederationState",
    "Grant",
    "Identity",
    "InitialAccessToken",
    "Interaction",
    "Json",
    "LedgerEntry",
    "OutboxMessage",
    "PairwiseSubject",
    "Passkey",
    "PendingSignIn",
    "Picture",
    "PrivacyChoice",
    "ProfileAttribute",
    "ProfileProvenance",
    "ProfileRelease",
    "Purpose",
    "PushedRequest",
    "RecoveryCode",
    "RefreshToken",
    "SecurityEvent",
    "SessionClient",
    "SigningKey",
    "Throttle",
    "TokenRevocation",
    "TotpFactor",
    "Upstream",
    "UpstreamDeletion",
    "UsedAssertion",
    "User",
    "WebAuthnChallenge",
]
