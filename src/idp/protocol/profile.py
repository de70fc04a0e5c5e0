"""The profile schema as plain data: attribute definitions set by the operator, the standard
OIDC claims described the same way (OIDC Core §5.1), and the rules every definition and every
value is checked against before it is stored.

A definition says what an attribute is (its type and validation), which of the four kinds of
customer data it belongs to (identity, descriptive, attitudinal, behavioral), whether it is
sensitive personal information (CPRA, Cal. Civ. Code §1798.140(ae)), which purposes it may
serve, whether the customer may edit it, and, for a custom attribute, the operator-defined
scope under which it is released as a claim.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from idp.locales import N_
from idp.protocol.claims import PROTOCOL_CLAIMS
from idp.protocol.consent import DATA_CATEGORIES
from idp.protocol.scopes import SCOPES, is_api_scope

TYPES = ("string", "integer", "number", "boolean", "date", "enum", "url", "phone", "email")
# Writable by apps through the Profile API (issue 16 item 2): preferences, survey answers,
# loyalty tier; never who the customer is or what they are like.
APP_WRITABLE = frozenset({"attitudinal", "behavioral"})
# Account fields, not profile attributes: the address is changed at /account/email.
ACCOUNT_CLAIMS = frozenset({"email", "email_verified", "updated_at", "sub"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ADDRESS_MEMBERS = ("formatted", "street_address", "locality", "region", "postal_code",
                   "country")
MAX_LENGTH = 2048
MAX_ENUM_VALUES = 100
MAX_PURPOSES = 20
DEFAULT_MAX_LENGTH = 200


@dataclass(frozen=True)
class AttributeDef:
    name: str
    type: str
    title: str
    data_type: str
    description: str = ""
    sensitive: bool = False
    purposes: tuple[str, ...] = ()
    customer_editable: bool = False
    scope: str | None = None
    max_length: int | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] = ()
    standard: bool = False  # a standard OIDC claim, released by the standard scopes

    def rules(self) -> dict[str, Any]:
        """The validation part, as stored and shown."""
        found = {"max_length": self.max_length, "pattern": self.pattern,
                 "minimum": self.minimum, "maximum": self.maximum,
                 "values": list(self.values) or None}
        return {k: v for k, v in found.items() if v is not None}


def _standard(name: str, type_: str, title: str, data_type: str, editable: bool = False
              ) -> AttributeDef:
    return AttributeDef(name, type_, title, data_type, customer_editable=editable,
                        standard=True)


# OIDC Core §5.1 claims as the profile holds them, before the operator describes them. The
# editable ones are those the account center has always let the customer change.
STANDARD_ATTRIBUTES: dict[str, AttributeDef] = {a.name: a for a in (
    _standard("name", "string", N_("Full name"), "identity", True),
    _standard("given_name", "string", N_("Given name"), "identity", True),
    _standard("family_name", "string", N_("Family name"), "identity", True),
    _standard("middle_name", "string", N_("Middle name"), "identity"),
    _standard("nickname", "string", N_("Nickname"), "identity", True),
    _standard("preferred_username", "string", N_("Preferred username"), "identity"),
    _standard("profile", "url", N_("Profile page"), "descriptive"),
    _standard("picture", "url", N_("Picture"), "descriptive"),
    _standard("website", "url", N_("Website"), "descriptive"),
    _standard("gender", "string", N_("Gender"), "descriptive"),
    _standard("birthdate", "date", N_("Birth date"), "descriptive"),
    _standard("zoneinfo", "string", N_("Time zone"), "descriptive"),
    _standard("locale", "string", N_("Language"), "descriptive", True),
    _standard("phone_number", "phone", N_("Phone number"), "identity", True),
    _standard("phone_number_verified", "boolean", N_("Phone number verified"), "identity"),
    _standard("address", "address", N_("Postal address"), "descriptive"),
)}


class DefinitionProblem(ValueError):
    """A definition that cannot be accepted; the message says which rule it breaks."""


def check_definition(defn: AttributeDef) -> AttributeDef:
    """The definition as stored, or DefinitionProblem. A standard claim keeps its type and
    is released by its standard scope, so it takes no scope of its own."""
    if not _NAME.match(defn.name):
        raise DefinitionProblem("name: lower-case letters, digits and _ (e.g. shoe_size)")
    if defn.name in PROTOCOL_CLAIMS or defn.name in ACCOUNT_CLAIMS:
        raise DefinitionProblem(f"name: {defn.name} is a protocol or account claim")
    standard = STANDARD_ATTRIBUTES.get(defn.name)
    if standard is not None:
        if defn.type != standard.type:
            raise DefinitionProblem(f"type: {defn.name} is a standard claim of type "
                                    f"{standard.type}")
        if defn.scope is not None:
            raise DefinitionProblem(f"scope: {defn.name} is released by its standard scope")
        defn = replace(defn, standard=True)
    elif defn.type not in TYPES:
        raise DefinitionProblem(f"type: one of {', '.join(TYPES)}")
    else:
        defn = replace(defn, standard=False)
        if not defn.purposes:
            raise DefinitionProblem("purposes: a custom attribute serves at least one purpose")
    if not defn.title.strip() or len(defn.title) > 100 or len(defn.description) > 500:
        raise DefinitionProblem("title: 1 to 100 characters; description: at most 500")
    if defn.data_type not in DATA_CATEGORIES:
        raise DefinitionProblem(f"data_type: one of {', '.join(DATA_CATEGORIES)}")
    if len(defn.purposes) > MAX_PURPOSES or len(set(defn.purposes)) != len(defn.purposes):
        raise DefinitionProblem(f"purposes: at most {MAX_PURPOSES}, each once")
    if defn.scope is not None and (defn.scope in SCOPES or not is_api_scope(defn.scope)):
        raise DefinitionProblem("scope: an operator-defined scope name (e.g. loyalty), not "
                                "a standard one")
    _check_rules(defn)
    return replace(defn, title=defn.title.strip(), description=defn.description.strip(),
                   minimum=_whole(defn.minimum), maximum=_whole(defn.maximum))


def _whole(bound: float | None) -> float | None:
    """30.0 kept as 30, as JSON and HTML's min and max show it."""
    return int(bound) if bound is not None and float(bound).is_integer() else bound


