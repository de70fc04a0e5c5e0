"""What the end-user does on the interaction pages: sign in, register, give consent."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.crypto.handles import digest, new_handle
from idp.domain import AuthorizationRequest, ClientConfig, SessionInfo
from idp.locales import N_, current_locale, gettext
from idp.protocol.acr import session_acr
from idp.protocol.consent import (
    PurposeInfo,
    default_choice,
    group_scopes_by_category,
)
from idp.protocol.profile import AttributeDef
from idp.protocol.scopes import ScopeInfo, describe_scopes
from idp.services.consent import privacy_choices
from idp.services.consent.grants import grant_view, record_consent
from idp.services.consent.texts import shown_digest, words_in
from idp.services.context import Context
from idp.services.profile import collect
from idp.services.signin.authentication import (
    begin_password_check_at,
    password_check_unit,
    settle,
    verify_password,
)
from idp.services.signin.authorization import Outcome, consent_ask, resume_in
from idp.services.signin.passkeys import usernameless_options
from idp.services.signin.pending import (
    interaction_to_show,
    load_interaction,
    lock_for_sign_in,
    pending_or_stale,
)
from idp.services.signin.second_factor import wait_in_interaction
from idp.services.signin.session_devices import note_sign_in
from idp.services.upstream.profile_import import (
    PICTURE,
    Image,
    apply_decision,
    copy_allowed_pictures,
    fetch_image,
    needs_answer,
)
from idp.services.upstream.providers import enabled_upstreams_in, name_of
from idp.store import grants as grant_store
from idp.store import privacy as privacy_store
from idp.store import sessions as session_store
from idp.store import users as user_store
from idp.store.models import BrowserSession, User
from idp.store.prepared import Connection

LOGIN_FAILED = N_("The email address or password is not correct.")


class LoginFailed(Exception):
    """Shown on the login page; the same words whatever went wrong (no user enumeration).
    `message`: a catalog text (marked N_) or words already in the customer's language."""

    def __init__(self, message: str = LOGIN_FAILED) -> None:
        super().__init__(message)
        self.message = gettext(message)


@dataclass(frozen=True)
class ScopeChoice:
    scope: ScopeInfo
    optional: bool
    checked: bool = True  # an optional scope starts on unless the customer declined it before
    # Answered before and unchanged since: shown apart, so the page leads with what changed.
    agreed: bool = False


@dataclass(frozen=True)
class PurposeOffer:
    purpose: PurposeInfo
    # Pre-selection: on, except sale-or-share under Global Privacy Control and except what the
    # customer declined before.
    checked: bool
    agreed: bool = False  # answered before, at this version
    updated: bool = False  # answered before, at an earlier version: the text has changed


@dataclass(frozen=True)
class ImportOffer:
    """Attributes an upstream login offered, for the consent page's "From your ... profile"
    section; every box starts unticked (issue 4 item 6)."""

    provider: str
    attributes: dict[str, Any]  # name -> value, as the upstream sent it


@dataclass(frozen=True)
class PageContext:
    interaction_id: str
    client: ClientConfig
    request: AuthorizationRequest
    signed_in_email: str | None
    data: dict[str, list[ScopeChoice]]  # category title -> scopes, in plain words
    extra_claims: list[str]
    purposes: list[PurposeOffer]
    profile_import: ImportOffer | None = None
    # The customer has a live consent for this app: the page is a request to agree again.
    returning: bool = False
    # The consent texts shown, in the customer's language (idp.services.consent.texts): their
    # digest goes with the answer; claims asked for one by one, and offered, in plain words.
    texts_digest: str = ""
    claim_titles: dict[str, str] = field(default_factory=dict)
    # Progressive profiling (issue 16 item 3): attributes the app asked for and the profile
    # lacks, asked beside the consent.
    profile_fields: list[AttributeDef] = field(default_factory=list)
    # The sign-in page's "Continue with" buttons: alias and name of each enabled upstream.
    upstreams: list[dict[str, str]] = field(default_factory=list)
    # The login page's username-less passkey request (issue 12 item 5), as JSON.
    passkey_options: str | None = None

    # Issue 13 item 2: a returning customer sees what changed first; what they answered
    # before, unchanged, is shown apart (and still submitted with the form).
    @property
    def changed_data(self) -> dict[str, list[ScopeChoice]]:
        shown = {title: [c for c in choices if not (self.returning and c.agreed)]
                 for title, choices in self.data.items()}
        return {title: choices for title, choices in shown.items() if choices}

    @property
    def kept_scopes(self) -> list[ScopeChoice]:
        return [c for choices in self.data.values() for c in choices
                if self.returning and c.agreed]

    @property
    def changed_purposes(self) -> list[PurposeOffer]:
        return [p for p in self.purposes if not (self.returning and p.agreed)]

    @property
    def kept_purposes(self) -> list[PurposeOffer]:
        return [p for p in self.purposes if self.returning and p.agreed]


