"""examples/kiosk end to end: the app started as a user would (a subprocess on 127.0.0.1,
port 0), driven through its JSON API (runs everywhere) and through its page in headless
Chromium (Debian's ``chromium`` + ``chromium-driver`` through selenium; skipped, saying
why, when they are missing). Model updates come from a loopback TUF repository. The feed
is SYNTHETIC and the model the committed fixture: no TensorFlow, no network.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgerec.trainer import publish
from tests.support.updates import FIXTURE, Server, make_bundle

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "kiosk" / "app.py"
ARTIFACTS = ROOT / "test-artifacts"  # git-ignored
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
START_TIMEOUT_S = 60.0


@dataclass
class Repo:
    """A TUF repository with model 1 published, served over loopback."""

    tmp: Path
    keys: Path
    folder: Path
    server: Server

    @property
    def root(self) -> Path:
        return self.folder / "metadata" / "1.root.json"

    def publish(self, version: int) -> None:
        publish.publish(self.folder, make_bundle(self.tmp, version), self.keys)


@pytest.fixture()
def repo(tmp_path: Path) -> Iterator[Repo]:
    keys = tmp_path / "keys"
    publish.keygen(keys)
    folder = tmp_path / "repo"
    publish.publish(folder, FIXTURE, keys)
    server = Server(folder)
    yield Repo(tmp_path, keys, folder, server)
    server.close()


class App:
    """The kiosk in a subprocess; its log (stderr) kept in a file to check for leaks."""

    def __init__(self, tmp: Path, repo: Repo, *, update_every: float) -> None:
        self.home = tmp / "home"
        self.key_file = tmp / "kiosk.key"
        self.log = tmp / "kiosk.log"
        args = [sys.executable, str(APP), "--home", str(self.home), "--key-file"]
        args += [str(self.key_file), "--port", "0", "--bundle", str(FIXTURE)]
        args += ["--update-url", repo.server.url, "--root", str(repo.root)]
        args += ["--update-every", str(update_every)]
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self._log_file, text=True, cwd=tmp
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout

        def pump() -> None:  # readline with a deadline: a thread and a queue
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        try:
            first = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            self.stop()
            pytest.fail(f"the kiosk printed no URL in {START_TIMEOUT_S} s: {self.log_text()}")
        assert first.startswith("kiosk: serving http://127.0.0.1:"), first
        self.url = first.split()[-1].rstrip("/")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def refused(self, method: str, path: str, body: dict[str, Any]) -> str:
        with pytest.raises(urllib.error.HTTPError) as info:
            self.call(method, path, body)
        assert info.value.code == 400
        error: str = json.loads(info.value.read())["error"]
        return error

    def wait_state(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30) -> Any:
        """Poll /api/state until ``predicate`` holds (an explicit wait with a deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.call("GET", "/api/state")
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                pytest.fail(f"state never matched: {state}")
            time.sleep(0.05)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


@pytest.fixture()
def make_app(tmp_path: Path, repo: Repo) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def start(**kw: Any) -> App:
        app = App(tmp_path, repo, **kw)
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.stop()


def _contents(home: Path) -> dict[str, str]:
    """Every file's bytes (as a digest), but SQLite's -shm: readers mark it, it holds no data."""
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.endswith("-shm")
    }


def assert_private_log(app: App, secrets: list[str]) -> None:
    """The log names no profile and no article (nor its id)."""
    app.stop()
    text = app.log_text()
    assert "GET /api/state 200" in text  # the log is there, only without reading data
    for secret in secrets:
        assert secret not in text, "the kiosk log holds reading data"


