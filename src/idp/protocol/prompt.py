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
    # The customer's grant answers everything this request asks (protocol.consent.covers).
    consent_covered: bool
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
    return "consent" in request.prompt or not state.consent_covered


def decide_interaction(request: AuthorizationRequest, state: InteractionState, now: int) -> Step:
    session = state.session
    if state.authenticated_here and session is not None and state.hinted_sub not in (
        None, session.user_id
    ):
        # OIDC Core §3.1.2.1 (id_token_hint), §3.1.2.2 (sub): a positive response only if the
        # named end-user is, or is by this request, logged in; someone else just logged in.
        raise errors.LoginRequired("The signed-in end-user is not the one the request names")
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
