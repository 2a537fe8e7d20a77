"""The one gate in front of every Application route: find the app the caller may see, or
answer exactly as if it did not exist, then check the verb the route needs."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from tether.api.application import API_VERSION, KIND, Application
from tether.errors import KubeError, TetherError
from tether.model import Obj
from tether.server.access import Caller
from tether.server.api.context import context_of
from tether.server.auth import ACCESS, caller_of
from tether.server.errors import ApiError

GET, LIST, SYNC = "get", "list", "sync"


@dataclass
class Target:
    """An Application the caller may act on, as read just now."""

    caller: Caller
    namespace: str
    name: str
    obj: Obj

    def app(self) -> Application:
        """The parsed Application; 422 when its spec is not valid."""
        try:
            return Application.from_obj(self.obj)
        except TetherError as e:
            raise ApiError(422, e.message, e.hint, reason="InvalidApplication") from e


def not_found(namespace: str, name: str) -> ApiError:
    """The answer for a missing app and for an app the caller may not read: the same, so
    a caller cannot learn which names exist."""
    return ApiError(
        404,
        f"Application {namespace}/{name} not found",
        hint="list the applications you may read with GET /api/v1/applications",
    )


async def may(
    request: web.Request, caller: Caller, verb: str, namespace: str, name: str = ""
) -> bool:
    """``access.may`` with the API server's unavailability answered 503, never "allowed"."""
    try:
        return await request.app[ACCESS].may(caller, verb, namespace, name=name)
    except KubeError as e:
        raise ApiError(
            503,
            f"cannot check access with the Kubernetes API: {e.message}",
            "retry",
            reason="KubernetesUnavailable",
        ) from e


async def app_for(request: web.Request, verb: str = GET) -> Target:
    """The Application named by the path (``{namespace}/{name}``) and its caller.

    404 when it does not exist, is not in a namespace this server watches, or the caller may
    not ``get`` it; 403 when the caller may get it but not ``verb``."""
    ctx = context_of(request)
    caller = caller_of(request)
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    if not ctx.serves(namespace) or not await may(request, caller, GET, namespace, name):
        raise not_found(namespace, name)
    obj = await ctx.kube.get(API_VERSION, KIND, name, namespace)
    if obj is None:
        raise not_found(namespace, name)
    if verb != GET and not await may(request, caller, verb, namespace, name):
        raise ApiError(
            403,
            f"{caller.username} may not {verb} applications.tether.dev {namespace}/{name}",
            hint=f"ask for the verb '{verb}' on applications.tether.dev in namespace "
            f"{namespace} (see the RBAC recipes in docs/auth.md)",
        )
    return Target(caller, namespace, name, obj)