def test_api_profiles_reads_erase_and_update(make_app: Callable[..., App], repo: Repo) -> None:
    app = make_app(update_every=3600)  # one check at start; later ones through the API
    assert app.key_file.stat().st_mode & 0o777 == 0o600
    assert len(app.key_file.read_bytes()) == 32

    state = app.wait_state(lambda s: s["updates"]["checks"] >= 1)
    assert state["visitor"] is None and state["profiles"] == []
    assert state["synthetic_feed"] is True
    assert state["model_version"] == 1 and state["updates"]["last_error"] is None

    articles = app.call("GET", "/api/articles")
    assert len(articles) >= 20 and all(a["id"].startswith("SYN-") for a in articles)
    cold = app.call("GET", "/api/recommendations")
    assert len(cold) == 10 and not any("because you read" in " ".join(r["reasons"]) for r in cold)
    assert app.refused("POST", "/api/read", {"id": articles[0]["id"]}) == "pick a profile first"

    ada, bo = "Ada Reader", "Bo"
    assert app.call("POST", "/api/profile", {"name": ada})["visitor"] == ada
    read = articles[:2]
    for article in read:
        app.call("POST", "/api/read", {"id": article["id"]})
    recent = app.call("GET", "/api/recent")
    assert [e["id"] for e in recent] == [read[1]["id"], read[0]["id"]]  # newest first
    recs = app.call("GET", "/api/recommendations")
    assert len(recs) == 10 and [r["rank"] for r in recs] == list(range(1, 11))
    assert not {r["id"] for r in recs} & {a["id"] for a in read}
    reasons = [x for r in recs for x in r["reasons"]]
    assert any(x in {f"because you read {a['title']}" for a in read} for x in reasons)

    # Switching profile: the next reader sees none of the previous one's reads.
    state = app.call("POST", "/api/profile", {"name": bo})
    assert state["visitor"] == bo and state["profiles"] == sorted([ada, bo])
    assert app.call("GET", "/api/recent") == []
    recs = app.call("GET", "/api/recommendations")
    assert not any(x.startswith("because you read") for r in recs for x in r["reasons"])
    app.call("POST", "/api/profile", {"name": ada})  # back: the reads were kept, encrypted
    assert [e["id"] for e in app.call("GET", "/api/recent")] == [read[1]["id"], read[0]["id"]]

    # A guest: reads held in memory only; not a byte of the kiosk's files changes.
    app.call("POST", "/api/leave")
    before = _contents(app.home)
    state = app.call("POST", "/api/guest")
    assert state["visitor"] == "guest" and state["guest"] is True
    app.call("POST", "/api/read", {"id": articles[5]["id"]})
    assert [e["id"] for e in app.call("GET", "/api/recent")] == [articles[5]["id"]]
    guest_reasons = [x for r in app.call("GET", "/api/recommendations") for x in r["reasons"]]
    assert f"because you read {articles[5]['title']}" in guest_reasons
    assert app.refused("POST", "/api/profile", {"name": "Guest"}) == "that name is reserved"
    state = app.call("POST", "/api/leave")
    assert state["guest"] is False and state["visitor"] is None
    assert _contents(app.home) == before
    app.call("POST", "/api/guest")  # the next guest starts with nothing
    assert app.call("GET", "/api/recent") == []
    app.call("POST", "/api/profile", {"name": ada})  # a profile ends the guest session
    assert app.call("GET", "/api/state")["guest"] is False

    assert app.refused("POST", "/api/read", {"id": "no-such-article"}) == "unknown article"
    assert app.refused("POST", "/api/profile", {"name": "KIOSK.lobby"}) == "that name is reserved"
    assert "printable" in app.refused("POST", "/api/profile", {"name": " "})
    assert "printable" in app.refused("POST", "/api/profile", {"name": "x" * 65})

    state = app.call("POST", "/api/erase", {"name": ada})
    assert state["erased"] is True and state["visitor"] is None and state["profiles"] == [bo]
    assert app.call("GET", "/api/recent") == []
    assert app.call("POST", "/api/erase", {"name": ada})["erased"] is False

    # A newer model in the repository: ranked with after one check, without a restart.
    repo.publish(2)
    assert app.call("POST", "/api/check-update")["model_version"] == 2
    assert len(app.call("GET", "/api/recommendations")) == 10

    assert_private_log(app, [ada, bo] + [a["title"] for a in read] + [a["id"] for a in read])


# --- the page in headless Chromium ------------------------------------------------------


