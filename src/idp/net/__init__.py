"""Outbound HTTP to URLs that clients supply (security.md §0 item 16: SSRF)."""
