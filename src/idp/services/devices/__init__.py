"""Devices without a keyboard or a browser (smart speakers, TVs): the device authorization
grant (RFC 8628). A device asks for a code; the customer enters it on a phone, confirms it is
the code the device shows, and goes through the same sign-in and consent as any app (SSO,
federation, purpose choices); the device's poll then redeems the approval once
(`idp.services.tokens.grant_types.device_code`).

May import `consent`, `tokens` and `signin`."""
