"""Storage (DESIGN §2): the SQLAlchemy schema (``schema/``, one module per noun), the engine and its transactions
(``db``), the Alembic migrations, and the purpose-named operations the services call on a connection
(``consume_code``, ``consume_refresh``, ``revoke_grant``, …).

Persistence only: what a row may hold is judged before it gets here (client metadata in ``oauth.registration``, user
codes in ``oauth.device_flow``), so nothing here imports protocol rules, services or HTTP. Single use and row locks
are expressed here, as one atomic statement each, because they are facts of the store."""
