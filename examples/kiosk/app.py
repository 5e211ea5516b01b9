"""A news kiosk for a shared screen: a local web app over one ``edgerec.Recommender``.

Visitors pick or create a profile (each has its own data key in the encrypted history),
read articles, see their top 10 recommendations with reasons, switch profile (the previous
reader's in-memory state is dropped) and erase their profile; or browse as a guest, whose
reads stay in memory and are gone when they leave (nothing is written to disk). A
background thread checks a TUF repository for a newer model and the page shows the
version ranking now.

    python examples/kiosk/app.py --home kiosk-home            # master key in the OS keystore
    python examples/kiosk/app.py --home kiosk-home --passphrase   # or asked for at start
    python examples/kiosk/app.py --home kiosk-home --key-file /media/key/kiosk.key

Serves 127.0.0.1 only; nothing is fetched from the network but model updates (when
``--update-url`` is given). Logs never name a profile or an article: requests are logged
by method and route, without bodies or query strings.

Web security (a page from any other origin, including another port of 127.0.0.1, must not
read or change anything): only ``Host: 127.0.0.1:PORT`` / ``localhost:PORT`` is served (DNS
rebinding); a request whose ``Origin`` is another origin, or whose ``Sec-Fetch-Site`` says
it came from another site or origin, is refused (403); a request that changes state must
be ``application/json`` (415 otherwise: a cross-site form can only send form encodings or
``text/plain``) and carry the per-process token the page received in its HTML (403
otherwise). Every malformed body is a 4xx, never a 500.
"""

from __future__ import annotations

import argparse
import getpass
import hmac
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import edgerec
from edgerec import read_jsonl
from edgerec.errors import EdgerecError, InvalidInputError, KeyUnavailableError, UpdateError

log = logging.getLogger("kiosk")

STATIC: Final = Path(__file__).resolve().parent / "static"
STATIC_FILES: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
# The profile the kiosk rests on between visitors: it never records a read, is never listed
# and cannot be picked (a visitor's name is refused if it equals it, case-insensitively).
LOBBY: Final = "kiosk.lobby"
GUEST: Final = "guest"  # shown for a guest session; no stored profile may take the name
MAX_BODY: Final = 16 * 1024
KEYRING_SERVICE: Final = "edgerec-kiosk"  # the OS keystore entry of the master key
TOKEN_HEADER: Final = "X-Kiosk-Token"
TOKEN_PLACEHOLDER: Final = b"{{KIOSK_TOKEN}}"  # in static/index.html
MAX_NAME_CHARS: Final = 64
TOP_K: Final = 10
SYNTHETIC_FEED_SIZE: Final = 60
SYNTHETIC_FEED: Final = Path(__file__).resolve().parents[1] / "data" / "synthetic_feed.jsonl"


class KioskError(Exception):
    """A request the kiosk refuses (HTTP 400); its message never holds reading data."""


# -- the feed -----------------------------------------------------------------------------


def synthetic_feed(
    n: int = SYNTHETIC_FEED_SIZE, *, now: float | None = None
) -> list[dict[str, Any]]:
    """SYNTHETIC articles (examples/data/), re-dated so the newest is an hour old (so "new"
    can show)."""
    articles = read_jsonl(SYNTHETIC_FEED)[:n]
    newest = max(int(a["published_at"]) for a in articles)
    shift = int(now if now is not None else time.time()) - 3600 - newest
    for a in articles:
        a["published_at"] = int(a["published_at"]) + shift
    articles.sort(key=lambda a: -int(a["published_at"]))
    return articles


def read_feed(path: Path) -> list[dict[str, Any]]:
    """Articles from a JSON-lines file (one article mapping per line, each with an id)."""
    try:
        rows = read_jsonl(path)  # the SDK's strict reader, as `edgerec recommend` uses
    except InvalidInputError as exc:
        raise SystemExit(str(exc)) from None
    articles: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, row in enumerate(rows, 1):
        if not isinstance(row.get("id"), str) or not row["id"]:
            raise SystemExit(f"{path}: article {n}: each article must have a string id")
        if row["id"] in seen:
            raise SystemExit(f"{path}: article {n}: duplicate id")
        seen.add(row["id"])
        articles.append(row)
    if not articles:
        raise SystemExit(f"{path}: no articles")
    return articles


