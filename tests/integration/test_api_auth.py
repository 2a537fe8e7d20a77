"""Sessions, CSRF and failed-login limits of the HTTP API, against the real controller runtime
and the real API server: ServiceAccount tokens are checked by TokenReview, and a session
ends when its account is deleted.

Every client connects from a loopback address of its choosing (127.0.0.0/8 all reach the
server), so limits per client address and per claimed user can be told apart.
"""

from __future__ import annotations

import base64
import json
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from api_fixtures import Serve, cluster_grant, self_signed
from cluster_helpers import eventually
from identities import may, service_account_token
from tether import metrics
from tether.controller.runtime import Runtime
from tether.kube import KubeClient
from tether.server.auth import COOKIE, CSRF_HEADER, AuthSettings

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", "")) if isinstance(self.body, dict) else ""


@dataclass
class Server:
    url: str
    rt: Runtime
    ssl_context: ssl.SSLContext | None = None

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        session: str | None = None,
        csrf: str | None = None,
        body: Any = None,
        source: str = "127.0.0.1",
    ) -> Reply:
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if session is not None:
            headers["Cookie"] = f"{COOKIE}={session}"
        if csrf is not None:
            headers[CSRF_HEADER] = csrf
        connector = aiohttp.TCPConnector(local_addr=(source, 0), ssl=self.ssl_context or True)
        async with (
            aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # only the cookie the test sends
                timeout=aiohttp.ClientTimeout(total=60),
            ) as http,
            http.request(method, self.url + path, headers=headers, json=body) as resp,
        ):
            text = await resp.text()
            return Reply(resp.status, json.loads(text) if text[:1] in "[{" else text, resp.headers)

    async def login(self, token: str, source: str = "127.0.0.1") -> tuple[str, Reply]:
        """A session id (the cookie's value) and the login's reply."""
        reply = await self.call("POST", "/api/v1/session", body={"token": token}, source=source)
        assert reply.status == 200, reply.body
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(reply.headers["Set-Cookie"])
        return cookie[COOKIE].value, reply


Start = Callable[..., Any]


@pytest.fixture
def start(serve: Serve) -> Start:
    """Starts a controller runtime with the given ``AuthSettings`` fields (and ``tls=``)."""

    @asynccontextmanager
    async def running(tls: tuple[Path, Path] | None = None, **auth: Any) -> AsyncIterator[Server]:
        extra: dict[str, Any] = {}
        trusted = None
        if tls is not None:
            extra = {"tls_cert_file": str(tls[0]), "tls_key_file": str(tls[1])}
            trusted = ssl.create_default_context(cafile=str(tls[0]))
        async with serve(auth=AuthSettings(**auth), **extra) as served:
            yield Server(url=served.url, rt=served.rt, ssl_context=trusted)

    return running


