"""The token vault: connect people's accounts at other services, keep their tokens sealed and fresh, and call those
services' APIs for them without a token ever reaching a language model, a browser or a log (DESIGN §6).

The rooms, behind the one front :class:`service.Vault` that the composition root opens on the core and attaches:
``integrations`` (the operator's apps and their catalog entries), ``connect`` (links and the callback), ``proxy``
(calls as the person), ``lifecycle`` (export, keep-alive, key rotation, deletion) and ``refresh`` (single-flight
refresh under a row lock). Their records are named operations in ``store`` (connections, API keys),
``integration_store`` and ``session_store`` (connect sessions); the provider catalog is ``catalog/``."""