def _driver() -> Any:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(
            f"no headless browser: {', '.join(missing)} missing "
            "(apt-get install chromium chromium-driver; .ci/run does it when apt-get works)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1500",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ):
        options.add_argument(arg)
    # An explicit chromedriver: selenium-manager never downloads a browser or a driver.
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def test_page_in_headless_chromium(make_app: Callable[..., App], repo: Repo) -> None:
    driver = _driver()
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(condition: Callable[[Any], Any], timeout: float = 20) -> Any:
        # The page re-renders its lists (a poll, a model swap): an element found may be
        # replaced before it is read, so a stale one means "look again".
        return WebDriverWait(
            driver, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
        ).until(condition)

    def texts(selector: str) -> list[str]:
        """The text of every match, read in one step inside the page (never stale)."""
        script = "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)"
        return list(driver.execute_script(script, selector))

    def count_is(selector: str, count: int) -> Callable[[Any], bool]:
        return lambda d: len(d.find_elements(By.CSS_SELECTOR, selector)) == count

    def text(element_id: str) -> str:
        return str(driver.find_element(By.ID, element_id).text)

    try:
        app = make_app(update_every=1)
        driver.get(app.url + "/")
        wait(lambda d: text("model-version") == "v1")
        assert "SYNTHETIC" in text("synthetic")
        wait(count_is("#recommendations li", 10))

        name = "Ada Reader"
        driver.find_element(By.ID, "profile-name").send_keys(name)
        driver.find_element(By.ID, "create-profile").click()
        wait(lambda d: text("visitor") == name)

        titles: list[str] = []
        for n in range(2):
            card = driver.find_elements(By.CSS_SELECTOR, "#articles li")[n]
            titles.append(card.find_element(By.CSS_SELECTOR, ".title").text)
            wait(ec.element_to_be_clickable(card.find_element(By.CSS_SELECTOR, "button.read")))
            card.find_element(By.CSS_SELECTOR, "button.read").click()
            wait(count_is("#recent li", n + 1))
        because = {f"because you read {t}" for t in titles}

        wait(lambda d: because & set(texts("#recommendations .reason")))
        recs = texts("#recommendations li .title")
        assert len(recs) == 10 and not set(titles) & set(recs)

        # A new model published: the page shows it without a restart (checked every 1 s).
        repo.publish(2)
        wait(lambda d: text("model-version") == "v2", timeout=30)
        wait(lambda d: because & set(texts("#recommendations .reason")))
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "kiosk.png"
        driver.save_screenshot(str(shot))
        print(f"kiosk screenshot: {shot}")

        driver.find_element(By.ID, "erase-profile").click()
        wait(ec.alert_is_present()).accept()

        def erased(d: Any) -> bool:  # the page re-renders state first, then the lists
            reasons = texts("#recommendations .reason")
            return bool(
                d.find_element(By.ID, "lobby").is_displayed()
                and texts("#recent li") == []
                and len(texts("#recommendations li")) == 10
                and not any(r.startswith("because you read") for r in reasons)
            )

        wait(erased)
        assert name not in texts("#profiles button")
        assert name not in app.call("GET", "/api/state")["profiles"]
        driver.save_screenshot(str(ARTIFACTS / "kiosk-erased.png"))

        # A guest: reads in memory only, nothing to erase, gone on leaving.
        driver.find_element(By.ID, "guest").click()
        wait(lambda d: text("visitor") == "guest")
        assert driver.find_element(By.ID, "guest-note").is_displayed()
        assert not driver.find_element(By.ID, "erase-profile").is_displayed()
        card = driver.find_elements(By.CSS_SELECTOR, "#articles li")[3]
        guest_title = card.find_element(By.CSS_SELECTOR, ".title").text
        wait(ec.element_to_be_clickable(card.find_element(By.CSS_SELECTOR, "button.read")))
        card.find_element(By.CSS_SELECTOR, "button.read").click()
        wait(lambda d: texts("#recent li") == [guest_title])
        driver.find_element(By.ID, "switch-profile").click()
        wait(lambda d: d.find_element(By.ID, "lobby").is_displayed() and texts("#recent li") == [])
        assert "guest" not in texts("#profiles button")
    finally:
        driver.quit()
    assert_private_log(app, [name, *titles, guest_title])
