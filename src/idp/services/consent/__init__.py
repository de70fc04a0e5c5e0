"""Consent: a customer's grants to apps (given, changed, withdrawn), the operator's purposes
and their versions, the hash-chained consent ledger and consent receipts.

The ground floor of the services: imports `idp.services.context` and the layers below
services only."""
