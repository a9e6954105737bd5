#!/usr/bin/env python
"""Screenshots of a demo curation in the Prefect UI, as an operator sees it, into docs/images/.

    . .venv/bin/activate && python scripts/ui_screenshots.py      # about 2 to 4 minutes

What it does, all on this machine and all stopped at the end whatever happens:
1. `prefect server start` on a free loopback port, with a temporary PREFECT_HOME (UI enabled);
2. `metaclip demo --output <tmp>` against that server (PREFECT_API_URL);
3. finds the run and its artifacts through the API (the run the CLI started, its `summary-…`,
   `outputs-…`, `datacard-…` and progress artifacts) and checks the card embeds two PNGs;
4. drives headless Chromium over the DevTools protocol (`websockets`), waits for each page of the
   single-page app to render, checks in the page that the card's plots decoded (naturalWidth > 0)
   and screenshots, in the classic UI (`/`) and the new one (`/v2/`):
     flow-run-artifacts[-v2].png   the run's page, Artifacts tab
     datacard[-v2].png             the data card artifact (both plots)
     summary[-v2].png              the summary artifact
5. shrinks them with Pillow (palette PNG, at most --width pixels wide, each under ~300 kB).

Needs `chromium` (Debian: `apt-get install -y chromium`; or --chromium PATH). Prints what each page
showed and exits 1 if a page did not render what it should (a plot missing, an artifact absent).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1400, 1800

# JavaScript evaluated in the page. The UIs scroll inside an inner element, so the height a full
# screenshot needs is the largest scrollHeight of any element.
JS_HEIGHT = "Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))"
JS_IMAGES = """(() => {
  const imgs = [...document.querySelectorAll('img')].filter(i => i.src.startsWith('data:image/'));
  return imgs.map(i => ({complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
                         shown_w: i.getBoundingClientRect().width, alt: i.alt}));
})()"""
JS_CLICK = """(() => {
  const e = [...document.querySelectorAll('button, a, [role=tab], li.p-tab')]
    .find(x => x.offsetParent !== null && x.innerText && x.innerText.trim() === %s);
  if (e) e.click();
  return !!e;
})()"""
# The lowest visible text, image or canvas right of the sidebar: where the content ends.
JS_BOTTOM = """Math.ceil(Math.max(0, ...[...document.querySelectorAll('body *')]
  .filter(e => e.offsetParent !== null && (e.tagName === 'IMG' || e.tagName === 'CANVAS' ||
          (e.children.length === 0 && e.innerText && e.innerText.trim())))
  .map(e => e.getBoundingClientRect()).filter(r => r.left >= 200 && r.width > 0)
  .map(r => r.bottom)))"""
# Where the largest canvas (the run graph) is, once it has a size.
JS_CANVAS = """(() => {
  const c = [...document.querySelectorAll('canvas')]
    .sort((a, b) => b.width * b.height - a.width * a.height)[0];
  if (!c) return null;
  const r = c.getBoundingClientRect();
  return r.width > 100 && r.height > 50 ? {x: r.x, y: r.y, width: r.width, height: r.height} : null;
})()"""
JS_TEXT = "document.body ? document.body.innerText : ''"


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Every process started here, each in its own process group, all killed on exit.

    Each gets MARKER=<tmp> in its environment, which its descendants inherit: processes that
    leave the group (Chromium's crash handlers start their own sessions) are found by it in
    /proc and killed too, and nothing else is."""

    MARKER = "METACLIP_UI_SCREENSHOTS_RUN"

    def __init__(self, tmp: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.value = str(tmp)
        self.mark = f"{self.MARKER}={tmp}".encode()

    def start(self, cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**env, self.MARKER: self.value},
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)  # the group: uvicorn, services, renderers too
                try:
                    proc.wait(wait)
                    # the leader is gone; what is left of its group still gets the signal
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.sweep()

    def marked(self) -> list[int]:
        """Live processes (not zombies) carrying this run's marker."""
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                with contextlib.suppress(OSError):
                    if self.mark in (proc / "environ").read_bytes().split(b"\0"):
                        pids.append(int(proc.name))
        return pids

    def alive(self) -> list[int]:
        """Process groups started here with a member left, and marked processes outside them."""
        groups = []
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, 0)
                groups.append(proc.pid)
        return groups + (self.marked() if Path("/proc").is_dir() else [])

    def sweep(self) -> None:
        """SIGKILL what is left, and wait (10 s at most) until it is gone."""
        deadline = time.monotonic() + 10
        while (left := self.alive()) and time.monotonic() < deadline:
            for proc in self.procs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            for pid in self.marked() if Path("/proc").is_dir() else []:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        if left:
            print(f"warning: still running after the kill: {left}", file=sys.stderr)


