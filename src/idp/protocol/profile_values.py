"""A profile value checked against its attribute's definition before it is stored (issue 16
item 1): the JSON an app or an operator sends, or the text a customer types in a form."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date
from typing import Any

from idp.locales import N_
from idp.protocol.profile import (
    ADDRESS_MEMBERS,
    DEFAULT_MAX_LENGTH,
    MAX_LENGTH,
    AttributeDef,
)

_PHONE = re.compile(r"^\+?[0-9 ()./-]{4,32}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INTEGER = re.compile(r"^-?\d{1,18}$")

# Every message a customer or an app may see about a value, in one place: marked for the
# catalogs, translated where a page shows it (`ValueProblem.words`); APIs answer in English.
PROBLEMS = {
    "type": N_("must be %(what)s"),
    "too_long": N_("must be at most %(max_length)s characters"),
    "pattern": N_("is not in the expected format"),
    "minimum": N_("must be at least %(minimum)s"),
    "maximum": N_("must be at most %(maximum)s"),
    "choice": N_("must be one of: %(values)s"),
    "control": N_("must not contain control characters"),
    "empty": N_("must not be empty"),
}
_WHAT = {"string": N_("text"), "integer": N_("a whole number"), "number": N_("a number"),
         "boolean": N_("yes or no"), "date": N_("a date (YYYY-MM-DD)"),
         "enum": N_("one of the choices"),
         "url": N_("a web address starting with https:// or http://"),
         "phone": N_("a phone number (digits, optionally starting with +)"),
         "email": N_("an email address"), "address": N_("a postal address object")}


class ValueProblem(ValueError):
    def __init__(self, code: str, **params: Any) -> None:
        self.code = code
        self.params = {k: f"{v:g}" if isinstance(v, float) else v for k, v in params.items()}
        super().__init__(self.words(lambda text: text))

    def words(self, translate: Callable[[str], str]) -> str:
        """The message in the language `translate` (a gettext) answers in."""
        params = dict(self.params)
        if "what" in params:
            params["what"] = translate(str(params["what"]))
        return translate(PROBLEMS[self.code]) % params


def check_value(defn: AttributeDef, value: Any) -> Any:
    """A JSON value for `defn`, as stored, or ValueProblem."""
    kind = defn.type
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueProblem("type", what=_WHAT[kind])
        return value
    if kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                kind == "integer" and not isinstance(value, int)) or not math.isfinite(value):
            raise ValueProblem("type", what=_WHAT[kind])
        if defn.minimum is not None and value < defn.minimum:
            raise ValueProblem("minimum", minimum=defn.minimum)
        if defn.maximum is not None and value > defn.maximum:
            raise ValueProblem("maximum", maximum=defn.maximum)
        return value
    if kind == "address":
        return _check_address(value)
    if not isinstance(value, str):
        raise ValueProblem("type", what=_WHAT[kind])
    text = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueProblem("control")
    if not text:
        raise ValueProblem("empty")
    limit = defn.max_length or (MAX_LENGTH if kind == "url" else DEFAULT_MAX_LENGTH)
    if len(text) > limit:
        raise ValueProblem("too_long", max_length=limit)
    if kind == "enum":
        if text not in defn.values:
            raise ValueProblem("choice", values=", ".join(defn.values))
    elif kind == "date":
        if not _DATE.match(text) or not _valid_date(text):
            raise ValueProblem("type", what=_WHAT[kind])
    elif kind in ("url", "phone", "email"):
        shape = {"url": _URL, "phone": _PHONE, "email": _EMAIL}[kind]
        if not shape.match(text) or (kind == "phone" and sum(c.isdigit() for c in text) < 4):
            raise ValueProblem("type", what=_WHAT[kind])
    elif defn.pattern is not None and not re.fullmatch(defn.pattern, text):
        raise ValueProblem("pattern")
    return text


def _valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _check_address(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value or any(
            k not in ADDRESS_MEMBERS or not isinstance(v, str) or len(v) > DEFAULT_MAX_LENGTH
            for k, v in value.items()):
        raise ValueProblem("type", what=_WHAT["address"])
    return {k: str(v).strip() for k, v in value.items()}


def parse_text(defn: AttributeDef, text: str) -> Any:
    """A form field's text for `defn` (None: the field was left empty), or ValueProblem."""
    text = text.strip()
    if not text:
        return None
    if defn.type == "integer":
        if not _INTEGER.match(text):
            raise ValueProblem("type", what=_WHAT["integer"])
        return check_value(defn, int(text))
    if defn.type == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueProblem("type", what=_WHAT["number"]) from None
        return check_value(defn, int(number) if number.is_integer() and "." not in text
                           else number)
    if defn.type == "boolean":
        answers = {"yes": True, "true": True, "no": False, "false": False}
        if text.lower() not in answers:
            raise ValueProblem("type", what=_WHAT["boolean"])
        return answers[text.lower()]
    return check_value(defn, text)


def text_of(value: Any) -> str:
    """A stored value as a form field shows it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(str(value[k]) for k in ADDRESS_MEMBERS if value.get(k))
    return "" if value is None else str(value)
