"""Drive Debian's Firefox ESR over WebDriver BiDi (the W3C protocol Firefox speaks natively).

Playwright's own Firefox is a patched build downloaded from the network, and its BiDi channel for
stock Firefox needs commands that Firefox ESR does not have yet, so the browser test talks BiDi
directly: launch ``firefox-esr --headless --remote-debugging-port``, open the session websocket,
then navigate, evaluate scripts, set files and send real pointer/keyboard input.
"""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

FIREFOX = "/usr/bin/firefox-esr"


class BidiError(RuntimeError):
    pass


class Firefox:
    """One headless Firefox with one BiDi session and its first tab (``self.context``)."""

    def __init__(self, executable: str = FIREFOX, timeout: float = 60.0):
        from websockets.sync.client import connect

        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="vfm-firefox-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [executable, "--headless", "--no-remote", "--profile", self._profile,
             f"--remote-debugging-port={port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        for line in self.proc.stderr:  # Firefox announces the endpoint once it listens
            if "WebDriver BiDi listening" in line:
                break
            if time.monotonic() > deadline:
                break
        else:
            raise BidiError(f"firefox exited before listening (code {self.proc.poll()})")
        self._ws = connect(f"ws://127.0.0.1:{port}/session", max_size=None, open_timeout=timeout)
        self._ids = itertools.count(1)
        self.events: list[dict] = []
        self.version = self.send("session.new", {"capabilities": {}})["capabilities"]["browserVersion"]
        self.send("session.subscribe", {"events": ["log.entryAdded"]})
        self.context = self.send("browsingContext.getTree", {})["contexts"][0]["context"]

    # ------------------------------------------------------------------ protocol
    def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        i = next(self._ids)
        self._ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv(timeout=self.timeout))
            if msg.get("id") == i:
                if msg.get("type") == "error":
                    raise BidiError(f"{method}: {msg.get('error')}: {msg.get('message')}")
                return msg["result"]
            if msg.get("type") == "event":
                self.events.append(msg)

    def close(self) -> None:
        try:
            self.send("session.end", {})
            self._ws.close()
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self._profile, ignore_errors=True)

    # ------------------------------------------------------------------ page helpers
    def goto(self, url: str) -> None:
        self.send("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def js(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page (promises awaited); JSON-able results come back as Python."""
        res = self.send("script.evaluate", {
            "expression": f"(async () => JSON.stringify(await ({expression})))()",
            "target": {"context": self.context}, "awaitPromise": True})
        if res.get("type") == "exception":
            raise BidiError(f"{expression!r} threw: {res['exceptionDetails'].get('text')}")
        value = res["result"].get("value")
        return None if value is None else json.loads(value)

    def element(self, selector: str) -> dict[str, str]:
        res = self.send("script.evaluate", {
            "expression": f"document.querySelector({json.dumps(selector)})",
            "target": {"context": self.context}, "awaitPromise": False})
        if res["result"].get("type") != "node":
            raise BidiError(f"no element matches {selector!r}")
        return {"sharedId": res["result"]["sharedId"]}

    def wait_for(self, expression: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.js(f"!!({expression})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:g} s for {expression}")
            time.sleep(0.05)

    def set_files(self, selector: str, paths: list[str]) -> None:
        self.send("input.setFiles", {"context": self.context, "element": self.element(selector), "files": paths})

    def rect(self, selector: str) -> dict[str, float]:
        return self.js(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                       " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()")

    def pointer(self, steps: list[dict]) -> None:
        """Real mouse input: steps like {"type": "pointerMove", "x": .., "y": ..} in viewport pixels."""
        actions = [dict(s, x=int(round(s["x"])), y=int(round(s["y"]))) if s["type"] == "pointerMove" else s
                   for s in steps]
        self.send("input.performActions", {"context": self.context, "actions": [
            {"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": actions}]})
        self.send("input.releaseActions", {"context": self.context})

    def click(self, x: float, y: float, button: int = 0) -> None:
        self.pointer([{"type": "pointerMove", "x": x, "y": y},
                      {"type": "pointerDown", "button": button}, {"type": "pointerUp", "button": button}])

    def click_element(self, selector: str) -> None:
        r = self.rect(selector)
        self.click(r["x"] + r["width"] / 2, r["y"] + r["height"] / 2)

    def type(self, text: str, *, replace: bool = False) -> None:
        """Type ``text`` into the focused element (``replace``: select all first, as a user would)."""
        ctrl = "\ue009"
        keys = [{"type": "keyDown", "value": ctrl}, {"type": "keyDown", "value": "a"},
                {"type": "keyUp", "value": "a"}, {"type": "keyUp", "value": ctrl}] if replace else []
        for ch in text:
            keys += [{"type": "keyDown", "value": ch}, {"type": "keyUp", "value": ch}]
        self.send("input.performActions", {"context": self.context, "actions": [
            {"type": "key", "id": "keyboard", "actions": keys}]})

    def errors(self) -> list[str]:
        """Uncaught page errors reported so far (console errors included)."""
        return [e["params"].get("text", "") for e in self.events
                if e.get("method") == "log.entryAdded" and e["params"].get("level") == "error"]
