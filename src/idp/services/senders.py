"""Every kind of message the outbox holds, and who sends it: the composition the dispatcher of
`idp serve` runs with (and the tests' dispatchers). It reaches into several rooms, as
`maintenance` does."""

from __future__ import annotations

import httpx

from idp.notifications.mail import MAIL, MailSender
from idp.notifications.senders import Sender, app_senders
from idp.services.accounts.recovery import RESET_REQUEST, ResetRequestSender
from idp.services.accounts.signup import SIGNUP_REQUEST, SignupRequestSender
from idp.services.context import Context
from idp.services.upstream.revocation_sender import UPSTREAM_REVOKE, UpstreamRevocationSender


def outbox_senders(ctx: Context, http: httpx.AsyncClient) -> dict[str, Sender]:
    """The apps' notifications, upstream revocations, mail, and reset and registration
    requests. The upstream sender uses the context's upstream HTTP client, not the
    dispatcher's."""
    return {**app_senders(ctx, http), UPSTREAM_REVOKE: UpstreamRevocationSender(ctx),
            MAIL: MailSender(ctx.settings), RESET_REQUEST: ResetRequestSender(ctx),
            SIGNUP_REQUEST: SignupRequestSender(ctx)}
