"""A readable name for the browser a session signed in from ("Chrome on Android"), from its
User-Agent header, for the account center's list of sessions and the new-device notice.

A small parser of the common families rather than a dependency: the name is a convenience
for the customer, not a security decision (a User-Agent is whatever the client says), and the
answer is always built from the fixed words below, so no text of the header is ever stored or
shown. Order matters: Chromium-based browsers also say "Chrome" and "Safari", and Chrome on
iOS says "Safari" too, so the more specific tokens are tried first.
"""

from __future__ import annotations

from idp.locales.devices import UNKNOWN, stored_name

MAX_AGENT_LENGTH = 512  # longer headers are read only this far

# (token in the header, browser name), most specific first.
_BROWSERS: tuple[tuple[str, str], ...] = (
    ("EdgiOS/", "Edge"), ("EdgA/", "Edge"), ("Edg/", "Edge"), ("Edge/", "Edge"),
    ("OPR/", "Opera"), ("OPiOS/", "Opera"), ("Opera", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"), ("YaBrowser/", "Yandex Browser"),
    ("Vivaldi/", "Vivaldi"), ("Brave/", "Brave"), ("DuckDuckGo/", "DuckDuckGo"),
    ("FxiOS/", "Firefox"), ("Firefox/", "Firefox"),
    ("CriOS/", "Chrome"), ("HeadlessChrome/", "Chrome"), ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Trident/", "Internet Explorer"), ("MSIE ", "Internet Explorer"),
    ("Safari/", "Safari"),
)

# (token, operating system), most specific first: Android says "Linux", iOS "like Mac OS X".
_SYSTEMS: tuple[tuple[str, str], ...] = (
    ("Windows Phone", "Windows Phone"), ("Windows", "Windows"),
    ("iPhone", "iOS"), ("iPod", "iOS"), ("iPad", "iPadOS"),
    ("Android", "Android"), ("CrOS", "ChromeOS"),
    ("Macintosh", "macOS"), ("Mac OS X", "macOS"),
    ("Ubuntu", "Ubuntu"), ("Fedora", "Fedora"), ("Linux", "Linux"), ("X11", "Linux"),
)


def _first(agent: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for token, name in table:
        if token in agent:
            return name
    return None


def describe(agent: str | None) -> str:
    """The browser and system a User-Agent names, in our own words; UNKNOWN when it names
    neither. At most 40 characters, whatever the header held."""
    if not agent:
        return UNKNOWN
    agent = agent[:MAX_AGENT_LENGTH]
    return stored_name(_first(agent, _BROWSERS), _first(agent, _SYSTEMS))
