"""A real validating admission webhook that holds one create in a namespace: a deterministic
point in the middle of a sync, with no timing involved.

The API server calls it over TLS (a self-signed certificate made with openssl, given to the
API server as the caBundle). Dry-run requests are allowed at once; real creates of the
given kind and label are allowed and counted, except the ``hold_at``-th, which is answered only when
``release()`` is called (and then refused). The webhook configuration selects only the
namespace carrying this hold's own label, so nothing else in the shared cluster is touched.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from tether.kube import KubeClient

API = "admissionregistration.k8s.io/v1"
LABEL = "tether-test/admission-hold"


class AdmissionHold:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        resource: str,
        hold_at: int,
        label: str,
        *,
        operation: str = "CREATE",
        group: str = "",
    ) -> None:
        """Only objects carrying the label key ``label`` are counted and held (every object of
        ``resource`` when ``label`` is ""); ``operation`` and ``group``: which requests."""
        self.kube = kube
        self.namespace = namespace
        self.resource = resource
        self.label = label
        self.operation = operation
        self.group = group
        self.hold_at = hold_at
        self.name = f"hold-{uuid.uuid4().hex[:10]}.tether.test"
        self.admitted: list[str] = []
        """Names of the real (not dry-run) creates let through so far. A request admitted
        may still not be stored: the API server drops it if its client goes away."""
        self.held_name = ""
        self.held = asyncio.Event()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self, tmp: Path) -> AdmissionHold:
        cert, key = tmp / "hold.crt", tmp / "hold.key"
        await asyncio.to_thread(
            subprocess.run,
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1",
                "-addext", "basicConstraints=critical,CA:TRUE",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
        app = web.Application()
        app.router.add_post("/validate", self._review)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        port = self._runner.addresses[0][1]
        ns = await self.kube.get("v1", "Namespace", self.namespace)
        assert ns is not None
        await self.kube.merge_patch(ns, {"metadata": {"labels": {LABEL: self.name}}})
        await self.kube.apply(
            {
                "apiVersion": API,
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": self.name},
                "webhooks": [
                    {
                        "name": self.name,
                        "clientConfig": {
                            "url": f"https://127.0.0.1:{port}/validate",
                            "caBundle": base64.b64encode(cert.read_bytes()).decode(),
                        },
                        "rules": [
                            {
                                "operations": [self.operation],
                                "apiGroups": [self.group],
                                "apiVersions": ["v1"],
                                "resources": [self.resource],
                            }
                        ],
                        "namespaceSelector": {"matchLabels": {LABEL: self.name}},
                        "objectSelector": (
                            {"matchExpressions": [{"key": self.label, "operator": "Exists"}]}
                            if self.label
                            else {}
                        ),
                        "sideEffects": "None",
                        "admissionReviewVersions": ["v1"],
                        "failurePolicy": "Fail",
                        "timeoutSeconds": 30,
                    }
                ],
            }
        )
        return self

    async def _review(self, request: web.Request) -> web.Response:
        review: dict[str, Any] = await request.json()
        req = review["request"]
        allowed = True
        if not req.get("dryRun"):
            if len(self.admitted) + 1 == self.hold_at and not self.held.is_set():
                self.held_name = str(req.get("name"))
                self.held.set()
                await self._release.wait()
                allowed = False
            else:
                self.admitted.append(str(req.get("name")))
        return web.Response(
            text=json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {"uid": req["uid"], "allowed": allowed},
                }
            ),
            content_type="application/json",
        )

    def release(self) -> None:
        """Answers the held request (refused); later requests are let through."""
        self._release.set()

    async def stop(self) -> None:
        """Answers the held request (refused), removes the webhook and the server; again
        does nothing."""
        self._release.set()
        if self._runner is None:
            return
        await self.kube.delete(API, "ValidatingWebhookConfiguration", self.name)
        await self._runner.cleanup()
        self._runner = None
