"""The redirect URI matcher under fuzzing (RFC 6749 §3.1.2.2, RFC 9700 §4.1.3, RFC 8252 §7.3):
a requested URI matches only when it is byte-identical to a registered one, or, for a native
client's loopback IP literal, differs from it in the port alone. Inserted, percent-encoded and
Unicode look-alike characters never slip through a parser that rewrites them."""

from __future__ import annotations

import random
import re

import pytest

from idp.protocol.redirect_uri import redirect_uri_matches

pytestmark = pytest.mark.no_database

# Every registered form: https web, loopback with the port wildcard (with and without a
# registered port), a private-use scheme; with a query where a form allows one.
REGISTERED = [
    ("web", "https://app.example/callback"),
    ("web", "https://app.example/cb?tenant=a"),
    ("native", "http://127.0.0.1/callback"),
    ("native", "http://127.0.0.1:8999/callback"),
    ("native", "http://[::1]:8999/cb?x=1"),
    ("native", "com.example.app:/callback"),
]
INSERTED = [
    "\t", "\n", "\r", " ", "\x00", "\x0b", "\x0c", "\x1f", "\x7f", "\x85", "\xa0", "\u1680",
    "\u2000", "\u200b", "\u200d", "\u2028", "\u2029", "\u202e", "\u3000", "\ufeff",
    "\\", "\"", "<", ">", "^", "`", "{", "|", "}", "%", "#", "?", "@", ":", "/", ".", "..",
]
PERCENT = ["%09", "%0a", "%0D", "%20", "%00", "%2e", "%2E", "%2f", "%2F", "%3a", "%40", "%23",
           "%3f", "%5c", "%25", "%C2%A0", "%E2%80%8B"]
# Characters that NFKC, IDNA or a careless comparison would fold into ASCII ones.
LOOK_ALIKES = {
    "a": ["\u0430", "\uff41", "\u00e0", "\u0251"], "c": ["\u0441", "\uff43", "\u217d"],
    "e": ["\u0435", "\uff45"], "l": ["\u04cf", "\u217c", "\u2113", "\uff4c"],
    "o": ["\u043e", "\u03bf", "\uff4f"], "p": ["\u0440", "\uff50"], "b": ["\uff42"],
    "/": ["\uff0f", "\u2044", "\u2215", "\u29f8"], ":": ["\uff1a", "\u0589", "\u2236"],
    ".": ["\uff0e", "\u3002", "\u2024"], "1": ["\uff11", "\u0661"], "7": ["\uff17"],
    "?": ["\uff1f"], "=": ["\uff1d"], "[": ["\uff3b"], "]": ["\uff3d"], "x": ["\u0445"],
}
LOOPBACK = re.compile(r"^(http://(?:127\.0\.0\.1|\[::1\]))(?::([0-9]{1,5}))?(/.*)?$", re.S)


def mutate(uri: str, rng: random.Random) -> str:
    at = rng.randrange(len(uri) + 1)
    kind = rng.randrange(6)
    if kind == 0:
        return uri[:at] + rng.choice(INSERTED) + uri[at:]
    if kind == 1:
        return uri[:at] + rng.choice(PERCENT) + uri[at:]
    if kind == 2:  # a character replaced by its own percent-encoding
        at = min(at, len(uri) - 1)
        return uri[:at] + f"%{ord(uri[at]):02X}" + uri[at + 1:]
    if kind == 3:
        spots = [i for i, c in enumerate(uri) if c in LOOK_ALIKES]
        at = rng.choice(spots)
        return uri[:at] + rng.choice(LOOK_ALIKES[uri[at]]) + uri[at + 1:]
    if kind == 4:  # case flipped
        at = min(at, len(uri) - 1)
        return uri[:at] + uri[at].swapcase() + uri[at + 1:]
    # a port put in, changed or taken out: the one change RFC 8252 §7.3 allows on loopback
    match = LOOPBACK.match(uri)
    if match is None:
        return uri[:at] + ":" + str(rng.randrange(100000)) + uri[at:]
    port = rng.choice(["", f":{rng.randrange(100000)}", ":", ":0", ":08999"])
    return match.group(1) + port + (match.group(3) or "")


def allowed(registered: str, application_type: str, requested: str) -> bool:
    """The oracle: byte-identical, or a native loopback URI that differs only in a valid port."""
    if requested == registered:
        return True
    mine, theirs = LOOPBACK.match(registered), LOOPBACK.match(requested)
    if application_type != "native" or mine is None or theirs is None:
        return False
    port = theirs.group(2)
    return (mine.group(1), mine.group(3)) == (theirs.group(1), theirs.group(3)) and (
        port is None or int(port) <= 65535)


@pytest.mark.parametrize(("application_type", "registered"), REGISTERED)
def test_a_mutated_redirect_uri_never_matches(application_type: str, registered: str) -> None:
    rng = random.Random(f"redirect-uri-fuzz:{registered}")  # seeded: every run the same cases
    assert redirect_uri_matches([registered], registered, application_type)
    seen: set[str] = set()
    for _ in range(4000):
        requested = registered
        for _ in range(rng.choice((1, 1, 2, 3))):
            requested = mutate(requested, rng)
        seen.add(requested)
        expected = allowed(registered, application_type, requested)
        assert redirect_uri_matches([registered], requested, application_type) is expected, (
            f"{requested!r} against {registered!r}")
    assert len(seen) > 2000  # the loop explored, it did not repeat one case


@pytest.mark.parametrize("requested", [
    "http://127.0.0.1:8999/c\tallback", "http://127.0.0.1:8999/c\rallback",
    "http://127.0.0.1:8999/c\nallback", "http://127.0.0.1:8\t999/callback",
    "http://127.0.0.1\n:8999/callback", "\thttp://127.0.0.1:8999/callback",
    "http://127.0.0.1:8999/callback\t", "ht\ttp://127.0.0.1:8999/callback",
    "HTTP://127.0.0.1:8999/callback", "http://127.0.0.1:8999/callback?",
    "http://127.0.0.1:8999/callback#", "http://127.0.0.1:99999/callback",
])
def test_what_urlsplit_would_rewrite_never_matches(requested: str) -> None:
    assert not redirect_uri_matches(["http://127.0.0.1:8999/callback"], requested, "native")
