"""Operating frontdesk: the operator's use cases, shared by the command line, the admin API
(``web/admin_api.py``) and the console (``web/admin_console.py``).

Each function takes the :class:`~.principals.Principal` making the call, checks its role against
:data:`~.principals.OPERATIONS`, runs one transaction with its ``admin.*`` audit event naming the principal, and
returns typed, frozen views (never a secret but the one just made, shown once), or raises an
:class:`~.errors.AdminError` that says what was wrong, with the HTTP status and wire code the API answers with.

- ``principals``: roles, the operation table, who is calling; ``tokens``: admin tokens; ``roles``: people's roles
- ``clients`` (with ``client_fields``), ``people``, ``catalog`` (scopes, resources, signing keys), ``upstreams``,
  ``vault`` (integrations, connections), ``audit_search``; ``paging``: cursors
- ``alerts`` (with ``alert_rules``, ``alert_evaluator``, ``alert_webhook``): alerts raised from the audit trail
"""
