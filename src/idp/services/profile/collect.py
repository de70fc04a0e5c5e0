"""Progressive profiling (issue 16 item 3): an app names attributes in the `claims` request
parameter (OIDC Core §5.5); those the profile lacks, and the customer may fill in, are asked on
the consent page beside the consent, and saved with the customer as their source, for the
purposes the customer granted there. Another app that names an attribute already filled
gets it under its own consent, and nobody asks the customer for it again."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.locales import N_, gettext
from idp.protocol.profile import AttributeDef
from idp.protocol.profile_release import requested_names, to_collect
from idp.protocol.profile_values import ValueProblem, parse_text
from idp.services.profile.cache import schema_in
from idp.services.profile.values import apply, locked_user, shown
from idp.store.models import User
from idp.store.profile import Source

FIELD_PREFIX = "profile."  # the consent form's inputs: profile.<attribute name>
INPUT_TYPES = {"integer": "number", "number": "number", "date": "date", "url": "url",
               "phone": "tel", "email": "email"}
# WCAG 2.1 SC 1.3.5: the standard claims' inputs name their purpose (HTML autofill tokens).
AUTOCOMPLETE = {"name": "name", "given_name": "given-name", "family_name": "family-name",
                "middle_name": "additional-name", "nickname": "nickname",
                "phone_number": "tel", "birthdate": "bday", "website": "url",
                "gender": "sex", "locale": "language"}


class AnswersRefused(Exception):
    """A value typed on the consent page broke its attribute's rules: the page is shown
    again with what was typed and why, and nothing is recorded."""

    def __init__(self, problems: dict[str, str], typed: dict[str, str]) -> None:
        super().__init__(", ".join(sorted(problems)))
        self.problems = problems
        self.typed = typed


@dataclass(frozen=True)
class Field:
    """One input of the consent page."""

    defn: AttributeDef
    text: str = ""
    problem: str | None = None

    @property
    def input_type(self) -> str:
        return INPUT_TYPES.get(self.defn.type, "text")

    @property
    def autocomplete(self) -> str | None:
        return AUTOCOMPLETE.get(self.defn.name) if self.defn.standard else None

    @property
    def choices(self) -> tuple[tuple[str, str], ...]:
        if self.defn.type == "enum":
            return tuple((v, v) for v in self.defn.values)
        if self.defn.type == "boolean":
            return (("yes", N_("Yes")), ("no", N_("No")))
        return ()


async def fields_to_collect(session: AsyncSession, user_id: str,
                            claims_param: dict[str, Any] | None,
                            app_purposes: Collection[str]) -> list[AttributeDef]:
    """What the consent page asks for; nothing (and no read) without a `claims` request."""
    if not requested_names(claims_param):
        return []
    user = await session.get(User, user_id)
    if user is None:
        return []
    return to_collect(await schema_in(session), claims_param, user.profile or {},
                      app_purposes)


def answers_of(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The consent form's profile inputs, by attribute name."""
    return {name[len(FIELD_PREFIX):]: value for name, value in pairs
            if name.startswith(FIELD_PREFIX)}


def fields(asked: list[AttributeDef], typed: Mapping[str, str] | None = None,
           problems: Mapping[str, str] | None = None) -> list[Field]:
    return [Field(shown(d), (typed or {}).get(d.name, ""), (problems or {}).get(d.name))
            for d in asked]


async def save_answers(session: AsyncSession, user_id: str, client_id: str,
                       asked: list[AttributeDef], typed: Mapping[str, str],
                       granted: Collection[str], now: int) -> list[str]:
    """Check every answer first (AnswersRefused), then save what was filled in, each for
    its purposes the customer granted to this app; a custom attribute serving none of them
    is not kept (it could reach no app). Returns the names saved."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for defn in asked:
        try:
            values[defn.name] = parse_text(defn, typed.get(defn.name, ""))
        except ValueProblem as problem:
            problems[defn.name] = problem.words(gettext)
    if problems:
        raise AnswersRefused(problems, {d.name: typed.get(d.name, "") for d in asked})
    user = await locked_user(session, user_id)
    if user is None:
        return []
    saved: list[str] = []
    for defn in asked:
        value = values.get(defn.name)
        purposes = tuple(p for p in defn.purposes if p in granted)
        if value is None or (not defn.standard and not purposes):
            continue
        source = Source("customer", client_id, () if defn.standard else purposes)
        saved += await apply(session, user, {defn.name: value}, source, now)
    return saved
