"""The customer's CCPA/CPRA choices as plain rules: "do not sell or share my personal
information" (Cal. Civ. Code §1798.120) and "limit the use of my sensitive personal
information" (§1798.121), how a Global Privacy Control signal sets the first (Cal. Code Regs.
tit. 11 §7025), and what the choices take out of a consent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# How a choice was last set (the `privacy_choices.*_set_by` columns).
SET_BY_ACCOUNT = "account"  # the customer, in the account center or the public page
SET_BY_GPC = "gpc"  # a signed-in request carrying `Sec-GPC: 1`
SET_BY_OPERATOR = "operator"  # the admin API or the CLI, on the customer's request
SET_BY = (SET_BY_ACCOUNT, SET_BY_GPC, SET_BY_OPERATOR)
# The ledger action of a change of these account-wide choices (no grant, no app).
PRIVACY_ACTION = "privacy"


@dataclass(frozen=True)
class PrivacyChoices:
    do_not_sell_or_share: bool = False
    limit_sensitive_use: bool = False

    def claim(self) -> dict[str, bool]:
        """The `privacy` member of the `consent` claim."""
        return {"do_not_sell_or_share": self.do_not_sell_or_share,
                "limit_sensitive_use": self.limit_sensitive_use}


NONE_CHOSEN = PrivacyChoices()


@dataclass(frozen=True)
class Standing:
    """What tokens about the account say beside its grant: the account's choices, and the
    sale-or-share purposes withheld from every consent while do-not-sell is on."""

    privacy: PrivacyChoices = NONE_CHOSEN
    withheld: frozenset[str] = frozenset()


NO_STANDING = Standing()


def standing_of(do_not_sell_or_share: bool | None, limit_sensitive_use: bool | None,
                sale_or_share_purposes: str | None) -> Standing:
    """From the columns the token statements read: the choices (NULL when the customer never
    chose) and the space-separated ids of sale-or-share purposes (read only while do-not-sell
    is on)."""
    choices = PrivacyChoices(bool(do_not_sell_or_share), bool(limit_sensitive_use))
    withheld = frozenset((sale_or_share_purposes or "").split()) if choices.do_not_sell_or_share \
        else frozenset()
    return Standing(choices, withheld)


def effective_purposes(purposes: Iterable[Mapping[str, Any]], withheld: frozenset[str]
                       ) -> list[Mapping[str, Any]]:
    """The agreed purposes a token carries: a sale-or-share purpose counts as declined while
    the customer has opted out of sale and sharing (§1798.120), whatever the grant says; it
    comes back if they opt in again."""
    return [p for p in purposes if str(p["id"]) not in withheld]


def gpc_applies(choices: PrivacyChoices, gpc_override: bool) -> bool:
    """Whether a `Sec-GPC: 1` from the signed-in customer turns do-not-sell on: unless it is
    on already, or the customer, told of the conflict, chose to allow sale and sharing while
    their browser sent the signal (§7025(c)(3) lets the business honour that choice)."""
    return not choices.do_not_sell_or_share and not gpc_override
