"""The admin API (`/admin/v1`): what operators do, from the OpenAPI docs page or any HTTP
client, with an access token of our own (client_credentials) granted `admin:read` or
`admin:write`. `idp admin bootstrap` creates the first admin client. The CLI calls the same
service functions; every change lands in the audit log (`/admin/v1/audit-events`)."""

from __future__ import annotations

from fastapi import APIRouter

from idp.routes.admin import (
    accounts,
    clients,
    consent,
    consent_statistics,
    consent_texts,
    operations,
    privacy,
    profile,
)

router = APIRouter(prefix="/admin/v1")
for part in (clients, accounts, operations, consent, consent_statistics, consent_texts,
             privacy, profile):
    router.include_router(part.router)
