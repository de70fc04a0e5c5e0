"""Use cases: one function per thing a customer, an app or an operator does, each inside one
unit of work. Routes, the CLI and (later) the admin API call these; nothing below them does.

Rooms, from the ground up; a room imports only rooms before it in this list, `context`, and
the layers below services (protocol, store, federation, crypto, net, notifications):

- `consent/`  grants, purposes, the consent ledger and its receipts
- `profile/`  the customer profile: its schema, values with provenance, release to apps
              as consent allows, progressive profiling, the access log, retention
- `tokens/`   the token endpoint and its grant types, what is minted, and what apps call
              with tokens (introspection, revocation, UserInfo, the Grant API, the
              Profile API)
- `upstream/` upstream providers as configuration, round-trip state, kept upstream tokens,
              imported profile attributes, and revocation at the provider
- `signin/`   the authorization request, sign-in and registration pages, throttling,
              sessions and logout, re-authentication, signing in through an upstream
- `accounts/` the account center, operators' account use cases, export and erasure,
              linking upstream identities and what an upstream's withdrawal does
- `devices/`  the device authorization grant (RFC 8628): a device's request, and the
              customer approving it on another screen

`context.py` is what every use case gets; `maintenance.py` is the periodic housekeeping that
reaches into several rooms.
"""


class InvalidInput(ValueError):
    """An operator's input that cannot be accepted; the message says why."""


class RedirectUriRefused(InvalidInput):
    """A redirect URI that breaks the registration rules (RFC 7591 `invalid_redirect_uri`)."""


class NotFound(LookupError):
    """What an operator named does not exist."""