async def sign_in_page_context(ctx: Context, interaction_id: str, browser_id: str, *,
                               upstreams: bool = False, challenge: str | None = None
                               ) -> PageContext:
    """What the sign-in and registration pages show of the authorization: the app and the
    request (its login_hint), with `upstreams` the enabled upstreams, and with `challenge`
    the passkey request options of a fresh username-less challenge kept under that key. The
    consent's scopes, purposes, texts and earlier answers are the consent page's alone
    (page_context): reading them for every sign-in page had been about a quarter of its
    CPU. Prepared statements on one connection: reads alone, or with the challenge one
    short unit of work (a page view had been two, through the ORM's session)."""
    unit = ctx.db.atomic() if challenge is not None else ctx.db.statements()
    async with unit as connection:
        interaction, client = await interaction_to_show(ctx, connection, interaction_id,
                                                        browser_id)
        offered = await enabled_upstreams_in(connection) if upstreams else []
        options = (await usernameless_options(ctx, connection, challenge)
                   if challenge is not None else None)
    return PageContext(interaction_id, client, AuthorizationRequest.from_json(
        interaction.request), None, {}, [], [], upstreams=offered, passkey_options=options)


async def page_context(ctx: Context, interaction_id: str, browser_id: str,
                       session_cookie: str | None, gpc: bool = False) -> PageContext:
    async with ctx.db.transaction() as session:
        interaction, client = await load_interaction(ctx, session, interaction_id, browser_id)
        request = AuthorizationRequest.from_json(interaction.request)
        ask = await consent_ask(session, client, request)
        words = await words_in(ctx, session, current_locale())
        offer = await _import_offer(session, interaction.pending_import)
        email = None
        earlier = None  # the customer's answers so far, when asked again (a "no" stays "no")
        asked: list[AttributeDef] = []
        if session_cookie:
            live = await session_store.find_live_session(session, digest(session_cookie), ctx.now())
            user = await user_store.get_user(session, live.user_id) if live else None
            email = user.email if user else None
            if user is not None:
                earlier = grant_view(await grant_store.find_grant(session, user.id,
                                                                  client.client_id))
                # Opted out of sale and sharing: such purposes start off, as under GPC.
                gpc = gpc or (await privacy_store.choices_of(session, user.id)
                              ).do_not_sell_or_share
                asked = await collect.fields_to_collect(session, user.id, request.claims,
                                                        {p.id for p in ask.purposes})
    declined_scopes = earlier.declined_scopes if earlier else frozenset()
    declined_purposes = earlier.declined_purposes if earlier else {}
    answered_scopes = (earlier.scopes | declined_scopes) if earlier else frozenset()
    agreed_purposes = earlier.purposes if earlier else {}
    data = {
        words.category(category): [ScopeChoice(words.scope(info),
                                               info.name in ask.optional_scopes,
                                               info.name not in declined_scopes,
                                               info.name in answered_scopes)
                                   for info in describe_scopes(scopes)]
        for category, scopes in group_scopes_by_category(ask.scopes).items()
    }
    purposes = []
    for p in map(words.purpose, ask.purposes):
        answered = {agreed_purposes.get(p.id), declined_purposes.get(p.id)} - {None}
        purposes.append(PurposeOffer(
            p, default_choice(p, gpc) and p.id not in declined_purposes,
            agreed=p.version in answered, updated=bool(answered) and p.version not in answered))
    # Asked again with nothing changed (prompt=consent): the whole consent, as the first time.
    changed = any(not c.agreed for choices in data.values() for c in choices) or any(
        not p.agreed for p in purposes) or bool(
        set(ask.claims) - (earlier.claims if earlier else frozenset()))
    shown = shown_digest(words, ask)
    claims = {*ask.claims, *(offer.attributes if offer else ())}
    return PageContext(interaction_id, client, request, email, data, list(ask.claims), purposes,
                       offer, returning=earlier is not None and changed, texts_digest=shown,
                       claim_titles={name: title for name in claims
                                     if (title := words.claim(name)) is not None},
                       profile_fields=asked)


