"""Consent receipts: one ledger entry as a JSON document in the structure of the Kantara
Initiative Consent Receipt v1.1 (the basis of ISO/IEC TS 27560), with the ledger proof that
lets anyone holding the chain check it."""

from __future__ import annotations

from typing import Any

from idp.services.context import Context
from idp.store.models import LedgerEntry

ACTION_STATE = {"grant": "given", "reconsent": "given", "change": "modified",
                "withdraw": "withdrawn"}
CONSENT_TYPE = {"consent": "EXPLICIT", "contract": "CONTRACT",
                "legitimate_interest": "LEGITIMATE_INTEREST"}


def receipt(ctx: Context, entry: LedgerEntry) -> dict[str, Any]:
    s = ctx.settings
    payload = entry.payload or {}
    agreed = {p["id"] for p in (payload.get("after") or {}).get("purposes", [])}
    purposes = [
        {
            "purpose": p["title"],
            "purposeId": p["id"],
            "purposeVersion": p["version"],
            "purposeDescription": p["description"],
            "purposeCategory": list(p["data_categories"]),
            "consentType": CONSENT_TYPE.get(p["legal_basis"], "EXPLICIT"),
            "piiCategory": list(p["data_categories"]),
            "primaryPurpose": p["legal_basis"] == "contract",
            "termination": "Until withdrawn in the account center",
            "thirdPartyDisclosure": bool(p["sale_or_share"]),
            "consentGiven": p["id"] in agreed,
            # Issue 15 item 4: the words shown, exactly: their language and version, and
            # their digest (entries from before languages: the default's, version 1).
            "purposeLanguage": p.get("language") or s.default_locale,
            "purposeTextVersion": p.get("text_version", 1),
            **({"purposeTextDigest": p["text_digest"]} if p.get("text_digest") else {}),
        }
        for p in payload.get("policy", [])
    ]
    return {
        "version": "KI-CR-v1.1.0",
        "jurisdiction": s.jurisdiction,
        "consentTimestamp": entry.created_at,
        "collectionMethod": payload.get("method", "unknown"),
        "consentReceiptID": entry.entry_id,
        # The language of the page the customer answered on.
        "language": payload.get("language") or s.default_locale,
        "piiPrincipalId": entry.subject_ref,
        "piiControllers": [{"piiController": s.controller_name, "contact": s.controller_contact,
                            "piiControllerUrl": s.issuer}],
        "policyUrl": s.privacy_policy_url,
        "services": [{
            "service": payload.get("client_name", entry.client_id),
            "serviceId": entry.client_id,
            "scopes": (payload.get("after") or {}).get("scopes", []),
            "purposes": purposes,
        }],
        "sensitive": False,
        "spiCat": [],
        # ISO/IEC TS 27560 event and our ledger proof.
        "event": {"type": ACTION_STATE.get(entry.action, entry.action),
                  "channel": entry.channel, "gpc": entry.gpc, "grantId": entry.grant_id,
                  # Every consent text of the page answered (scopes, categories, purposes).
                  **({"textsDigest": payload["texts_digest"]}
                     if payload.get("texts_digest") else {})},
        "proof": {"seq": entry.seq, "payloadDigest": entry.payload_digest,
                  "prevHash": entry.prev_hash, "entryHash": entry.entry_hash,
                  "payloadErased": entry.payload is None},
    }
