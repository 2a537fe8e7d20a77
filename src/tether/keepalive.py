"""One kept-alive ``http.client`` connection: opened on first use, sent on again, opened anew
when the server had closed it unread, and closed so that a request waiting on it in another
thread fails at once. The one-shot Kubernetes client (``tether.kube.oneshot.Link``) and the
client of tether's API (``tether.client.http``) each say how to open theirs and what a
failure means."""

from __future__ import annotations

import contextlib
import http.client
import socket

RESENDABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
"""A kept-alive connection the server closed meanwhile: the request was not read; one more
try on a new connection."""


class KeptAlive:
    """A connection made by ``_open``; ``exchange`` sends one request on it."""

    def __init__(self) -> None:
        self._conn: http.client.HTTPConnection | None = None

    def _open(self, timeout: float) -> http.client.HTTPConnection:
        raise NotImplementedError

    def close(self) -> None:
        """Closes the connection; a read blocked on it in another thread fails at once
        (closing a socket does not wake it, shutting it down does)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()

    def exchange(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> tuple[int, bytes, str | None]:
        """(status, body, its Retry-After header) of ``method url``, each read of the socket
        waiting at most ``timeout`` seconds. Raises what ``http.client`` raises (the
        connection closed first) when no answer came."""
        for fresh in (self._conn is None, True):
            if self._conn is None:
                self._conn = self._open(timeout)
            conn = self._conn
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                conn.request(method, url, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except RESENDABLE:
                self.close()
                if fresh:
                    raise
                continue
            except BaseException:
                self.close()
                raise
            if resp.will_close:
                self.close()
            asked = resp.getheader("Retry-After") if resp.status >= 400 else None
            return resp.status, raw, asked
        raise AssertionError("unreachable")  # the loop returns or raises
