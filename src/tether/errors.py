"""The error hierarchy: every error names what failed, where, and what to do."""

from __future__ import annotations


class TetherError(Exception):
    """Base class. ``reason`` is a CamelCase word suitable for a status condition."""

    reason = "Error"

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    @property
    def condition_type(self) -> str:
        """The status condition type: the error's family (SourceError, RenderError, ...)."""
        for cls in type(self).__mro__:
            if TetherError in cls.__bases__:
                return cls.__name__
        return "Error"


class SourceError(TetherError):
    """Git could not give us the tree: unreachable repo, bad credentials, unknown revision."""

    reason = "SourceError"


class RenderError(TetherError):
    """The tree at a commit could not be turned into manifests."""

    reason = "RenderError"

    def __init__(self, message: str, *, file: str = "", line: int = 0, hint: str = "") -> None:
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(where + message, hint=hint)
        self.file = file
        self.line = line


class KubeError(TetherError):
    """The Kubernetes API refused or failed a request."""

    reason = "KubeError"

    def __init__(self, message: str, *, status: int = 0, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.status = status


class SyncError(TetherError):
    reason = "SyncFailed"


class PruneBlocked(TetherError):
    reason = "PruneBlocked"


class InvalidSpec(TetherError):
    reason = "InvalidSpec"


class SignatureError(TetherError):
    """The commit to deploy is unsigned, or signed by a key that is unknown or revoked."""

    reason = "SignatureError"
