"""The console in a real browser: Debian's Chromium driven by Playwright against a real
`ddi-lite serve`, while a device (plain DDI calls over HTTP) installs what the operator
assigned in the browser. Only a browser runs the console's script, applies its Content
Security Policy and sends its cookies as a browser does; no hand-written client would.

The browser must not ask any host but the server: every request is routed through a check
that refuses and records any other. Screenshots of each page go to a temporary folder, and
also to DDI_LITE_CONSOLE_SCREENSHOTS when it names a folder (how README's were taken).

A missing Playwright or Chromium skips the tier, naming what to install; under CI=true it
fails it, as tests/clients does for a missing device client. Bounded: about 25 s.
"""

import base64
import json
import os
import shutil
import urllib.request

import pytest

from live import DdiLite, wait_until

CHROMIUM = "/usr/bin/chromium"
# Chromium refuses to run as root without --no-sandbox; background networking would make
# it call Google's servers (component updates, safe browsing) on its own.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking"]
SCREENSHOTS_VARIABLE = "DDI_LITE_CONSOLE_SCREENSHOTS"
# The names of the page's form fields (and buttons) that have neither a label nor an
# aria-label.
UNLABELLED_FIELDS = """Array.from(document.querySelectorAll(
    "input:not([type=hidden]), select, textarea, button"))
  .filter(field => !(field.labels && field.labels.length) && !field.getAttribute("aria-label")
                   && !(field.tagName === "BUTTON" && field.textContent.trim()))
  .map(field => field.name || field.id || field.outerHTML)"""
TIMEOUT_MS = 10000