def auth_failures(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value("tether_api_auth_failures_total", {"reason": reason})
    return value or 0.0


def token_reviews() -> float:
    return metrics.REGISTRY.get_sample_value("tether_api_token_reviews_total") or 0.0


def forged_jwt(subject: str) -> str:
    """A token shaped like a ServiceAccount's, claiming ``subject``, signed by nobody."""

    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims = {"iss": "kubernetes/serviceaccount", "sub": subject}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.{uuid.uuid4().hex}"


async def test_login_gives_a_strict_cookie_that_authenticates_reads(
    start: Start, kube: KubeClient, namespace: str
) -> None:
    token = await service_account_token(kube, namespace, "viewer")
    user = f"system:serviceaccount:{namespace}:viewer"
    async with start() as server:
        session, login = await server.login(token)
        assert login.body["username"] == user
        assert "system:serviceaccounts" in login.body["groups"]
        assert login.body["expiresAt"].endswith("Z") and login.body["csrfToken"]
        attributes = [a.strip().lower() for a in login.headers["Set-Cookie"].split(";")]
        assert {"httponly", "samesite=strict", "path=/"} <= set(attributes)
        assert "secure" not in attributes  # plain HTTP
        assert token not in json.dumps(login.body) and session not in json.dumps(login.body)

        who = await server.call("GET", "/api/v1/session", session=session)
        assert (who.status, who.body) == (200, login.body)  # a reloaded page finds its CSRF token
        audit = await server.call("GET", "/api/v1/audit", session=session)
        assert (audit.status, audit.body) == (200, [])  # authenticated; may list nothing

        # Logging in again from the same browser replaces its session.
        again = await server.call("POST", "/api/v1/session", body={"token": token}, session=session)
        assert again.status == 200 and again.body["csrfToken"] != login.body["csrfToken"]
        replaced = await server.call("GET", "/api/v1/session", session=session)
        assert (replaced.status, replaced.reason) == (401, "SessionExpired")

        unknown = await server.call("GET", "/api/v1/session", session="made-up")
        assert (unknown.status, unknown.reason) == (401, "SessionExpired")
        nothing = await server.call("GET", "/api/v1/session")
        assert nothing.status == 401 and nothing.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_login_needs_a_valid_token_in_a_json_body(
    start: Start, kube: KubeClient, namespace: str
) -> None:
    async with start() as server:
        bad = await server.call("POST", "/api/v1/session", body={"token": "not-a-token"})
        assert (bad.status, bad.body["error"]) == (401, "the token is not valid")
        assert "Set-Cookie" not in bad.headers
        empty = await server.call("POST", "/api/v1/session", body={"password": "x"})
        assert empty.status == 400 and '{"token"' in empty.body["error"]
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                server.url + "/api/v1/session",
                data=json.dumps({"token": await kube.bearer_token()}),
                headers={"Content-Type": "text/plain"},  # what a cross-site form can send
            ) as resp,
        ):
            assert resp.status == 415 and "Set-Cookie" not in resp.headers


async def test_a_change_with_the_cookie_needs_the_csrf_token_and_a_bearer_token_does_not(
    start: Start, kube: KubeClient, namespace: str
) -> None:
    token = await service_account_token(kube, namespace, "operator")
    async with start() as server:
        session, login = await server.login(token)
        csrf = login.body["csrfToken"]
        before = auth_failures("csrf-token")

        missing = await server.call("DELETE", "/api/v1/session", session=session)
        assert (missing.status, missing.reason) == (403, "CSRFTokenInvalid")
        assert CSRF_HEADER in missing.body["error"]
        wrong = await server.call("DELETE", "/api/v1/session", session=session, csrf=csrf[:-2])
        assert (wrong.status, wrong.reason) == (403, "CSRFTokenInvalid")
        # Every state-changing route is guarded before its handler runs, the API's too.
        refresh = f"/api/v1/applications/{namespace}/web/refresh"
        guarded = await server.call("POST", refresh, session=session)
        assert (guarded.status, guarded.reason) == (403, "CSRFTokenInvalid")
        assert auth_failures("csrf-token") == before + 3
        # The session survived the refused attempts.
        assert (await server.call("GET", "/api/v1/session", session=session)).status == 200

        # A bearer token is no ambient credential: no CSRF token needed.
        by_token = await server.call("POST", refresh, token=token)
        assert by_token.status != 403 and by_token.reason != "CSRFTokenInvalid", by_token.body
        no_session = await server.call("DELETE", "/api/v1/session", token=token)
        assert (no_session.status, no_session.body["ended"]) == (200, False)

        # The right token passes: the logout ends the session and clears the cookie.
        logout = await server.call("DELETE", "/api/v1/session", session=session, csrf=csrf)
        assert (logout.status, logout.body["ended"]) == (200, True)
        assert f"{COOKIE}=" in logout.headers["Set-Cookie"]
        gone = await server.call("GET", "/api/v1/session", session=session)
        assert (gone.status, gone.reason) == (401, "SessionExpired")


async def test_a_session_expires(start: Start, kube: KubeClient, namespace: str) -> None:
    token = await service_account_token(kube, namespace, "short")
    async with start(session_ttl=3.0) as server:
        session, _ = await server.login(token)
        assert (await server.call("GET", "/api/v1/session", session=session)).status == 200

        async def expired() -> bool:
            reply = await server.call("GET", "/api/v1/session", session=session)
            return (reply.status, reply.reason) == (401, "SessionExpired")

        await eventually(expired, timeout=60, what="the session to expire")
        # Its token still works as a bearer token: only the session ended.
        assert (await server.call("GET", "/api/v1/session", token=token)).status == 200


