"""A Bokeh websocket client on the wire protocol, for tests whose tokens come from a page (relayed sessions)."""
from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from typing import Any

TOKEN_RE = re.compile(r'"token":\s*"([^"]+)"')
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def page_token(url: str) -> str:
    """GET an app page (which builds its session) and return the token it embeds."""
    with _OPENER.open(url, timeout=60) as response:
        return TOKEN_RE.search(response.read().decode()).group(1)


def named_models(node: Any, found: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Model definitions with a ``name`` attribute in serialized document content: name -> definition."""
    found = {} if found is None else found
    if isinstance(node, dict):
        name = node.get("attributes", {}).get("name") if node.get("type") == "object" else None
        if isinstance(name, str):
            found[name] = node
        for value in node.values():
            named_models(value, found)
    elif isinstance(node, list):
        for value in node:
            named_models(value, found)
    return found


class BokehSocket:
    """A websocket speaking the Bokeh protocol with the token a page gave (websockets' sync client)."""

    def __init__(self, ws_url: str, token: str, timeout: float = 30.0) -> None:
        from websockets.sync.client import connect

        self.timeout = timeout
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(
            connect(ws_url, subprotocols=["bokeh", token], open_timeout=timeout, max_size=None))
        self._next = 0
        header, _ = self.read()
        assert header["msgtype"] == "ACK", header

    def close(self) -> None:
        self._stack.close()

    def read(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The next whole message: its header and content."""
        header = json.loads(self.ws.recv(timeout=self.timeout))
        self.ws.recv(timeout=self.timeout)  # metadata
        content = json.loads(self.ws.recv(timeout=self.timeout))
        for _ in range(2 * header.get("num_buffers", 0)):
            self.ws.recv(timeout=self.timeout)
        return header, content

    def send(self, msgtype: str, content: dict[str, Any]) -> str:
        self._next += 1
        msgid = f"test-{self._next}"
        self.ws.send(json.dumps({"msgid": msgid, "msgtype": msgtype}))
        self.ws.send("{}")
        self.ws.send(json.dumps(content))
        return msgid

    def pull(self) -> dict[str, dict[str, Any]]:
        """PULL-DOC: the document's named models."""
        msgid = self.send("PULL-DOC-REQ", {})
        return named_models(self.wait_for_reply(msgid, "PULL-DOC-REPLY"))

    def set_value(self, model_id: str, attr: str, value: Any) -> str:
        return self.send("PATCH-DOC", {"events": [{"kind": "ModelChanged", "model": {"id": model_id}, "attr": attr, "new": value}]})

    def wait_for_reply(self, msgid: str, msgtype: str) -> dict[str, Any]:
        """Read messages until the reply to ``msgid``; check its type and return its content."""
        while True:
            header, content = self.read()
            if header.get("reqid") == msgid:
                assert header["msgtype"] == msgtype, (header, content)
                return content

    def wait_for_change(self, model_id: str, attr: str, predicate: Any, *, timeout: float | None = None) -> Any:
        """Read messages until a PATCH-DOC sets ``attr`` of ``model_id`` to a value ``predicate`` accepts."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            header, content = self.read()
            if header["msgtype"] != "PATCH-DOC":
                continue
            for event in content.get("events", []):
                if event.get("model", {}).get("id") == model_id and event.get("attr") == attr and predicate(event["new"]):
                    return event["new"]
        raise AssertionError(f"no change of {attr} of {model_id} within the timeout")
