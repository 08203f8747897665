"""Storage: the SQLAlchemy schema, the engine and the purpose-named operations the services need."""
