"""Accounts: what the signed-in customer does in the account center, operators' use cases
(clients, users), data export and erasure, linking and unlinking upstream identities, and
what an upstream's withdrawal does to the account.

The top floor: may import every other room."""