def load_key(path: Path, home: Path) -> bytes:
    """The kiosk's 32-byte master key from a file outside the home; created (0600, never
    overwritten) if missing. A key file inside the home is refused: whoever copies the
    home folder would copy the key that decrypts it."""
    resolved, home_dir = path.resolve(), home.resolve()
    if resolved == home_dir or home_dir in resolved.parents:
        raise SystemExit(
            f"{path}: the key file is inside the home folder {home}; anyone who copies the "
            "folder could then read every profile. Keep the key elsewhere (a removable or "
            "TPM-backed volume), or leave out --key-file to use the OS keystore."
        )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != 32:
            raise SystemExit(f"{path}: a master key file holds exactly 32 bytes") from None
        return key
    except OSError as exc:
        raise SystemExit(f"{path}: cannot create the key file ({exc.strerror})") from None
    key = os.urandom(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    return key


def key_source(args: argparse.Namespace) -> dict[str, Any]:
    """Where the master key comes from: the OS keystore (default), a passphrase asked for
    at start (or ``EDGEREC_PASSPHRASE``), or ``--key-file`` outside the home."""
    legacy = args.home / "master.key"
    if legacy.exists():
        raise SystemExit(
            f"{legacy}: this home holds its own master key (an older kiosk wrote it there). "
            "Move it outside the home folder and pass --key-file with its new place."
        )
    if args.key_file is not None:
        return {"key": load_key(args.key_file, args.home)}
    if args.passphrase:
        passphrase = os.environ.get("EDGEREC_PASSPHRASE")
        if passphrase is None:
            passphrase = getpass.getpass("kiosk passphrase: ")
        if not passphrase:
            raise SystemExit("an empty passphrase protects nothing")
        return {"passphrase": passphrase}
    return {"keyring_service": KEYRING_SERVICE}


# -- the kiosk ----------------------------------------------------------------------------


@dataclass
class UpdateState:
    last_check: float | None = None
    last_error: str | None = None  # an error type name: never a message with paths or data
    checks: int = 0


@dataclass
class Kiosk:
    """The app's state: one Recommender, the feed and who is using the screen.

    ``_lock`` makes each visitor action atomic (erase = leave + erase); the Recommender has
    its own lock for its internals, which the update thread relies on.
    """

    rec: edgerec.Recommender
    feed: list[dict[str, Any]]
    synthetic: bool
    update_url: str | None = None
    trusted_root: Path | None = None
    visitor: str | None = None
    guest: edgerec.Recommender | None = None  # a guest session: history in memory only
    update: UpdateState = field(default_factory=UpdateState)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _update_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._by_id = {a["id"]: a for a in self.feed}

    # visitor actions

    def profiles(self) -> list[str]:
        with self._lock:
            return [p for p in self.rec.history.profiles() if p != LOBBY]

    def choose(self, name: object) -> None:
        """Pick or create a profile: the previous reader's state is dropped first."""
        checked = _check_name(name)
        with self._lock:
            self._end_guest()
            self.rec.switch_profile(checked)
            self.visitor = checked

    def start_guest(self) -> None:
        """A guest session: read and get recommendations with nothing written to disk; the
        history lives in memory and is gone when the guest leaves."""
        with self._lock:
            self._to_lobby()
            self.guest = edgerec.Recommender.open_guest(self.rec.home, bundle=self.rec.bundle)
            self.visitor = GUEST

    def leave(self) -> None:
        with self._lock:
            self._to_lobby()

    def _end_guest(self) -> None:
        if self.guest is not None:
            self.guest.close()  # the guest's reads and vectors leave memory
            self.guest = None

    def _to_lobby(self) -> None:
        self._end_guest()
        self.rec.switch_profile(LOBBY)
        self.visitor = None

    def _reader(self) -> edgerec.Recommender:
        return self.guest if self.guest is not None else self.rec

    def read(self, article_id: object) -> None:
        if not isinstance(article_id, str) or article_id not in self._by_id:
            raise KioskError("unknown article")
        with self._lock:
            if self.visitor is None:
                raise KioskError("pick a profile first")
            self._reader().record_read(self._by_id[article_id])

    def erase(self, name: object) -> bool:
        checked = _check_name(name)
        with self._lock:
            if self.visitor is not None and self.visitor == checked:
                self._to_lobby()  # the reader's vectors and read ids leave memory first
            return self.rec.history.erase_profile(checked)

    def recent(self) -> list[dict[str, Any]]:
        with self._lock:
            if self.visitor is None:
                return []
            events = self._reader().history.recent(20)
        return [{"id": e.article_id, "title": e.features.get("title", "")} for e in events]

    def recommendations(self) -> list[dict[str, Any]]:
        with self._lock:
            out = self._reader().recommend(self.feed, k=TOP_K, freshness_half_life_h=24.0)
        return [
            {
                "id": r.id,
                "rank": r.rank,
                "score": r.score,
                "reasons": list(r.reasons),
                "title": self._by_id[r.id].get("title", ""),
                "category": self._by_id[r.id].get("category", ""),
                "source": self._by_id[r.id].get("source", ""),
            }
            for r in out
        ]

    def articles(self) -> list[dict[str, Any]]:
        keys = ("id", "title", "category", "source", "published_at")
        return [{k: a.get(k) for k in keys} for a in self.feed]

    def state(self) -> dict[str, Any]:
        with self._lock:
            visitor = self.visitor
        return {
            "visitor": visitor,
            "guest": visitor == GUEST and self.guest is not None,
            "profiles": self.profiles(),
            "model_version": self.rec.model_version,
            "synthetic_feed": self.synthetic,
            "updates": {
                "enabled": self.update_url is not None,
                "last_check": self.update.last_check,
                "last_error": self.update.last_error,
                "checks": self.update.checks,
            },
        }

    # model updates

    def check_for_update(self) -> int | None:
        """One update check (serialised); the model version ranking afterwards."""
        if self.update_url is None:
            raise KioskError("no --update-url configured")
        with self._update_lock:
            try:
                result = self.rec.check_for_update(self.update_url, trusted_root=self.trusted_root)
            except UpdateError as exc:
                self.update.last_error = type(exc).__name__
                log.warning("update check failed: %s", type(exc).__name__)
            else:
                self.update.last_error = None
                if result is not None:
                    log.info("model %s active", result.version)
            finally:
                self.update.last_check = time.time()
                self.update.checks += 1
        return self.rec.model_version

    def update_loop(self, every_s: float, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.check_for_update()
            except Exception as exc:  # keep checking; the active model keeps serving
                self.update.last_error = type(exc).__name__
                log.error("update check failed: %s", type(exc).__name__)
            stop.wait(every_s)


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise KioskError("a profile name is text")
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise KioskError(f"a profile name has 1 to {MAX_NAME_CHARS} printable characters")
    if name.casefold() in {LOBBY.casefold(), GUEST.casefold()}:
        raise KioskError("that name is reserved")
    return name


# -- HTTP ---------------------------------------------------------------------------------


class Refused(Exception):
    """A request refused before it reaches the kiosk (its status and a short reason)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Handler(BaseHTTPRequestHandler):
    server: KioskServer
    server_version = "edgerec-kiosk"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Nothing from the client: no query string, body, or address."""

    def _log(self, status: int) -> None:
        route = self.path.split("?", 1)[0]
        if route not in STATIC_FILES and not route.startswith("/api/"):
            route = "(other)"
        log.info("%s %s %d", self.command, route, status)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'",
        )
        self.end_headers()
        self.wfile.write(body)
        self._log(status)

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8")

    # -- who may ask ------------------------------------------------------------------

    def _check_origin(self) -> None:
        """Our own origin only (see the module docstring); raises Refused otherwise."""
        own = self.server.origins
        host = (self.headers.get("Host") or "").strip().lower()
        if f"http://{host}" not in own:
            raise Refused(HTTPStatus.FORBIDDEN, "forbidden host")
        origin = self.headers.get("Origin")
        if origin is not None and origin.strip().lower() not in own:
            raise Refused(HTTPStatus.FORBIDDEN, "forbidden origin")
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site.strip().lower() not in {"same-origin", "none"}:
            raise Refused(HTTPStatus.FORBIDDEN, "cross-site request")

    def _check_state_change(self) -> None:
        """A request that changes state: JSON, with the page's token."""
        media = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the body must be application/json")
        token = self.headers.get(TOKEN_HEADER) or ""
        if not hmac.compare_digest(token.encode("utf-8", "replace"), self.server.token):
            raise Refused(HTTPStatus.FORBIDDEN, "missing or wrong kiosk token")

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise KioskError("a bad Content-Length") from None
        if length < 0:
            raise KioskError("a bad Content-Length")
        if length > MAX_BODY:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request too large")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deeply
            raise KioskError("the body is not JSON") from None
        if not isinstance(data, dict):
            raise KioskError("the body is a JSON object")
        return data

    # -- routes -----------------------------------------------------------------------

    def do_GET(self) -> None:
        kiosk = self.server.kiosk
        route = self.path.split("?", 1)[0]
        try:
            self._check_origin()
        except Refused as exc:
            self._json(exc.status, {"error": str(exc)})
            return
        if route in STATIC_FILES:
            name, ctype = STATIC_FILES[route]
            page = (STATIC / name).read_bytes().replace(TOKEN_PLACEHOLDER, self.server.token)
            self._send(HTTPStatus.OK, page, ctype)
            return
        handlers = {
            "/api/state": kiosk.state,
            "/api/articles": kiosk.articles,
            "/api/recommendations": kiosk.recommendations,
            "/api/recent": kiosk.recent,
        }
        if route not in handlers:
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        self._answer(handlers[route])

    def do_POST(self) -> None:
        kiosk = self.server.kiosk
        route = self.path.split("?", 1)[0]

        def act() -> Any:
            self._check_origin()
            self._check_state_change()
            body = self._body()
            if route == "/api/profile":
                kiosk.choose(body.get("name"))
            elif route == "/api/guest":
                kiosk.start_guest()
            elif route == "/api/leave":
                kiosk.leave()
            elif route == "/api/read":
                kiosk.read(body.get("id"))
            elif route == "/api/erase":
                return {"erased": kiosk.erase(body.get("name")), **kiosk.state()}
            elif route == "/api/check-update":
                kiosk.check_for_update()
            else:
                raise LookupError
            return kiosk.state()

        self._answer(act)

    def _method_not_allowed(self) -> None:
        self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method not allowed"})

    do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def _answer(self, fn: Any) -> None:
        try:
            payload = fn()
        except Refused as exc:
            self._json(exc.status, {"error": str(exc)})
        except LookupError:
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        except KioskError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except EdgerecError as exc:
            # SDK errors name fields and indexes, never values; only the type is logged.
            log.warning("%s %s: %s", self.command, self.path.split("?", 1)[0], type(exc).__name__)
            self._json(HTTPStatus.BAD_REQUEST, {"error": type(exc).__name__})
        except Exception as exc:
            log.error("%s failed: %s", self.command, type(exc).__name__)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})
        else:
            self._json(HTTPStatus.OK, payload)


