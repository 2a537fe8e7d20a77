"""A client of tether's HTTP API (``/api/v1``), for ``tether --server URL``: ``ApiClient``
speaks HTTP and turns refusals into the errors the direct path raises; ``RemoteApplications``
asks for what ``ApplicationService`` answers directly, with the same results."""

from tether.client.apps import RemoteApplications
from tether.client.http import ApiClient, ApiRefused, ServerOptions

__all__ = ["ApiClient", "ApiRefused", "RemoteApplications", "ServerOptions"]
