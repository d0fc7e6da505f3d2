"""UI tests: Debian's chromium, driven by Playwright, against a Closeloop served on a free port
with its own database (the demo organization, seeded once per run) and its own worker queue.

Screenshots go to ``artifacts/screenshots/`` (not committed). Without chromium the tests skip,
unless ``CLOSELOOP_REQUIRE_BROWSER`` is set (CI sets it), where a missing browser fails them.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "closeloop-demo"
CLOSELOOP = str(Path(sys.executable).with_name("closeloop"))

pytestmark = pytest.mark.ui


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        message = "Debian's chromium is not installed (make browser installs it)"
        if os.environ.get("CLOSELOOP_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    """A running Closeloop: its address, its environment (database, queue) and its process."""

    base_url: str
    environment: dict[str, str]
    process: subprocess.Popen[bytes]

    def cli(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Run ``closeloop …`` against the served database (e.g. the worker's jobs)."""
        return subprocess.run(
            [CLOSELOOP, *arguments], env=self.environment, capture_output=True, text=True, check=True, timeout=300
        )


def _seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database holding the demo organization, built once per run and shared by the
    xdist workers (the first to need it builds it under a lock; the others wait and copy it)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    directory = shared / "ui-demo-template"
    directory.mkdir(exist_ok=True)
    template = directory / "demo-template.db"
    with (directory / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "ready").exists():
            environment = {
                **os.environ,
                "CLOSELOOP_DATABASE_URL": f"sqlite:///{template}",
                "CLOSELOOP_VAR_DIR": str(directory),
            }
            environment.pop("CLOSELOOP_REDIS_URL", None)
            for command in (["migrate"], ["demo"]):
                subprocess.run([CLOSELOOP, *command], env=environment, capture_output=True, check=True, timeout=900)
            (directory / "ready").touch()
    return template


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    _chromium()
    directory = tmp_path_factory.mktemp("ui-server")
    database = directory / "closeloop.db"
    shutil.copy(_seeded_template(tmp_path_factory), database)
    port = _free_port()
    environment = {
        **os.environ,
        "CLOSELOOP_DATABASE_URL": f"sqlite:///{database}",
        "CLOSELOOP_VAR_DIR": str(directory / "var"),
        "CLOSELOOP_SECRET_KEY": "ui-tests-secret-key",
    }
    environment.pop("CLOSELOOP_REDIS_URL", None)
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(
        [CLOSELOOP, "serve", "--port", str(port), "--no-worker"], env=environment, stdout=log, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # a loaded 2-core machine starts slowly
    while True:
        try:
            if httpx.get(f"{base_url}/login", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the server did not start: {(directory / 'server.log').read_text(errors='replace')[-2000:]}")
        time.sleep(0.3)
    try:
        yield Served(base_url, environment, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def browser(served: Served) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=_chromium(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        try:
            yield launched
        finally:
            launched.close()


SignIn = Callable[..., object]


@pytest.fixture
def sign_in(served: Served, browser: object) -> Iterator[SignIn]:
    """``sign_in("demo.rep", locale="en")`` → a Playwright page signed in as that demo user, in
    that language, at a tablet-or-wider viewport (``width=``)."""
    from playwright.sync_api import Browser, Page, expect

    assert isinstance(browser, Browser)
    # the assertions wait as long as the actions: on two loaded cores a form post and its redirect
    # took over expect's default 5 s once in CI
    expect.set_options(timeout=15_000)
    contexts = []

    def open_page(username: str, *, locale: str = "zh_CN", width: int = 1440, height: int = 900) -> Page:
        context = browser.new_context(
            base_url=served.base_url,
            locale="zh-CN" if locale == "zh_CN" else "en-US",
            viewport={"width": width, "height": height},
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/login")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("form.stacked button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto(f"/language/{locale}")  # also the user's setting from now on
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot under ``artifacts/screenshots/<name>.png``."""
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
