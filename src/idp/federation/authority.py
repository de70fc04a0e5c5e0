"""Is the upstream the owner of this email address? (federation.md §4.2, requirements 20-22)

Only an upstream that both verified the address and is authoritative for its domain may be
believed about it: Google for Gmail addresses and for a Workspace domain it names in `hd`,
Apple for its own and relay domains, Facebook never. Everything else is prompted linking.
"""

from __future__ import annotations

from idp.federation.config import EmailAuthority, LinkingPolicy


def email_domain(email: str) -> str | None:
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        return None
    return domain.lower().rstrip(".")


def email_is_authoritative(email: str | None, email_verified: bool, rules: EmailAuthority, *,
                           hd: str | None = None) -> bool:
    """Rule 21 defaults: Google `@gmail.com`/`@googlemail.com` or `hd` equal to the email's
    domain; Apple `icloud.com`, `me.com`, `mac.com`, and relay domains; Facebook none."""
    if not email or not email_verified:
        return False
    domain = email_domain(email)
    if domain is None:
        return False
    if domain in rules.domains:
        return True
    # Google's guidance: the `hd` claim (not the request hint) names the Workspace domain.
    return rules.hosted_domain_claim and hd is not None and hd.lower() == domain


def may_auto_link(policy: LinkingPolicy, *, email_authoritative: bool,
                  local_email_verified: bool) -> bool:
    """Requirement 20: without a prompt only under `auto_if_authoritative`, when the upstream
    is authoritative for a verified address and our account's email is verified too."""
    return (policy is LinkingPolicy.auto_if_authoritative and email_authoritative
            and local_email_verified)