def in_ci():
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(message):
    if in_ci():
        pytest.fail("CI=true: " + message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed: pip install -e '.[test]'")
    if not os.path.exists(CHROMIUM):
        missing("Chromium is not installed: needs the Debian package 'chromium' "
                "(apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             timeout=30000)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def server(tmp_path):
    server = DdiLite(tmp_path / "server")
    yield server
    server.stop()


class Camera:
    """Screenshots into a temporary folder, copied to DDI_LITE_CONSOLE_SCREENSHOTS if set."""

    def __init__(self, folder):
        self.folder = folder
        self.copy_to = os.environ.get(SCREENSHOTS_VARIABLE)
        folder.mkdir()

    def shoot(self, page, name):
        path = self.folder / (name + ".png")
        page.screenshot(path=str(path))
        if self.copy_to:
            os.makedirs(self.copy_to, exist_ok=True)
            shutil.copy(str(path), os.path.join(self.copy_to, name + ".png"))
        return path


def ddi(url, secret, method="GET", body=None):
    """One device request with a target token; the JSON answer (None when empty) or bytes."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": "TargetToken " + secret, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        if response.headers.get("Content-Type", "").startswith("application/"):
            return json.loads(raw.decode("utf-8")) if raw and b"{" in raw[:1] else raw
        return raw


def new_targets(server, *controller_ids):
    """Targets made over the Management API (admin/admin): {controller id: its token}."""
    request = urllib.request.Request(
        server.url + "/rest/v1/targets", method="POST",
        data=json.dumps([{"controllerId": cid} for cid in controller_ids]).encode("utf-8"),
        headers={"Content-Type": "application/json", "Authorization": "Basic "
                 + base64.b64encode(b"admin:admin").decode("ascii")})
    with urllib.request.urlopen(request, timeout=10) as response:
        return {item["controllerId"]: item["securityToken"]
                for item in json.loads(response.read().decode("utf-8"))}


def deployment_offered(server, controller_id, secret):
    """Whether the device's next poll names a deployment (its rollout group has started)."""
    root = ddi(server.url + "/DEFAULT/controller/v1/" + controller_id, secret)
    return "deploymentBase" in root.get("_links", {})


def install_as_a_device(server, controller_id, secret, result="success"):
    """Poll, fetch the deployment, download every artifact, report `result`: the artifacts."""
    root = ddi(server.url + "/DEFAULT/controller/v1/" + controller_id, secret)
    deployment = ddi(root["_links"]["deploymentBase"]["href"], secret)
    downloaded = {}
    for chunk in deployment["deployment"]["chunks"]:
        for artifact in chunk["artifacts"]:
            href = artifact["_links"]["download-http"]["href"]
            assert href.startswith(server.url)
            downloaded[artifact["filename"]] = ddi(href, secret)
    ddi(server.url + "/DEFAULT/controller/v1/%s/deploymentBase/%s/feedback"
        % (controller_id, deployment["id"]), secret, "POST",
        {"status": {"execution": "closed", "result": {"finished": result},
                    "details": ["installed by the browser tier's device" if result == "success"
                                else "the browser tier's device failed"]}})
    return downloaded


def test_an_operator_deploys_to_a_device_from_the_browser(server, chromium, tmp_path):
    camera = Camera(tmp_path / "screenshots")
    foreign = []
    context = chromium.new_context(viewport={"width": 1100, "height": 760})
    context.set_default_timeout(TIMEOUT_MS)

    def only_the_server(route):
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()
    context.route("**/*", only_the_server)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)

    # Sign in with the keyboard alone: the user field has the focus, Tab, Enter.
    page.goto(server.url + "/ui")
    assert page.url.startswith(server.url + "/ui/signin")
    camera.shoot(page, "signin")
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type("admin")
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/ui")
    assert page.locator('[data-status="in_sync"]').inner_text() == "0"

    # A target for the device, whose token the target page shows.
    page.goto(server.url + "/ui/targets")
    page.get_by_label("Controller id").fill("press-7")
    page.get_by_label("Name (optional)").fill("Press 7, hall B")
    page.get_by_role("button", name="Create target", exact=True).click()
    page.wait_for_url("**/ui/targets/press-7?said=created")
    secret = page.locator("dt:text-is('Security token') + dd code").inner_text()

    # A module, two files uploaded at once with the script's progress bar.
    page.goto(server.url + "/ui/software")
    page.get_by_label("Name", exact=True).first.fill("press-firmware")
    page.get_by_label("Version", exact=True).first.fill("4.2")
    page.get_by_role("button", name="Create module", exact=True).click()
    page.wait_for_url("**/ui/software/modules/*?said=created")
    firmware = os.urandom(300 * 1024)
    page.get_by_label("Upload a file").set_input_files([
        {"name": "press.swu", "mimeType": "application/octet-stream", "buffer": firmware},
        {"name": "press.sig", "mimeType": "application/octet-stream", "buffer": b"sig" * 50}])
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_selector("output:text('2 file(s) uploaded.')")
    assert page.locator("progress").get_attribute("value") == "100" or \
        page.locator("progress").evaluate("bar => bar.value") == 100
    page.wait_for_selector("#artifacts td:text-is('press.sig')")
    assert page.locator("#artifacts").inner_text().count("SHA-256") == 2
    camera.shoot(page, "module")

    # A set made of that module.
    page.goto(server.url + "/ui/software")
    page.get_by_label("Name", exact=True).nth(1).fill("press-release")
    page.get_by_label("Version", exact=True).nth(1).fill("2024.4")
    page.get_by_label("press-firmware 4.2", exact=False).check()
    page.get_by_role("button", name="Create set", exact=True).click()
    page.wait_for_url("**/ui/software?said=created")
    assert "press-firmware 4.2" in page.locator("table").nth(1).inner_text()
    page.get_by_role("heading", name="Distribution sets").scroll_into_view_if_needed()
    camera.shoot(page, "software")

    # Assigned to the target; the overview shows it pending.
    page.goto(server.url + "/ui/targets/press-7")
    page.get_by_label("Distribution set").select_option(label="press-release 2024.4")
    page.get_by_role("button", name="Assign", exact=True).click()
    page.wait_for_url("**/ui/targets/press-7?said=assigned")
    page.goto(server.url + "/ui")
    assert page.locator('[data-status="pending"]').inner_text() == "1"

    # The device installs; the overview, left open, changes by itself.
    downloaded = install_as_a_device(server, "press-7", secret)
    assert downloaded["press.swu"] == firmware
    page.wait_for_selector('[data-status="in_sync"]:text-is("1")', timeout=15000)
    assert page.locator('[data-status="pending"]').inner_text() == "0"
    assert page.locator("svg.bar rect.s-in_sync").count() == 1
    assert "finished" in page.locator('[data-action-status]').first.inner_text()

    # A rollout of the same set to two more devices in two groups, made and started in the
    # console.
    line = new_targets(server, "line-1", "line-2")
    page.goto(server.url + "/ui/rollouts")
    page.get_by_label("Name", exact=True).fill("hall-b-2024.4")
    page.get_by_label("Distribution set").select_option(label="press-release 2024.4")
    page.get_by_label("Target query (RSQL)").fill("controllerId==line-*")
    page.get_by_label("Number of equal groups").fill("2")
    page.get_by_role("button", name="Create rollout", exact=True).click()
    page.wait_for_url("**/ui/rollouts/*?said=rollout-created")
    assert page.locator("[data-rollout-status]").inner_text() == "ready"
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_url("**/ui/rollouts/*?said=started")
    rollout_page = page.url.split("?")[0]

    # The first group's device installs: the overview shows the rollout, a bar per group.
    wait_until(lambda: deployment_offered(server, "line-1", line["line-1"]), 10,
               "the rollout's first group offering line-1 its deployment")
    install_as_a_device(server, "line-1", line["line-1"])
    page.goto(server.url + "/ui")
    rollout_card = page.locator('[data-rollout="hall-b-2024.4"]')
    assert rollout_card.locator("[data-group]").count() == 2
    assert "1 finished" in rollout_card.locator('[data-group="group-1"]').inner_text()
    camera.shoot(page, "overview")

    # The rollout's page, left open, shows the first group finished and, once the second
    # group's device fails, that group failed and the rollout paused, without a reload.
    page.goto(rollout_page)
    page.wait_for_selector('[data-group="group-1"][data-group-status="finished"]',
                           timeout=15000)
    assert page.locator('[data-group="group-1"] rect.p-finished').count() == 1
    wait_until(lambda: deployment_offered(server, "line-2", line["line-2"]), 10,
               "the second group offering line-2 its deployment")
    install_as_a_device(server, "line-2", line["line-2"], result="failure")
    page.wait_for_selector('[data-rollout-status="paused"]', timeout=15000)
    assert page.locator('[data-group="group-2"] rect.p-error').count() == 1
    assert "1 failed" in page.locator('[data-group="group-2"]').inner_text()
    assert page.get_by_role("button", name="Resume", exact=True).count() == 1
    camera.shoot(page, "rollout")
    page.goto(server.url + "/ui/rollouts")
    camera.shoot(page, "rollouts")

    page.goto(server.url + "/ui/targets/press-7")
    assert "installed by the browser tier's device" in page.inner_text("main")
    assert page.locator("dt:text-is('Installed set') + dd").inner_text() == \
        "press-release 2024.4"
    camera.shoot(page, "target")
    page.goto(server.url + "/ui/targets")
    camera.shoot(page, "targets")
    page.goto(server.url + "/ui/settings")
    camera.shoot(page, "settings")

    # 360 px wide (a phone, a tablet at the line): nothing wider than the screen.
    # Every field has a label a screen reader reads out.
    page.set_viewport_size({"width": 360, "height": 740})
    for path in ("/ui", "/ui/targets", "/ui/targets/press-7", "/ui/software", "/ui/settings",
                 "/ui/software/modules/1", "/ui/targets/press-7/delete", "/ui/rollouts",
                 "/ui/rollouts/1", "/ui/rollouts/1/groups/1", "/ui/rollouts/1/delete"):
        assert page.goto(server.url + path).status == 200, path
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
        assert page.evaluate(UNLABELLED_FIELDS) == [], path
    page.goto(server.url + "/ui")
    camera.shoot(page, "overview-360")

    # Signing out leaves nothing the browser could still open.
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url("**/ui/signin?said=signed-out")
    page.goto(server.url + "/ui/targets/press-7")
    assert page.url.startswith(server.url + "/ui/signin")

    assert foreign == []
    assert errors == []
    assert sorted(os.listdir(str(camera.folder))) == sorted(
        name + ".png" for name in ("signin", "module", "software", "overview", "rollout",
                                   "rollouts", "target", "targets", "settings",
                                   "overview-360"))
    context.close()