def wait_for(what: str, check: Any, timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


# --------------------------------------------------------------------------- API


def find_run(api: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The top-level flow run (the one the CLI started) and all artifacts of it."""
    with httpx.Client(base_url=api, timeout=30) as client:
        runs = (
            client.post(
                "/flow_runs/filter",
                json={
                    "flow_runs": {"parent_task_run_id": {"is_null_": True}},
                    "sort": "START_TIME_DESC",
                    "limit": 10,
                },
            )
            .raise_for_status()
            .json()
        )
        if len(runs) != 1:
            print(f"note: {len(runs)} top-level flow runs; using the newest", file=sys.stderr)
        run = runs[0]
        arts = (
            client.post(
                "/artifacts/filter",
                json={
                    "artifacts": {"flow_run_id": {"any_": [run["id"]]}},
                    "sort": "CREATED_DESC",
                    "limit": 200,
                },
            )
            .raise_for_status()
            .json()[::-1]
        )
        n_tasks = (
            client.post("/task_runs/count", json={"flow_runs": {"id": {"any_": [run["id"]]}}})
            .raise_for_status()
            .json()
        )
        n_sub = (
            client.post(
                "/flow_runs/count", json={"flow_runs": {"parent_task_run_id": {"is_null_": False}}}
            )
            .raise_for_status()
            .json()
        )
        run["_task_runs"], run["_subflow_runs"] = n_tasks, n_sub
    return run, arts


def by_kind(arts: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    found = [a for a in arts if (a.get("key") or "").startswith(prefix + "-")]
    if len(found) != 1:
        raise SystemExit(f"expected one {prefix}-… artifact on the run, found {len(found)}")
    return found[0]


# --------------------------------------------------------------------------- browser


class Page:
    """One Chromium tab driven over the DevTools protocol."""

    def __init__(self, ws_url: str) -> None:
        self.ws = connect(ws_url, max_size=None, open_timeout=30)
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res.get("result", {}).get("value")

    def viewport(self, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()


@contextlib.contextmanager
def browser(chromium: str, tmp: Path, procs: Processes) -> Iterator[Page]:
    profile = tmp / "chromium-profile"
    profile.mkdir()
    # WebGL through SwiftShader (software): the new UI draws the run graph with WebGL
    procs.start(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader",
            "--ignore-gpu-blocklist",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{HEIGHT}",
            "about:blank",
        ],
        tmp / "chromium.log",
        # its profile, caches and crash database in tmp, not in ~/.config or ~/.cache
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp / "xdg"), "XDG_CACHE_HOME": str(tmp / "xdg")},
    )
    active = profile / "DevToolsActivePort"
    port = wait_for("Chromium's DevTools port", lambda: active.read_text().split()[0], 60)
    targets = wait_for(
        "a Chromium tab",
        lambda: [
            t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"
        ],
        30,
    )
    page = Page(targets[0]["webSocketDebuggerUrl"])
    try:
        page.call("Page.enable")
        page.viewport(HEIGHT)
        yield page
    finally:
        page.close()


def shoot(
    page: Page,
    url: str,
    ready_js: str,
    timeout: float,
    max_height: int,
    click: str | None = None,
    graph: bool = False,
) -> dict[str, Any]:
    """Open url, click the tab or button labelled `click` once it shows, wait until ready_js is
    truthy (the SPA rendered), screenshot the whole content (up to max_height); what the page
    showed, with the PNG bytes under 'png'."""
    page.viewport(HEIGHT)
    page.call("Page.navigate", url=url)
    start = time.monotonic()
    try:
        if click:
            wait_for(
                f"{click!r} on {url}", lambda: page.eval(JS_CLICK % json.dumps(click)), timeout
            )
        wait_for(url, lambda: page.eval(ready_js), timeout)
        ready = True
    except TimeoutError:
        ready = False
    graph_drawn = wait_graph(page, timeout) if graph and ready else None
    time.sleep(2.0)  # let late requests (counts, charts) and fonts settle
    height = min(max(HEIGHT, int(page.eval(JS_HEIGHT) or HEIGHT)), max_height)
    if height > HEIGHT:
        page.viewport(height)
        time.sleep(1.5)
        height = min(max(height, int(page.eval(JS_HEIGHT) or height)), max_height)
        page.viewport(height)
        time.sleep(0.5)
    png = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
    return {
        "url": url,
        "ready": ready,
        "graph_drawn": graph_drawn,
        "seconds": round(time.monotonic() - start, 1),
        "height": height,
        "bottom": page.eval(JS_BOTTOM),
        "images": page.eval(JS_IMAGES) or [],
        "text": page.eval(JS_TEXT) or "",
        "final_url": page.eval("location.href"),
        "png": png,
    }


def wait_graph(page: Page, timeout: float) -> bool:
    """Wait until the run graph (a canvas; WebGL in the new UI, slow in software) shows green
    task bars and has stopped changing; whether it did within timeout."""
    deadline, last = time.monotonic() + timeout, None
    try:  # the graph's code loads lazily: wait for its canvas first
        rect = wait_for("the run graph's canvas", lambda: page.eval(JS_CANVAS), timeout)
    except TimeoutError:
        return False
    while time.monotonic() < deadline:
        # the whole viewport, cropped here: a clip with a scale resizes the page, and the graph
        # starts drawing again
        data = page.call("Page.captureScreenshot", format="png")
        img = (
            Image.open(io.BytesIO(base64.b64decode(data["data"])))
            .convert("RGB")
            .crop(
                (
                    int(rect["x"]),
                    int(rect["y"]),
                    int(rect["x"] + rect["width"]),
                    int(rect["y"] + rect["height"]),
                )
            )
            .reduce(4)
        )
        px = img.tobytes()
        green = sum(
            1
            for r, g, b in zip(px[0::3], px[1::3], px[2::3], strict=True)
            if g > r + 50 and g > b + 30
        )
        if green > 20 and img.tobytes() == last:
            return True
        last = img.tobytes() if green > 20 else None
        time.sleep(1.5)
    return False


def save_small(
    png: bytes, path: Path, width: int, bottom: int | None = None, max_bytes: int = 300_000
) -> int:
    """Crop at `bottom` px, resize to at most `width` wide, quantize to a palette, shrink further
    until under max_bytes; the bytes written."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    if bottom:  # cut the empty band under the content
        img = img.crop((0, 0, img.width, min(img.height, bottom + 32)))
    w = min(width, img.width)
    while True:
        scaled = (
            img.resize((w, round(img.height * w / img.width)), Image.LANCZOS)
            if w != img.width
            else img
        )
        buf = io.BytesIO()
        scaled.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buf, "PNG", optimize=True
        )
        if buf.tell() <= max_bytes or w <= 500:
            path.write_bytes(buf.getvalue())
            return buf.tell()
        w = int(w * 0.85)


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    ap.add_argument(
        "--chromium",
        default=shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
        or "chromium",
    )
    ap.add_argument("--width", type=int, default=1000, help="width of the saved PNGs")
    ap.add_argument("--demo-timeout", type=float, default=900)
    ap.add_argument("--page-timeout", type=float, default=120)
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (logs)")
    args = ap.parse_args()

    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="metaclip-ui-"))
    procs = Processes(tmp)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # a killed script still stops its children
        signal.signal(sig, lambda *_: sys.exit(1))
    try:
        return run(args, tmp, procs, t0)
    finally:
        procs.stop_all()
        if args.keep_tmp:
            print(f"temporary files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"total {time.monotonic() - t0:.0f}s")


def run(args: argparse.Namespace, tmp: Path, procs: Processes, t0: float) -> int:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = f"{base}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "PREFECT_API_URL": api,
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_UI_ENABLED": "true",
            "PREFECT_UI_API_URL": api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        }
    )
    bin_dir = Path(sys.executable).parent
    prefect, metaclip = (
        str(bin_dir / n) if (bin_dir / n).exists() else n for n in ("prefect", "metaclip")
    )

    print(f"prefect server on {base} (PREFECT_HOME {tmp / 'prefect-home'})")
    server = procs.start(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        tmp / "server.log",
        env,
    )

    def healthy() -> bool:
        if server.poll() is not None:
            raise SystemExit(f"prefect server exited: {(tmp / 'server.log').read_text()[-2000:]}")
        return httpx.get(f"{api}/health", timeout=2).status_code == 200

    wait_for("/api/health", lambda: healthy() or None, 300)
    print(f"  healthy after {time.monotonic() - t0:.0f}s")

    out = tmp / "curated" / "demo-output"  # keys read datacard-curated-demo-output-<hash>
    t_demo = time.monotonic()
    demo = procs.start([metaclip, "demo", "--output", str(out)], tmp / "demo.log", env)
    try:
        rc = demo.wait(args.demo_timeout)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"metaclip demo ran over {args.demo_timeout:.0f}s") from None
    if rc != 0:
        raise SystemExit(f"metaclip demo failed ({rc}):\n{(tmp / 'demo.log').read_text()[-3000:]}")
    print(f"metaclip demo: {time.monotonic() - t_demo:.0f}s")
    return capture(args, base, tmp, procs)