class KioskServer(ThreadingHTTPServer):
    """The kiosk's loopback server: its own origins and the token its page carries."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], kiosk: Kiosk) -> None:
        super().__init__(address, Handler)
        self.kiosk = kiosk
        port = self.server_address[1]
        self.origins = frozenset({f"http://127.0.0.1:{port}", f"http://localhost:{port}"})
        self.token = secrets.token_urlsafe(32).encode("ascii")  # a new one every start


# -- command line -------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--home", type=Path, default=Path("kiosk-home"), help="device home folder")
    keys = p.add_mutually_exclusive_group()
    keys.add_argument(
        "--key-file",
        type=Path,
        default=None,
        help="a 32-byte master key file outside the home (created 0600 if missing); "
        "default: the OS keystore",
    )
    keys.add_argument(
        "--passphrase",
        action="store_true",
        help="ask for a passphrase at start (or read EDGEREC_PASSPHRASE) instead",
    )
    p.add_argument(
        "--feed", type=Path, default=None, help="articles, JSON lines (default: synthetic)"
    )
    p.add_argument("--bundle", type=Path, default=None, help="model bundle (default: installed)")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free one)")
    p.add_argument("--update-url", default=None, help="TUF repository of model updates")
    p.add_argument("--root", type=Path, default=None, help="the pinned root.json for updates")
    p.add_argument("--update-every", type=float, default=3600.0, help="seconds between checks")
    args = p.parse_args(argv)
    if args.update_every <= 0:
        p.error("--update-every must be > 0")
    return args


def build(args: argparse.Namespace) -> Kiosk:
    args.home.mkdir(parents=True, exist_ok=True)
    source = key_source(args)
    feed = read_feed(args.feed) if args.feed is not None else synthetic_feed()
    try:
        rec = edgerec.Recommender.open(args.home, profile=LOBBY, bundle=args.bundle, **source)
    except KeyUnavailableError as exc:
        raise SystemExit(
            f"the OS keystore cannot hold the kiosk's key ({exc}); "
            "use --passphrase, or --key-file with a file outside the home"
        ) from None
    except EdgerecError as exc:
        raise SystemExit(f"cannot open {args.home}: {type(exc).__name__}: {exc}") from None
    return Kiosk(
        rec,
        feed,
        synthetic=args.feed is None,
        update_url=args.update_url,
        trusted_root=args.root,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    kiosk = build(args)
    server = KioskServer(("127.0.0.1", args.port), kiosk)
    stop = threading.Event()
    if kiosk.update_url is not None:
        threading.Thread(
            target=kiosk.update_loop, args=(args.update_every, stop), daemon=True
        ).start()
    port = server.server_address[1]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # close the store on terminate
    print(f"kiosk: serving http://127.0.0.1:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        kiosk.leave()  # a guest session ends with the app
        kiosk.rec.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
