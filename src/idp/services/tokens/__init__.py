"""Tokens: the token endpoint (client authentication, one handler per `grant_type`), minting
ID, access and refresh tokens, signing keys and clients' keys, and the endpoints apps call
with what they were given: introspection, revocation, UserInfo and the Grant API.

These are the hot paths brands size their fleets by. May import `consent`."""
