"""The provider catalog: what frontdesk knows about each service a person can connect, as data (DESIGN §6).

One TOML file per provider, validated at load (:mod:`.loader`) into frozen values (:mod:`.model`). The package ships a
catalog under ``vault/providers/``; an operator adds or overrides a provider by dropping a file of the same shape into
``{home}/providers/`` (or ``vault_providers_dir``), no code. A bad file is a :class:`CatalogError` that names the
file and the field.

URLs may hold templates filled per integration or per connection (:mod:`.templates`): ``{tenant}`` (Microsoft
Entra), ``{shop}`` (Shopify), ``{instance_url}`` (Salesforce, kept from the token response); a value is checked
against the pattern its :class:`Variable` declares before it is put into a URL, so nothing a caller sends can change
the host a request goes to. Providers that publish OpenID Connect Discovery (or RFC 8414 metadata) may leave their
endpoints to :func:`resolve_discovery` (:mod:`.discovery`).
"""

from .discovery import resolve_discovery
from .loader import load_catalog, scope_problem
from .model import Api, Catalog, CatalogError, Provider, Variable
from .templates import allowed_hosts, fill

__all__ = [
    "Api",
    "Catalog",
    "CatalogError",
    "Provider",
    "Variable",
    "allowed_hosts",
    "fill",
    "load_catalog",
    "resolve_discovery",
    "scope_problem",
]