def _check_rules(defn: AttributeDef) -> None:
    texts = ("string", "url", "phone", "email")
    if defn.max_length is not None and (
            defn.type not in texts or not 1 <= defn.max_length <= MAX_LENGTH):
        raise DefinitionProblem(f"max_length: 1 to {MAX_LENGTH}, for text types only")
    if defn.pattern is not None:
        if defn.type != "string" or not 0 < len(defn.pattern) <= 200:
            raise DefinitionProblem("pattern: up to 200 characters, for string only")
        try:
            re.compile(defn.pattern)
        except re.error:
            raise DefinitionProblem("pattern: not a valid regular expression") from None
    bounds = [b for b in (defn.minimum, defn.maximum) if b is not None]
    if bounds and defn.type not in ("integer", "number"):
        raise DefinitionProblem("minimum, maximum: for integer and number only")
    if any(not math.isfinite(b) for b in bounds) or (
            len(bounds) == 2 and bounds[0] > bounds[1]):
        raise DefinitionProblem("minimum must not exceed maximum")
    if defn.type == "enum":
        if not 0 < len(defn.values) <= MAX_ENUM_VALUES or len(set(defn.values)) != len(
                defn.values) or any(not v or len(v) > 100 for v in defn.values):
            raise DefinitionProblem(f"values: 1 to {MAX_ENUM_VALUES} distinct values of up "
                                    "to 100 characters")
    elif defn.values:
        raise DefinitionProblem("values: for enum only")


@dataclass(frozen=True)
class ProfileSchema:
    """Every attribute the profile knows (the operator's definitions over the standard
    claims' defaults) and the legal basis of each purpose, for the release rules."""

    attributes: Mapping[str, AttributeDef] = field(default_factory=dict)
    legal_bases: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, described: list[AttributeDef], legal_bases: Mapping[str, str]
           ) -> ProfileSchema:
        attributes = dict(STANDARD_ATTRIBUTES)
        attributes.update({d.name: d for d in described})
        return cls(attributes, dict(legal_bases))

    # Computed once per schema (a process holds one for many requests; idp.services.profile).
    @cached_property
    def custom(self) -> tuple[AttributeDef, ...]:
        return tuple(d for d in self.attributes.values() if not d.standard)
