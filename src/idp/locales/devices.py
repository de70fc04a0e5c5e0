"""The name of the device a session signed in from ("Chrome on Android"), in the reader's
language.

Sessions store the name in English words built only from fixed product names (see
idp.services.signin.user_agents), so it can be read back into its parts and said again in
any language: "Chrome on Android" reads "Chrome على Android" in Arabic. Product names are
never translated; on a page they are isolated (`<bdi>`) so a right-to-left sentence keeps
its order around them.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from idp.locales import N_, current_locale, direction, gettext

UNKNOWN = N_("Unknown device")
BROWSER_ON = N_("%(browser)s on %(system)s")
SOME_BROWSER_ON = N_("A browser on %(system)s")
_SOME_BROWSER_PREFIX = SOME_BROWSER_ON.split("%")[0]
_ON = BROWSER_ON.split(")s", 1)[1].split("%")[0]  # " on "


def stored_name(browser: str | None, system: str | None) -> str:
    """The English name a session keeps: what the account center and mails translate."""
    if browser and system:
        return BROWSER_ON % {"browser": browser, "system": system}
    if browser:
        return browser
    if system:
        return SOME_BROWSER_ON % {"system": system}
    return UNKNOWN


def parts(name: str) -> tuple[str | None, str | None]:
    """The browser and system a stored name gives (None for what it does not)."""
    if not name or name == UNKNOWN:
        return None, None
    if name.startswith(_SOME_BROWSER_PREFIX):
        return None, name.removeprefix(_SOME_BROWSER_PREFIX)
    browser, on, system = name.partition(_ON)
    return (browser, system) if on else (name, None)


def in_words(name: str) -> str:
    """The stored name in the current language, as plain text (a mail's subject)."""
    browser, system = parts(name)
    if browser and system:
        return gettext(BROWSER_ON, browser=browser, system=system)
    if system:
        return gettext(SOME_BROWSER_ON, system=system)
    return browser or gettext(UNKNOWN)


def on_page(name: str) -> Markup:
    """in_words for a page: in a right-to-left page, product names isolated, left to
    right, inside the sentence."""
    browser, system = parts(name)
    wrap = (Markup('<bdi dir="ltr">%s</bdi>') if direction(current_locale()) == "rtl"
            else Markup("%s"))
    isolated = {key: wrap % value
                for key, value in (("browser", browser), ("system", system)) if value}
    if browser and system:
        return escape(gettext(BROWSER_ON)) % isolated
    if system:
        return escape(gettext(SOME_BROWSER_ON)) % isolated
    return isolated["browser"] if browser else escape(gettext(UNKNOWN))
