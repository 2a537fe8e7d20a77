"""A client of tether's HTTP API (``/api/v1``), for ``tether --server URL``: ``ApiClient``
speaks HTTP and turns refusals into the errors the direct path raises; ``ApiReader`` reads
Applications without an event loop; ``RemoteApplications`` asks for what
``ApplicationService`` answers directly, with the same results.

Each name loads on first use: a read (``tether.client.reading``) does not bring asyncio or the
sync-following code."""

from typing import TYPE_CHECKING

from tether.lazy_names import lazy_names

if TYPE_CHECKING:
    from tether.client.apps import RemoteApplications
    from tether.client.http import ApiClient, ApiRefused, ServerOptions
    from tether.client.reading import ApiReader

__all__ = ["ApiClient", "ApiReader", "ApiRefused", "RemoteApplications", "ServerOptions"]

__getattr__ = lazy_names(
    __name__,
    {
        "ApiClient": "tether.client.http",
        "ApiRefused": "tether.client.http",
        "ServerOptions": "tether.client.http",
        "ApiReader": "tether.client.reading",
        "RemoteApplications": "tether.client.apps",
    },
)