async def _import_offer(session: AsyncSession, pending: dict[str, Any] | None
                        ) -> ImportOffer | None:
    if not needs_answer(pending):
        return None
    assert pending is not None
    return ImportOffer(await name_of(session, str(pending.get("alias"))),
                       dict(pending["claims"]))


async def pending_picture(ctx: Context, interaction_id: str, browser_id: str) -> Image | None:
    """The offered picture, fetched by us for the consent page: the page loads nothing from
    other origins (CSP `img-src 'self'`), and the customer's browser is not shown to the
    upstream's image host before they decide."""
    async with ctx.db.transaction() as session:
        interaction, _ = await load_interaction(ctx, session, interaction_id, browser_id)
        pending = interaction.pending_import
    url = ((pending or {}).get("claims") or {}).get(PICTURE)
    return await fetch_image(ctx, url) if isinstance(url, str) else None


@dataclass(frozen=True)
class SignedIn:
    """A page signed the customer in: the new session's cookie, and where the authorization
    goes next when the same unit of work already decided it (None: resume it)."""

    cookie: str
    outcome: Outcome | None = None


async def login_with_password(ctx: Context, interaction_id: str, browser_id: str, email: str,
                              password: str, previous_cookie: str | None) -> SignedIn:
    """Verify the password, start a new browser session and continue the authorization, in
    two units of work around the hash: the interaction is checked and the attempt counted
    (committed before the hash work, so parallel guesses all count); then the counters are
    cleared, the session starts and the code is issued (or the next page chosen) together.
    Both are units of prepared statements with no ORM session around them (the first a
    transaction only when more than one counter moves: `password_check_unit`); the rare
    branches that still use the ORM (a notice to a new device, a wait for the second factor)
    take one on the same transaction (`orm_session`).
    An account with a second factor gets no session here: the password waits for it
    (SecondFactorRequired, raised once that is committed)."""
    async with password_check_unit(ctx, email) as connection:
        pending = await begin_password_check_at(ctx, connection, interaction_id, browser_id,
                                                email, password)
    client_id, check = pending_or_stale(pending)
    proof = await verify_password(ctx, check, password)
    if proof is None:
        raise LoginFailed()
    # From the client cache, before the unit of work opens (its own connection: on SQLite
    # the unit of work holds the write lock).
    cached = await ctx.clients.get(client_id)
    async with ctx.db.atomic() as connection:
        interaction, client = await lock_for_sign_in(ctx, connection, interaction_id,
                                                     browser_id, cached)
        await settle(ctx, connection, proof)
        waiting = await wait_in_interaction(ctx, connection, interaction, proof.user.id,
                                            browser_id, ["pwd"],
                                            has_second_factor=proof.second_factor)
        if waiting is None:
            cookie, signed_in = await open_session(ctx, connection, proof.user.id,
                                                   previous_cookie, account=proof.user)
            outcome = await resume_in(ctx, connection, interaction, client, browser_id,
                                      cookie, signed_in)
    if waiting is not None:
        raise waiting
    return SignedIn(cookie, outcome)


async def start_session(ctx: Context, session: AsyncSession, user_id: str,
                        previous_cookie: str | None, amr: list[str] | None = None,
                        identity_id: str | None = None) -> tuple[str, str]:
    """A new session id at every login (ATO-14); the previous one ends server-side."""
    cookie, info = await open_session(ctx, session, user_id, previous_cookie, amr,
                                      identity_id)
    return cookie, info.sid


async def open_session(ctx: Context, session: Connection, user_id: str,
                       previous_cookie: str | None, amr: list[str] | None = None,
                       identity_id: str | None = None, account: User | None = None
                       ) -> tuple[str, SessionInfo]:
    """start_session, answering with the session as the authorization reads it; `account`:
    the account's row when the caller holds it already (it is not read again)."""
    now = ctx.now()
    replaced = None
    if previous_cookie:
        replaced = await session_store.end_session(session, digest(previous_cookie), now)
    cookie = new_handle()
    sid = new_handle(16)
    row = BrowserSession(
        id_hash=digest(cookie), sid=sid, user_id=user_id, auth_time=now,
        amr=amr or ["pwd"], acr=session_acr(amr or ["pwd"]), created_at=now,
        expires_at=now + ctx.settings.session_ttl, ended_at=None, identity_id=identity_id,
    )
    # Device, network, the security event and a new-device notice (issue 12 item 8).
    await note_sign_in(ctx, session, row, replaced_own=replaced == user_id, account=account)
    await session_store.add_session(session, row)
    return cookie, SessionInfo(sid, user_id, now, tuple(row.amr), row.acr, row.last_used_at)


