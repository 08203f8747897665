"""Finding the client a request names: the one lookup every endpoint uses for the ``client_id`` it is presented
(/authorize, client authentication at /token, introspection, revocation and device authorization, logout).

An ordinary client_id is a row of the client store, read through its short cache: that path is unchanged. A
client_id that is an https URL may name a client ID metadata document (draft-ietf-oauth-client-id-metadata-document,
``client_metadata_document``), which may have to be fetched: :func:`find_client` does so (blocking, in a worker
thread), and on the event loop :func:`prepare_client` fetches first, off the loop, so that the blocking lookup after
it reads only the store.
"""

from __future__ import annotations

import anyio.to_thread

from ..core import Frontdesk
from ..storage.clients import ClientRecord

__all__ = ["find_client", "names_document", "prepare_client"]

# CIMD §3: a client_id URL is https. Ids this server generates never look like one (CIMD §6.9, storage/clients.py).
DOCUMENT_PREFIX = "https://"


def names_document(client_id: str) -> bool:
    """Whether ``client_id`` may name a client ID metadata document, by its form alone."""
    return client_id.startswith(DOCUMENT_PREFIX)


def find_client(fd: Frontdesk, client_id: str, *, fetch: bool = True) -> ClientRecord | None:
    """The client ``client_id`` names, or None. For a metadata document URL this may fetch the document (blocking,
    at most about ``[registration] metadata_timeout``) unless ``fetch`` is False: then only a stored copy that may
    still be used counts."""
    if not names_document(client_id):
        return fd.clients.get(client_id)
    # Imported here: the document's judge is registration, which imports client authentication, which uses this.
    from .client_metadata_document import document_client

    return document_client(fd, client_id, fetch=fetch)


async def prepare_client(fd: Frontdesk, client_id: str) -> None:
    """On the event loop, before a blocking step that looks ``client_id`` up with ``fetch=False``: make a metadata
    document's stored copy current, in a worker thread. Nothing for an ordinary client_id."""
    if names_document(client_id) and fd.settings.registration.metadata_documents:
        await anyio.to_thread.run_sync(find_client, fd, client_id)