def capture(args: argparse.Namespace, base: str, tmp: Path, procs: Processes) -> int:
    """Find the run and its artifacts on the server at base, screenshot them; the exit code."""
    run_, arts = find_run(f"{base}/api")
    card, summary, outputs = (by_kind(arts, k) for k in ("datacard", "summary", "outputs"))
    progress = [a for a in arts if a["type"] == "progress"]
    n_uris = card["data"].count("data:image/png;base64,")
    print(
        f"run {run_['name']} ({run_['id']}): {run_['state_name']}, {run_['_task_runs']} task "
        f"runs, {run_['_subflow_runs']} subflow runs, {len(arts)} artifacts: "
        + ", ".join(
            f"{a['type']}:{a.get('key') or '(no key)'}"
            + (f" {a['data']}%" if a["type"] == "progress" else "")
            for a in arts
        )
    )
    print(f"  data card artifact: {len(card['data']):,} characters, {n_uris} embedded PNGs")
    problems = [] if n_uris == 2 else [f"data card embeds {n_uris} PNGs, not 2"]
    if not progress:
        problems.append("no progress artifact on the run")

    # "extract-and-match: 4 / 4": each stage's progress as its card shows it
    stages = [(a.get("description") or "").split(" tasks of")[0] for a in progress]
    rid = run_["id"]
    name = run_["name"]
    has_key = "(t => document.body && document.body.innerText.includes(t))"
    two_images = (
        "(() => { const i = [...document.querySelectorAll('img')].filter("
        "x => x.src.startsWith('data:image/')); return i.length >= 2 && "
        "i.every(x => x.complete); })()"
    )
    shots = []
    for ui, prefix in (("classic", ""), ("new", "/v2")):
        suffix = "" if ui == "classic" else "-v2"
        shots += [
            (
                f"flow-run-artifacts{suffix}",
                ui,
                f"{base}{prefix}/runs/flow-run/{rid}?tab=Artifacts",
                f"{has_key}({json.dumps(card['key'])}) && {has_key}({json.dumps(name)})"
                + "".join(f" && {has_key}({json.dumps(stage)})" for stage in stages),
                3000,
                # the classic UI drops ?tab=Artifacts (the tab is hidden until the run has loaded)
                "Artifacts" if ui == "classic" else None,
            ),
            (
                f"datacard{suffix}",
                ui,
                f"{base}{prefix}/artifacts/artifact/{card['id']}",
                f"{two_images} && {has_key}('Data card')",
                6000,
                None,
            ),
            (
                f"summary{suffix}",
                ui,
                f"{base}{prefix}/artifacts/artifact/{summary['id']}",
                f"{has_key}('Curation summary') && {has_key}('pairs_curated')",
                6000,
                None,
            ),
        ]

    args.out.mkdir(parents=True, exist_ok=True)
    report = {}
    with browser(args.chromium, tmp, procs) as page:
        for file, ui, url, ready_js, max_height, click in shots:
            shot = shoot(
                page,
                url,
                ready_js,
                args.page_timeout,
                max_height,
                click,
                graph=file.startswith("flow-run"),
            )
            size = save_small(shot.pop("png"), args.out / f"{file}.png", args.width, shot["bottom"])
            text = shot.pop("text")
            imgs = shot["images"]
            decoded = [i for i in imgs if i["complete"] and i["w"] > 0]
            seen = {
                "progress descriptions": sum(stage in text for stage in stages),
                "datacard key": card["key"] in text,
                "summary key": summary["key"] in text,
                "outputs key": outputs["key"] in text,
            }
            print(
                f"{file}.png ({ui} UI, {size / 1000:.0f} kB, {shot['height']} px tall before "
                f"resizing, rendered in {shot['seconds']}s{'' if shot['ready'] else ', NOT READY'})"
                f": {shot['final_url']}\n  data: images {len(decoded)}/{len(imgs)} decoded "
                f"{[(i['w'], i['h'], round(i['shown_w'])) for i in imgs]}; {seen}"
            )
            if shot["graph_drawn"] is False:
                print(f"  warning: the run graph was not drawn within {args.page_timeout:.0f}s")
            if not shot["ready"]:
                problems.append(f"{file}: the page did not show what was expected ({url})")
            if file.startswith("datacard") and len(decoded) < 2:
                problems.append(f"{file}: {len(decoded)} of 2 plots rendered")
            report[file] = {**shot, "seen": seen, "bytes": size}
    (tmp / "report.json").write_text(json.dumps(report, indent=1))
    for p in problems:
        print(f"PROBLEM: {p}")
    print(f"screenshots in {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
