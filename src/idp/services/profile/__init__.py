"""The central customer profile (issue 16): the attribute schema the operator sets, values
that keep where they came from (the customer, an upstream, an app, an operator), the rule
that releases an attribute to an app only for a purpose the customer granted it, the values
an authorization request collects on the consent page (progressive profiling), the access
log of what each app received and when, and the retention job that purges values whose
purposes are gone.

May import `consent`; `tokens` (ID tokens, UserInfo, the Profile API), `upstream` (imported
attributes), `signin` (the consent page) and `accounts` (the account center, export) use it."""