async def test_deleting_the_service_account_ends_its_sessions(
    start: Start, kube: KubeClient, namespace: str
) -> None:
    token = await service_account_token(kube, namespace, "leaving")
    async with start(session_review_period=0.5) as server:
        session, _ = await server.login(token)
        assert (await server.call("GET", "/api/v1/session", session=session)).status == 200
        await kube.delete("v1", "ServiceAccount", "leaving", namespace)

        async def ended() -> bool:
            reply = await server.call("GET", "/api/v1/session", session=session)
            return reply.status == 401

        await eventually(ended, timeout=90, what="the deleted account's session to end")


async def test_an_admin_ends_every_session_of_a_user(
    start: Start, kube: KubeClient, namespace: str
) -> None:
    token = await service_account_token(kube, namespace, "leaver")
    other = await service_account_token(kube, namespace, "colleague")
    user = f"system:serviceaccount:{namespace}:leaver"
    async with start() as server:
        first, _ = await server.login(token)
        second, _ = await server.login(token)
        colleague, _ = await server.login(other)
        path = f"/api/v1/sessions?user={user}"

        refused = await server.call("DELETE", path, token=other)
        assert (
            refused.status == 403 and "may not delete sessions.tether.dev" in refused.body["error"]
        )
        assert (await server.call("GET", "/api/v1/session", session=first)).status == 200

        done = await server.call("DELETE", path, token=await kube.bearer_token())
        assert (done.status, done.body) == (200, {"user": user, "ended": 2})
        for session in (first, second):
            assert (await server.call("GET", "/api/v1/session", session=session)).status == 401
        assert (await server.call("GET", "/api/v1/session", session=colleague)).status == 200


async def test_failed_tokens_are_limited_per_address_without_asking_the_api_server(
    start: Start, kube: KubeClient, namespace: str
) -> None:
    good = await service_account_token(kube, namespace, "bystander")
    async with start(failure_limit=3) as server:
        for i in range(3):
            reply = await server.call("GET", "/api/v1/audit", token=f"junk-{i}", source="127.0.0.6")
            assert reply.status == 401
        reviews, limited = token_reviews(), auth_failures("rate-limited")

        # Even a good token is refused from that address, and never reaches TokenReview.
        refused = await server.call("GET", "/api/v1/session", token=good, source="127.0.0.6")
        assert (refused.status, refused.reason) == (429, "TooManyFailedLogins")
        assert 0 < int(refused.headers["Retry-After"]) <= 60
        login = await server.call(
            "POST", "/api/v1/session", body={"token": good}, source="127.0.0.6"
        )
        assert login.status == 429 and "Set-Cookie" not in login.headers
        assert token_reviews() == reviews
        assert auth_failures("rate-limited") == limited + 2

        # Another address is not held; successful logins are never counted.
        for _ in range(5):
            await server.login(good, source="127.0.0.7")


async def test_failed_tokens_are_limited_per_claimed_user_across_addresses(
    start: Start, kube: KubeClient, namespace: str
) -> None:
    victim = await service_account_token(kube, namespace, "targeted")
    bystander = await service_account_token(kube, namespace, "bystander")
    claimed = f"system:serviceaccount:{namespace}:targeted"
    async with start(failure_limit=3) as server:
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):  # one failure per address
            reply = await server.call(
                "POST", "/api/v1/session", body={"token": forged_jwt(claimed)}, source=source
            )
            assert reply.status == 401
        reviews = token_reviews()
        held = await server.call(
            "POST", "/api/v1/session", body={"token": victim}, source="127.0.0.5"
        )
        assert (held.status, held.reason) == (429, "TooManyFailedLogins")
        assert token_reviews() == reviews
        # The address itself is not held: another user logs in from it.
        await server.login(bystander, source="127.0.0.5")


