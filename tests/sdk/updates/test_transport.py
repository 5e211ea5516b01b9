"""edgerec.updates.transport: downloads capped by the signed length and the SDK cap, one
overall deadline, a server that is down (C8, C9), against a hostile loopback server."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from edgerec.errors import (
    DownloadTooLargeError,
    UpdateError,
    UpdateRejectedError,
    UpdateTimeoutError,
)
from edgerec.model import MODEL_FILE
from edgerec.updates import client
from tests.support.updates import (
    MODEL,
    Env,
    Handler,
    state,
)


def _serve_model(mode: str) -> Callable[[Handler], bool]:
    def hostile(h: Handler) -> bool:
        if not h.path.endswith(MODEL_FILE):
            return False
        h.send_response(200)
        h.end_headers()
        try:
            if mode == "oversized":
                h.wfile.write(MODEL + b"x" * 1000)
            elif mode == "endless":
                for _ in range(10_000):
                    h.wfile.write(b"x" * 65536)
            elif mode == "slow":
                for byte in MODEL[:100]:
                    h.wfile.write(bytes([byte]))
                    h.wfile.flush()
                    time.sleep(0.2)
            elif mode == "stall":
                h.wfile.write(MODEL[:10])
                h.wfile.flush()
                time.sleep(5)
        except OSError:
            pass  # the client hung up: what it should do
        return True

    return hostile


@pytest.mark.parametrize("mode", ["oversized", "endless"])
def test_c8_download_over_the_signed_length(v1: Env, mode: str) -> None:
    """C8: aborted at length + 1 bytes."""
    v1.publish(2)
    v1.server.hostile(_serve_model(mode))
    v1.rejected(DownloadTooLargeError)


def test_c8_signed_length_over_the_sdk_cap(v1: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """C8: a model or a manifest whose signed length is over the SDK's cap: refused before
    downloading."""
    v1.publish(2)
    requested: list[str] = []
    v1.server.hostile(lambda h: requested.append(h.path) or False)
    v1.rejected(DownloadTooLargeError, max_bytes=len(MODEL) - 1)
    monkeypatch.setattr(client, "MAX_MANIFEST_BYTES", 1000)
    v1.rejected(DownloadTooLargeError)
    assert requested and not [path for path in requested if "/bundles/2/" in path]


def test_server_down_or_missing_files(v1: Env) -> None:
    """Transport failures are UpdateError (retry later), never a raw exception."""
    v1.server.hostile(lambda h: h.send_error(404) is None)
    with pytest.raises(UpdateError) as info:
        v1.install()
    assert not isinstance(info.value, UpdateRejectedError)
    v1.server.close()
    with pytest.raises(UpdateError):
        v1.install()
    assert state(v1.home) == v1.before


@pytest.mark.parametrize("mode", ["slow", "stall"])
def test_c9_slow_retrieval_hits_the_deadline(v1: Env, mode: str) -> None:
    """C9: one byte every 0.2 s, or a stalled connection; typed error within the deadline."""
    v1.publish(2)
    v1.server.hostile(_serve_model(mode))
    start = time.monotonic()
    v1.rejected(UpdateTimeoutError, deadline_s=1.5)
    assert time.monotonic() - start < 4.0


def _trickle_headers(h: Handler) -> bool:
    """A server that sends its status line and headers one byte every 0.5 s (the audit's
    slow-loris, faster), for every file it is asked for."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Pad: " + b"p" * 200
    try:
        for byte in head:
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
            time.sleep(0.5)
    except OSError:
        pass  # the client hung up: what it should do
    h.close_connection = True
    return True


def test_c9_header_slow_loris_ends_within_the_deadline(v1: Env) -> None:
    """Issue 17, item 11: the deadline also covers the status line and the headers; the
    whole check ends within the deadline plus a second, as a typed UpdateTimeoutError."""
    v1.publish(2)
    v1.server.hostile(_trickle_headers)
    start = time.monotonic()
    v1.rejected(UpdateTimeoutError, deadline_s=3.0)
    assert time.monotonic() - start < 3.0 + 1.0
