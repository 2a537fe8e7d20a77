"""A sync operation that advances one step per call, from the state recorded on the Application.

``SyncOperation.step`` is called again and again — by the controller on each reconcile of an
app with a Running operation, or in a loop by ``tether app sync`` when no controller runs —
until it reports the operation ended. Each call:

1. compares the app at the operation's pinned revision (the render cache makes this cheap);
2. builds the plan (``tether.sync.tasks.build_plan``): PreSync hooks, the Sync phase's
   objects and hooks wave by wave (kind order within a wave), the prune step (reverse waves,
   ``PruneLast`` last), PostSync hooks; SyncFail hooks only after a failure;
3. takes up the plan where ``OperationState`` (``sync_phase``, ``wave``, ``pruning``, the
   hook instances in ``resources``) says it stands: applies the current wave's objects that
   differ, creates its hooks, and returns ``Step(wait=...)`` while they are not yet healthy
   (hooks: Succeeded). A wave is waited on only when something follows it. A wave done goes
   on to the next within the same call, so a sync of one wave is one call;
4. ends the operation Failed when an apply or a hook fails, or when a wave is still not
   healthy after the operation timeout (naming the object and its state), after running the
   SyncFail hooks; Failed with "terminated" when ``phase`` was set to Terminating.

The caller writes ``Step.state`` to ``status.operationState`` after each call (so a
controller restarted in the middle of wave 2 resumes at wave 2), and when ``Step.done`` the
whole status with ``Step.result`` (history, inventory; ``tether.status.write_status``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.api.application import Application
from tether.compare import Comparer, Comparison
from tether.kube import KubeClient
from tether.live import LiveObjects
from tether.sync.apply import SyncResult
from tether.sync.state import OperationRequest, OperationState

DEFAULT_TIMEOUT = 600.0
"""Seconds an operation may wait for its waves and hooks before it fails (as
``--timeout``/``syncPolicy`` operation timeout)."""


@dataclass
class Step:
    state: OperationState
    done: bool = False
    wait: float = 0.0
    """Seconds until the next call is useful (the controller also comes back earlier, on a
    live event of the app's objects)."""
    waiting_for: str = ""
    """What the operation waits for, in one line: ``wave 2: Deployment ns/web is Progressing``."""
    result: SyncResult | None = None
    """When done: the outcome, for status, history, audit and the CLI."""
    comparison: Comparison | None = None
    """The comparison this call made, folded with what it applied."""


@dataclass
class SyncOperation:
    kube: KubeClient
    comparer: Comparer
    live: LiveObjects
    app: Application
    state: OperationState
    dry_run: bool = False
    """A dry run does every wave in one call, waits for nothing, runs no hooks (they are
    listed as what would run) and records nothing."""
    timeout: float = DEFAULT_TIMEOUT
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        kube: KubeClient,
        comparer: Comparer,
        live: LiveObjects,
        app: Application,
        request: OperationRequest,
        *,
        run_by: str,
        dry_run: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> SyncOperation:
        """A new operation for ``request``; its revision is pinned by the first step."""
        raise NotImplementedError

    @classmethod
    def resume(
        cls,
        kube: KubeClient,
        comparer: Comparer,
        live: LiveObjects,
        app: Application,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> SyncOperation:
        """The operation recorded in ``app.status.operationState`` (Running or Terminating)."""
        raise NotImplementedError

    async def step(self, comparison: Comparison | None = None) -> Step:
        """Advances as far as it can without waiting; see the module docstring.
        ``comparison`` is one just made at the operation's revision (the controller's)."""
        raise NotImplementedError
