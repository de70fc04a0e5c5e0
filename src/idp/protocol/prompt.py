"""What the end-user must still do before a code can be issued (OIDC Core §3.1.2.1, §3.1.2.3).

`decide_interaction` is pure: the service gathers the session, the grant and what already happened
in this interaction, and this function applies the rules of `prompt`, `max_age` and
`id_token_hint`. With `prompt=none` it raises the error that OIDC Core §3.1.2.6 names instead of
asking for UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from idp import errors
from idp.domain import AuthorizationRequest, SessionInfo


class Step(Enum):
    LOGIN = "login"
    CONSENT = "consent"
    ISSUE = "issue"


@dataclass(frozen=True)
class InteractionState:
    session: SessionInfo | None
    # The session was created during this very interaction (satisfies prompt=login, max_age).
    authenticated_here: bool
    consented_here: bool
    # Scopes plus "claim:<name>" items: what this request asks for, and what the grant covers.
    requested_items: frozenset[str]
    granted_items: frozenset[str] | None
    hinted_sub: str | None  # `sub` of a verified id_token_hint


def needs_login(request: AuthorizationRequest, state: InteractionState, now: int) -> bool:
    session = state.session
    if session is None:
        return True
    if state.authenticated_here:
        return False
    if "login" in request.prompt or "select_account" in request.prompt:
        return True
    # OIDC-06: max_age elapsed; max_age=0 behaves like prompt=login. Times are whole seconds, so
    # "elapsed >= max_age" keeps max_age=1 honest one second after the login.
    if request.max_age is not None and (
        request.max_age == 0 or now - session.auth_time >= request.max_age
    ):
        return True
    # OIDC-09: never answer for the session's user when the hint names someone else.
    return state.hinted_sub is not None and state.hinted_sub != session.user_id


def needs_consent(request: AuthorizationRequest, state: InteractionState) -> bool:
    if state.consented_here:
        return False
    if "consent" in request.prompt or state.granted_items is None:
        return True
    return not state.requested_items <= state.granted_items


def decide_interaction(request: AuthorizationRequest, state: InteractionState, now: int) -> Step:
    login = needs_login(request, state, now)
    if "none" in request.prompt:
        if login:
            raise errors.LoginRequired()
        if needs_consent(request, state):
            raise errors.ConsentRequired()
        return Step.ISSUE
    if login:
        return Step.LOGIN
    if needs_consent(request, state):
        return Step.CONSENT
    return Step.ISSUE
