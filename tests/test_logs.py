"""Logs carry detail but never a secret, token or password (ARCHITECTURE.md, ASVS 7.1.1).

A whole flow runs with every logger at DEBUG (SQLAlchemy then logs statements and their
parameters); no record may contain a password, client secret, code, token or verifier.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import httpx
import pytest

from idp.observability.logs import JsonFormatter
from idp.services.context import Context
from tests.helpers import (
    PASSWORD,
    Flow,
    authorize,
    follow_to_page,
    get_code,
    login,
    make_app,
    make_user,
    query_of,
    redeem,
)

WRONG_PASSWORD = "Tr0ub4dor&3-but-not-this-one"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger, existing or created later, at DEBUG and captured."""
    caplog.set_level(logging.DEBUG)
    silent = []
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        caplog.set_level(logging.DEBUG, logger=name)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
            silent.append(logger)
    yield caplog
    for logger in silent:
        logger.removeHandler(caplog.handler)


def record_texts(records: list[logging.LogRecord]) -> list[str]:
    texts = []
    json_lines = JsonFormatter()
    for record in records:
        # The line `idp serve` writes (IDP_LOG_FORMAT=json), extra fields included.
        with contextlib.suppress(TypeError, ValueError):
            texts.append(json_lines.format(record))
        texts.append(str(record.msg))
        texts.append(repr(record.args))
        with contextlib.suppress(TypeError, ValueError):
            texts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            texts.append(repr(record.exc_info[1]))
        if record.exc_text:
            texts.append(record.exc_text)
    return texts


async def test_a_whole_flow_logs_no_secret(client: httpx.AsyncClient, ctx: Context,
                                           debug_logs: pytest.LogCaptureFixture) -> None:
    app = await make_app(ctx)
    assert app.client_secret
    await make_user(ctx, name="Alice Example")
    flow = Flow(app)

    # A failed login first: mistyped passwords are secrets too.
    page = await authorize(client, flow)
    page = await login(client, page, password=WRONG_PASSWORD)
    assert page.status_code == 200 and "not correct" in page.text
    code = await get_code(client, flow)

    # A token request with a wrong secret, then the real one, then a replay.
    wrong_secret = app.client_secret[::-1]
    refused = await client.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri,
        "code_verifier": flow.verifier, "client_id": app.client_id,
        "client_secret": wrong_secret})
    assert refused.status_code == 401
    response = await redeem(client, flow, code)
    assert response.status_code == 200, response.text
    tokens = response.json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get("/userinfo", headers=bearer)).status_code == 200
    assert (await client.post("/userinfo", data={"access_token": tokens["access_token"]})
            ).status_code == 200

    # A second authorization in the same session (SSO), redeemed with a wrong verifier.
    second = Flow(app)
    redirect = await follow_to_page(client, await client.get("/authorize",
                                                             params=second.params()))
    second_code = query_of(redirect.headers["location"])["code"]
    wrong_verifier = Flow(app).verifier
    failed = await redeem(client, second, second_code, code_verifier=wrong_verifier)
    assert failed.status_code == 400
    assert (await redeem(client, flow, code)).status_code == 400  # replay revokes
    assert (await client.get("/userinfo", headers=bearer)).status_code == 401

    secrets = {
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "client secret": app.client_secret,
        "wrong client secret": wrong_secret,
        "code": code,
        "second code": second_code,
        "code_verifier": flow.verifier,
        "wrong code_verifier": wrong_verifier,
        "second code_verifier": second.verifier,
        "access token": tokens["access_token"],
        "access token signature": tokens["access_token"].rsplit(".", 1)[1],
        "ID token": tokens["id_token"],
        "ID token signature": tokens["id_token"].rsplit(".", 1)[1],
    }
    for name, value in client.cookies.items():
        secrets[f"cookie {name}"] = value

    records = debug_logs.records
    # The capture works: the access log and the SQL log (with parameters) were recorded.
    messages = [r.getMessage() for r in records]
    assert any(m.startswith("POST /token 200") for m in messages), messages[:20]
    assert any(r.name.startswith("sqlalchemy.engine") for r in records)
    texts = record_texts(records)
    for name, value in secrets.items():
        leaks = [t for t in texts if value in t]
        assert not leaks, f"{name} appears in the logs: {leaks[0][:300]}"
