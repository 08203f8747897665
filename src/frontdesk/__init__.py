"""frontdesk: an OAuth 2.1 + OpenID Connect authorization server and a token vault on one store."""

__version__ = "0.1.0"

__all__ = ["__version__"]
