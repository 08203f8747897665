"""The authorization server's use cases (DESIGN §2, services): the authorization request and its decision, the
token endpoint's grants, client authentication, token minting, introspection and revocation, sign-in and its second
factor, passkeys, logout, and the abuse limits around them. Each takes a ``Frontdesk`` and plain values, runs its
transaction on storage and returns a value or raises an ``OAuthError``; HTTP stays in ``frontdesk.web``."""
