"""What the end-user must still do before a code can be issued (OIDC Core §3.1.2.1, §3.1.2.3).

`decide_interaction` is pure: the service gathers the session, the grant and what already happened
in this interaction, and this function applies the rules of `prompt`, `max_age` and
`id_token_hint`, then asks for a second factor when the request or the client wants one
(protocol.acr, OIDC Core §5.5.1.1). With `prompt=none` it raises the error that OIDC Core
§3.1.2.6 names instead of asking for UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from idp import errors
from idp.domain import AuthorizationRequest, SessionInfo
from idp.protocol.acr import StepUp


class Step(Enum):
    LOGIN = "login"
    CONSENT = "consent"
    # Step-up: the signed-in customer gives the account's second factor, no password again.
    SECOND_FACTOR = "otp"
    # The client requires a second factor the account does not have yet.
    SET_UP_SECOND_FACTOR = "two-step-required"
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
    # What the request asks of the session's methods (protocol.acr.step_up), and whether the
    # account has a second factor to give.
    step_up: StepUp = StepUp.NONE
    has_second_factor: bool = False


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


def second_factor_step(request: AuthorizationRequest, state: InteractionState) -> Step | None:
    """The page a signed-in session without a second factor goes to, None to carry on. OIDC
    Core §5.5.1.1: an essential `acr` that cannot be met is a failed authentication
    (access_denied, RFC 6749 §4.1.2.1); §3.1.2.6: what only a page could solve under
    prompt=none is interaction_required. A voluntary preference never blocks: the tokens
    then say what was achieved."""
    need = state.step_up
    if need is StepUp.NONE:
        return None
    if not state.has_second_factor:
        if need is StepUp.ESSENTIAL:
            raise errors.AccessDenied("The requested authentication context cannot be met: "
                                      "the account has no second factor")
        if need is StepUp.CLIENT:
            if "none" in request.prompt:
                raise errors.InteractionRequired("This app requires two-step sign-in")
            return Step.SET_UP_SECOND_FACTOR
        return None
    if "none" in request.prompt:
        if need is StepUp.PREFERRED:
            return None
        raise errors.InteractionRequired("A second factor is required")
    return Step.SECOND_FACTOR


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
        if second_factor_step(request, state) is not None:
            raise errors.InteractionRequired()
        if needs_consent(request, state):
            raise errors.ConsentRequired()
        return Step.ISSUE
    if login:
        return Step.LOGIN
    step_up = second_factor_step(request, state)
    if step_up is not None:
        return step_up
    if needs_consent(request, state):
        return Step.CONSENT
    return Step.ISSUE
