"""Signing in: the authorization request and its interaction pages (sign-in, registration,
consent), password checks and their throttling, browser sessions and logout, confirming who
you are again, signing in through an upstream provider, and the account's security events.

May import `consent`, `tokens` and `upstream`."""
