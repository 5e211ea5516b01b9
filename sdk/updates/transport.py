"""The update client's transport: HTTP(S) GETs under one overall deadline, and the one
place where python-tuf's and the OS's exceptions become the SDK's typed errors.

The deadline covers the whole check, connection and headers included: a watchdog shuts
the socket down when it passes, so a server that trickles its status line one byte at a
time cannot hold the device past it (a socket timeout alone bounds one recv(), not the
many that read the headers). Every download is capped at the SDK-wide maximum on top of
TUF's signed lengths. Not bounded by the deadline: the name lookup (``getaddrinfo`` cannot
be interrupted); point the client at a host the device resolves quickly, or an address.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import Metadata, Root
from tuf.api.serialization import DeserializationError
from tuf.ngclient.fetcher import FetcherInterface

from ..errors import (
    DownloadTooLargeError,
    ExpiredMetadataError,
    ManifestMismatchError,
    SignatureError,
    UntrustedKeyError,
    UpdateError,
    UpdateRejectedError,
    UpdateStorageError,
    UpdateTimeoutError,
    VersionRollbackError,
)

__all__ = ["MAX_DOWNLOAD_BYTES", "DeadlineFetcher", "storage_error", "translated"]

MAX_DOWNLOAD_BYTES: Final = 50 << 20  # SDK-wide cap on any one download


class DeadlineFetcher(FetcherInterface):
    """HTTP(S) GETs with a per-read socket timeout and one overall monotonic deadline.

    ``last_body`` keeps the last small (metadata-sized) download, to tell an untrusted key
    from a missing signature when TUF rejects it.
    """

    def __init__(
        self,
        deadline: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        socket_timeout: float = 10.0,
        chunk_size: int = 1 << 16,
        max_bytes: int = MAX_DOWNLOAD_BYTES,
    ) -> None:
        self.deadline = deadline
        self.clock = clock
        self.socket_timeout = socket_timeout
        self.chunk_size = chunk_size
        self.max_bytes = max_bytes
        self.last_body = b""

    def _remaining(self) -> float:
        left = self.deadline - self.clock()
        if left <= 0:
            raise tuf_exc.SlowRetrievalError("update deadline passed")
        return min(left, self.socket_timeout)

    def _watchdog(self, conn: http.client.HTTPConnection) -> threading.Timer:
        """Shut the connection's socket down when the deadline passes, whatever the
        connection is doing. A socket timeout bounds one recv() only: a server trickling
        its status line and headers one byte a second never trips it, and http.client reads
        them in many recv() calls without returning to us in between."""

        def fire() -> None:
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # unblocks a recv() in another thread

        timer = threading.Timer(max(0.0, self.deadline - self.clock()), fire)
        timer.daemon = True
        timer.start()
        return timer

    def _fetch(self, url: str) -> Iterator[bytes]:
        parts = urlsplit(url)
        conn_cls: type[http.client.HTTPConnection]
        if parts.scheme == "http":
            conn_cls = http.client.HTTPConnection
        elif parts.scheme == "https":
            conn_cls = http.client.HTTPSConnection
        else:
            raise tuf_exc.DownloadError("only http and https URLs are supported")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn = conn_cls(parts.hostname or "", parts.port, timeout=self._remaining())
        watchdog = self._watchdog(conn)
        try:
            conn.request("GET", path or "/", headers={"User-Agent": "edgerec-updates"})
            # Kept: getresponse() drops conn.sock when the server closes after the body
            # (HTTP/1.0), but the response still reads from this socket.
            sock = conn.sock
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            watchdog.cancel()
            conn.close()
            if isinstance(exc, TimeoutError) or self.clock() >= self.deadline:
                raise tuf_exc.SlowRetrievalError("the server did not answer in time") from None
            raise tuf_exc.DownloadError(f"connection failed: {exc}") from None
        except BaseException:
            watchdog.cancel()
            conn.close()
            raise
        if response.status >= 400:
            watchdog.cancel()
            conn.close()
            raise tuf_exc.DownloadHTTPError(f"HTTP {response.status}", response.status)
        return self._chunks(conn, sock, response, watchdog)

    def _chunks(
        self,
        conn: http.client.HTTPConnection,
        sock: socket.socket | None,
        response: http.client.HTTPResponse,
        watchdog: threading.Timer,
    ) -> Iterator[bytes]:
        received = 0
        keep = bytearray()
        try:
            while True:
                timeout = self._remaining()
                if sock is not None:
                    sock.settimeout(timeout)
                try:
                    chunk = response.read1(self.chunk_size)
                except (OSError, http.client.HTTPException) as exc:
                    if isinstance(exc, TimeoutError) or self.clock() >= self.deadline:
                        raise tuf_exc.SlowRetrievalError("the server stalled") from None
                    raise tuf_exc.DownloadError(f"connection failed: {exc}") from None
                if not chunk:
                    break
                received += len(chunk)
                if received > self.max_bytes:
                    raise tuf_exc.DownloadLengthMismatchError(
                        f"more than the SDK cap of {self.max_bytes} bytes"
                    )
                if received <= 1 << 20:
                    keep += chunk
                yield chunk
            self._remaining()  # a download that ends after the deadline still fails
            self.last_body = bytes(keep) if received <= 1 << 20 else b""
        finally:
            watchdog.cancel()
            response.close()
            conn.close()


def _signature_error(fetcher: FetcherInterface, tuf_dir: Path, exc: Exception) -> SignatureError:
    """UntrustedKeyError when the rejected metadata carries signatures, none of them by a
    key of the trusted root; SignatureError otherwise (no signature, threshold not met)."""
    body = getattr(fetcher, "last_body", b"")
    try:
        keyids = {s["keyid"] for s in json.loads(body)["signatures"]}
        trusted = Metadata[Root].from_file(str(tuf_dir / "root.json")).signed.keys
    except Exception:
        keyids, trusted = set(), {}
    if keyids and not keyids & set(trusted):
        return UntrustedKeyError("update metadata is signed only by untrusted keys")
    return SignatureError(f"update metadata lacks a threshold of valid signatures ({exc})")


@contextlib.contextmanager
def translated(fetcher: FetcherInterface, tuf_dir: Path) -> Iterator[None]:
    """python-tuf and OS exceptions -> the SDK's typed errors (nothing raw crosses)."""
    try:
        yield
    except tuf_exc.UnsignedMetadataError as exc:
        raise _signature_error(fetcher, tuf_dir, exc) from None
    except tuf_exc.BadVersionNumberError as exc:
        raise VersionRollbackError(f"update metadata rolled back: {exc}") from None
    except tuf_exc.ExpiredMetadataError as exc:
        raise ExpiredMetadataError(f"update metadata expired: {exc}") from None
    except tuf_exc.LengthOrHashMismatchError as exc:
        raise ManifestMismatchError(f"a download does not match its signed hash: {exc}") from None
    except DeserializationError as exc:
        if "Multiple signatures" in str(exc.__cause__):  # one key listed twice: counts once
            raise SignatureError("update metadata lists one key's signature twice") from None
        raise UpdateRejectedError(f"update metadata is malformed: {exc}") from None
    except tuf_exc.RepositoryError as exc:
        raise UpdateRejectedError(f"update metadata rejected: {exc}") from None
    except tuf_exc.DownloadLengthMismatchError as exc:
        raise DownloadTooLargeError(f"download aborted: {exc}") from None
    except tuf_exc.SlowRetrievalError as exc:
        raise UpdateTimeoutError(f"update timed out: {exc}") from None
    except tuf_exc.DownloadError as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise UpdateError(f"update server unavailable: {exc}{cause}") from None
    except OSError as exc:
        raise storage_error(exc) from None


def storage_error(exc: OSError) -> UpdateStorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UpdateStorageError("no space left for the update; partial files removed")
    return UpdateStorageError(f"the update could not be stored ({exc.strerror or exc})")
