"""The authorization server's use cases (DESIGN §2, services).

- the authorization request: ``authorization`` (the request as a value, its validation), ``decision`` (pure: what a
  valid request gets next), ``interactions`` (carrying it out: codes, sign-in and consent interactions);
- the token endpoint: ``grants`` (the one grant-type registry and each grant), ``client_auth``, ``tokens``;
  ``introspection`` and revocation; ``registration`` (the one judge of client metadata, RFC 7591; its field checks
  in ``client_metadata``), ``dynamic_registration`` (``/register``, RFC 7591/7592, with ``registration_request``)
  and ``initial_access_tokens``;
- people: ``signin``, ``signin_steps``, ``second_factor``, ``passkeys``, ``password``, ``account``, ``logout``,
  ``device_flow`` (RFC 8628's person side); ``app_identity`` (how an app is named to a person: one the operator did
  not register never by its chosen name alone);
- around them: ``rate_limits`` (429 limits on guessable steps), ``signin_throttle`` (growing waits after wrong
  passwords), ``writes`` (a write retried while SQLite is busy), ``housekeeping`` (the purge).

Each use case takes a ``Frontdesk`` and plain values, runs one transaction on storage with its audit event, and
returns a value (``outcomes``) or raises an ``OAuthError``; HTTP stays in ``frontdesk.web``."""