async def test_metrics_need_a_token_allowed_to_get_them_unless_public(
    start: Start, kube: KubeClient, namespace: str
) -> None:
    token = await service_account_token(kube, namespace, "prometheus")
    name = f"tether-test-metrics-{namespace}"
    async with start() as server:
        assert (await server.call("GET", "/healthz")).status == 200  # probes stay open
        anonymous = await server.call("GET", "/metrics")
        assert anonymous.status == 401 and "bearer token is required" in anonymous.body["error"]
        denied = await server.call("GET", "/metrics", token=token)
        assert denied.status == 403 and "may not get /metrics" in denied.body["error"]
        assert "tether_" not in json.dumps(denied.body)
        rule = {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
        async with cluster_grant(kube, (namespace, "prometheus"), [rule], name):

            async def scraped() -> bool:
                reply = await server.call("GET", "/metrics", token=token)
                return reply.status == 200 and "# TYPE tether_queue_depth gauge" in reply.body

            # A refusal is remembered a few seconds (REVIEW_TTL): the grant shows after it.
            await eventually(scraped, timeout=60, what="a scrape with the granted token")
    async with start(metrics_public=True) as server:
        public = await server.call("GET", "/metrics")
        assert public.status == 200 and "tether_api_auth_failures_total" in public.body


def cookie_attributes(reply: Reply) -> set[str]:
    return {a.strip().lower() for a in reply.headers["Set-Cookie"].split(";")}


async def test_under_tls_the_session_cookie_is_secure(
    start: Start, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    token = await service_account_token(kube, namespace, "browser")
    async with start(tls=self_signed(tmp_path)) as server:
        assert server.url.startswith("https://")
        session, login = await server.login(token)
        assert {"secure", "httponly", "samesite=strict"} <= cookie_attributes(login)
        assert (await server.call("GET", "/api/v1/session", session=session)).status == 200
    # Behind an ingress that ends TLS, the operator says so.
    async with start(secure_cookies=True) as server:
        _, login = await server.login(token)
        assert "secure" in cookie_attributes(login)


async def test_the_shipped_roles_aggregate_into_view_and_edit(
    kube: KubeClient, namespace: str
) -> None:
    """deploy/rbac.yaml's tether-viewer and tether-operator, applied under unique names:
    a namespace's "view" may then read its Applications, its "edit" may also sync them."""
    rbac = "rbac.authorization.k8s.io/v1"
    docs = yaml.safe_load_all((REPO / "deploy" / "rbac.yaml").read_text())
    shipped = {d["metadata"]["name"]: d for d in docs if d and d["kind"] == "ClusterRole"}
    roles = {name: shipped[name] for name in ("tether-viewer", "tether-operator")}
    created = []
    try:
        for role in roles.values():
            role["metadata"]["name"] += f"-{namespace}"
            await kube.apply(role)
            created.append(role["metadata"]["name"])
        for account, builtin in (("reader", "view"), ("deployer", "edit")):
            await service_account_token(kube, namespace, account)
            await kube.apply(
                {
                    "apiVersion": rbac,
                    "kind": "RoleBinding",
                    "metadata": {"name": account, "namespace": namespace},
                    "roleRef": {
                        "apiGroup": rbac.split("/")[0],
                        "kind": "ClusterRole",
                        "name": builtin,
                    },
                    "subjects": [
                        {"kind": "ServiceAccount", "name": account, "namespace": namespace}
                    ],
                }
            )

        def attrs(verb: str, ns: str = namespace) -> dict[str, str]:
            return {
                "verb": verb,
                "group": "tether.dev",
                "resource": "applications",
                "namespace": ns,
            }

        reader = f"system:serviceaccount:{namespace}:reader"
        deployer = f"system:serviceaccount:{namespace}:deployer"

        async def aggregated() -> bool:
            return await may(kube, reader, attrs("list")) and await may(
                kube, deployer, attrs("sync")
            )

        await eventually(aggregated, timeout=60, what="the roles aggregated into view and edit")
        assert await may(kube, reader, attrs("get")) and await may(kube, deployer, attrs("get"))
        assert not await may(kube, reader, attrs("sync"))
        assert not await may(kube, deployer, attrs("sync", "default"))
    finally:
        for name in created:
            await kube.delete(rbac, "ClusterRole", name)