@dataclass(frozen=True)
class ConsentAnswer:
    scopes: list[str]
    purposes: list[str]
    gpc: bool
    imports: frozenset[str] = frozenset()  # attributes ticked "Save to my profile"
    # The page's language and the digest of the consent texts it showed (issue 15 item 4).
    language: str | None = None
    texts: str | None = None
    # What the customer typed for the attributes the app asked for (issue 16 item 3).
    profile: dict[str, str] = field(default_factory=dict)


class ConsentTextsChanged(Exception):
    """The consent texts changed (an operator reworded them, the page's language changed)
    between the page and its answer: the page is shown again, nothing is recorded."""


async def give_consent(ctx: Context, interaction_id: str, browser_id: str,
                       session_cookie: str | None, answer: ConsentAnswer) -> None:
    """Record the customer's answer: every required item, the optional ones they kept, and
    which offered profile attributes to import (issue 4 item 6)."""
    async with ctx.db.transaction() as session:
        interaction, _ = await load_interaction(ctx, session, interaction_id, browser_id)
        pending = interaction.pending_import
    # Expiring pictures are copied before the transaction: no network wait inside it.
    copies = await copy_allowed_pictures(ctx, pending, set(answer.imports))
    try:
        await _give_consent(ctx, interaction_id, browser_id, session_cookie, answer,
                            (pending, copies))
    except IntegrityError:
        # The same customer answered for the same app in two tabs at once: the other answer
        # created the grant first (uq_grants_user_client); record this one on top of it.
        await _give_consent(ctx, interaction_id, browser_id, session_cookie, answer,
                            (pending, copies))
    ctx.notify_outbox()


async def _give_consent(ctx: Context, interaction_id: str, browser_id: str,
                        session_cookie: str | None, answer: ConsentAnswer,
                        fetched: tuple[dict[str, Any] | None, dict[str, Image]]) -> None:
    async with ctx.db.transaction() as session:
        interaction, client = await load_interaction(ctx, session, interaction_id, browser_id)
        live = None
        if session_cookie:
            live = await session_store.find_live_session(session, digest(session_cookie),
                                                         ctx.now())
        if live is None:
            raise errors.LoginRequired(redirectable=False)
        request = AuthorizationRequest.from_json(interaction.request)
        ask = await consent_ask(session, client, request)
        # Recorded in the words and language the customer read, and only in those.
        words = await words_in(ctx, session, answer.language or current_locale())
        shown = shown_digest(words, ask)
        if answer.texts is not None and answer.texts != shown:
            raise ConsentTextsChanged()
        ask = replace(ask, purposes=tuple(map(words.purpose, ask.purposes)))
        pending, interaction.pending_import = interaction.pending_import, None
        # Copies fetched for another offer (a sign-in in another tab since) are not used.
        copies = fetched[1] if pending == fetched[0] else {}
        # Declined attributes are never stored; the pending copy goes in this transaction.
        imported = await apply_decision(ctx, session, pending, live.user_id,
                                        set(answer.imports), copies) if pending else None
        asked = await collect.fields_to_collect(session, live.user_id, request.claims,
                                                {p.id for p in ask.purposes})
        grant = await record_consent(
            ctx, session, user_id=live.user_id, client=client, ask=ask,
            accepted_scopes=answer.scopes, accepted_purposes=answer.purposes, gpc=answer.gpc,
            extra=imported, shown=(words.locale, shown))
        # Kept for the purposes just granted; a refused value (AnswersRefused) undoes it all.
        await collect.save_answers(session, live.user_id, client.client_id, asked,
                                   answer.profile, {str(p["id"]) for p in grant.purposes},
                                   ctx.now())
        if answer.gpc:
            # A signed-in customer's Global Privacy Control signal opts the account out of
            # sale and sharing (Cal. Code Regs. tit. 11 §7025), before any token is issued.
            await privacy_choices.apply_gpc_in(ctx, session, live.user_id)
        interaction.consent_given = True
