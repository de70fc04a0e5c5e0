"""Upstream providers (Google, Apple, Facebook, any OIDC): their stored configuration and
clients, the state of a round trip, the one upstream token kept per identity, profile
attributes imported with the customer's consent, identity states, and revocation at the
provider through the outbox.

May import `consent` and `tokens`; the customer-facing flows that use an upstream live in
`signin` (signing in through one) and `accounts` (linking, withdrawal)."""
