"""Fixtures for unit tests: a BokehASGI installed for the test, Bokeh messages over a WebsocketCommunicator."""
from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from bokeh.document import Document
from bokeh.models import Div, Slider
from bokeh.protocol import Protocol
from bokeh.protocol.message import Message
from bokeh.util.token import generate_jwt_token, generate_session_id
from channels.testing import WebsocketCommunicator

from bokehserver import registry
from bokehserver.asgi import BokehASGI, bokeh_asgi_application
from bokehserver.frames import message_frames
from bokehserver.gathering import RECEIVE_FRAMES, FrameGatherer

REPO_ROOT = Path(__file__).resolve().parents[2]
DIRAPP = REPO_ROOT / "examples" / "dirapp"
ALLOWED_ORIGIN = "localhost:5006"
TIMEOUT = 30.0  # bounds a failure only: a loaded machine builds sessions slowly

protocol = Protocol()


def slider_doc(doc: Document) -> None:
    """A Slider ``s`` whose changes the server writes into the Div ``d``."""
    slider = Slider(start=0, end=10, value=1, step=1, title="s", name="s")
    div = Div(text="value=1", name="d")

    def changed(attr: str, old: Any, new: Any) -> None:
        div.text = f"value={new}"

    slider.on_change("value", changed)
    doc.add_root(slider)
    doc.add_root(div)
    doc.title = "slider app"


def div_doc(doc: Document) -> None:
    doc.add_root(Div(text="other app", name="other"))


def broken_doc(doc: Document) -> None:
    raise RuntimeError("modify_doc exploded on purpose")


class BokehMessage(NamedTuple):
    header: dict[str, Any]
    metadata: dict[str, Any]
    content: dict[str, Any]
    buffers: list[tuple[dict[str, Any], bytes]]

    @property
    def msgtype(self) -> str:
        return self.header["msgtype"]

    @property
    def reqid(self) -> str | None:
        return self.header.get("reqid")


class ClosedError(AssertionError):
    """The server closed the socket where a Bokeh message was expected."""

    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"socket closed by the server with code {code} ({reason!r})")
        self.code = code
        self.reason = reason


async def _output(comm: WebsocketCommunicator, timeout: float, waiting_for: str) -> dict[str, Any]:
    try:
        return await comm.receive_output(timeout)
    except TimeoutError:
        raise AssertionError(f"the server sent nothing within {timeout} s while the test waited for {waiting_for}") from None


async def _frame(comm: WebsocketCommunicator, timeout: float) -> str | bytes:
    output = await _output(comm, timeout, "a message frame")
    if output["type"] == "websocket.close":
        raise ClosedError(output.get("code"), output.get("reason"))
    assert output["type"] == "websocket.send", output
    assert ("text" in output and output["text"] is not None) != ("bytes" in output and output["bytes"] is not None), output
    return output["text"] if output.get("text") is not None else output["bytes"]


async def read_message(comm: WebsocketCommunicator, timeout: float = TIMEOUT) -> BokehMessage:
    """Read one whole Bokeh message: header, metadata, content, then a (ref, payload) pair per buffer."""
    texts = []
    for part in ("header", "metadata", "content"):
        frame = await _frame(comm, timeout)
        assert isinstance(frame, str), f"{part} frame should be text, got {frame!r:.80}"
        texts.append(json.loads(frame))
    header, metadata, content = texts
    buffers = []
    for _ in range(header.get("num_buffers", 0)):
        ref = await _frame(comm, timeout)
        assert isinstance(ref, str), f"buffer header should be text, got {ref!r:.80}"
        payload = await _frame(comm, timeout)
        assert isinstance(payload, bytes), f"buffer payload should be binary, got {payload!r:.80}"
        buffers.append((json.loads(ref), payload))
    return BokehMessage(header, metadata, content, buffers)


async def send_frames(comm: WebsocketCommunicator, frames: tuple[str | bytes, ...] | list[str | bytes]) -> None:
    """Send raw websocket frames (text for str, binary for bytes), in order."""
    for frame in frames:
        key = "bytes" if isinstance(frame, bytes) else "text"
        await comm.send_input({"type": "websocket.receive", key: frame})


async def send_gathered(comm: WebsocketCommunicator, frames: tuple[str | bytes, ...] | list[str | bytes], limit: int = 2**30) -> None:
    """Send frames as bokehserver's daphne server hands them over: a plain message as one event."""
    events: list[dict[str, Any]] = []

    def frame(payload: bytes, is_binary: bool) -> None:
        events.append({"type": "websocket.receive", "bytes": payload} if is_binary
                      else {"type": "websocket.receive", "text": payload.decode("utf-8")})

    gatherer = FrameGatherer(limit, frame, lambda whole: events.append({"type": RECEIVE_FRAMES, "frames": whole}))
    for item in frames:
        gatherer.feed(item if isinstance(item, bytes) else item.encode("utf-8"), isinstance(item, bytes))
    for event in events:
        await comm.send_input(event)


async def send_message(comm: WebsocketCommunicator, message: Message[Any]) -> None:
    """Send a message made with ``bokeh.protocol.Protocol().create(...)`` as its frames."""
    await send_frames(comm, message_frames(message))


async def read_close(comm: WebsocketCommunicator, timeout: float = TIMEOUT) -> tuple[int | None, str | None]:
    """Skip frames until the server closes the socket; return (code, reason)."""
    while True:
        output = await _output(comm, timeout, "the socket to close")
        if output["type"] == "websocket.close":
            return output.get("code"), output.get("reason")


async def request(
    comm: WebsocketCommunicator, message: Message[Any], timeout: float = TIMEOUT, *, gathered: bool = False,
) -> tuple[BokehMessage, list[BokehMessage]]:
    """Send ``message`` (``gathered``: as our daphne hands it over); return the reply (reqid == its
    msgid) and the messages that came before it."""
    if gathered:
        await send_gathered(comm, message_frames(message))
    else:
        await send_message(comm, message)
    before = []
    while True:
        got = await read_message(comm, timeout)
        if got.reqid == message.header["msgid"]:
            return got, before
        before.append(got)


def client_patch(doc_json: dict[str, Any], change: Callable[[Document], None]) -> Message[Any]:
    """A PATCH-DOC for what ``change`` does to a client copy of the pulled document (as bokeh.client sends)."""
    doc = Document.from_json(doc_json)
    events: list[Any] = []
    doc.on_change(lambda event: events.append(event))
    change(doc)
    assert events, "the change made no document event"
    return protocol.create("PATCH-DOC", events)


def models_by_name(doc_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Model objects of a DocJson that carry a name, by name (roots and nested)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "attributes" in node and "name" in node["attributes"]:
                found[node["attributes"]["name"]] = node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc_json["roots"])
    return found


def make_token(
    session_id: str | None = None,
    *,
    secret_key: str | bytes | None = None,
    signed: bool = False,
    expiration: int = 300,
    extra_payload: dict[str, Any] | None = None,
) -> str:
    if isinstance(secret_key, str):
        secret_key = secret_key.encode()
    if session_id is None:
        session_id = generate_session_id(secret_key=secret_key, signed=signed)
    return generate_jwt_token(session_id, secret_key=secret_key, signed=signed, expiration=expiration, extra_payload=extra_payload)


class Bokeh:
    """The helpers above, handed to test modules as the ``bk`` fixture."""

    BokehMessage = BokehMessage
    ClosedError = ClosedError
    protocol = protocol
    read_message = staticmethod(read_message)
    read_close = staticmethod(read_close)
    send_frames = staticmethod(send_frames)
    send_gathered = staticmethod(send_gathered)
    send_message = staticmethod(send_message)
    request = staticmethod(request)
    client_patch = staticmethod(client_patch)
    models_by_name = staticmethod(models_by_name)
    make_token = staticmethod(make_token)
    slider_doc = staticmethod(slider_doc)
    div_doc = staticmethod(div_doc)
    broken_doc = staticmethod(broken_doc)
    DIRAPP = DIRAPP
    ALLOWED_ORIGIN = ALLOWED_ORIGIN
    TIMEOUT = TIMEOUT


@pytest.fixture
def bk() -> type[Bokeh]:
    return Bokeh


@pytest.fixture(autouse=True)
def _no_env_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOKEH_ALLOW_WS_ORIGIN would replace the origins the tests configure."""
    monkeypatch.delenv("BOKEH_ALLOW_WS_ORIGIN", raising=False)


@pytest.fixture
async def web_app() -> AsyncIterator[Callable[..., BokehASGI]]:
    """Build a BokehASGI (``web_app({"/app": modify_doc}, **options)``) and install it for the test."""
    built: list[BokehASGI] = []

    def build(applications: Any, **options: Any) -> BokehASGI:
        options.setdefault("extra_websocket_origins", [ALLOWED_ORIGIN])
        app = BokehASGI(applications, **options)
        registry.install(app)
        built.append(app)
        return app

    yield build
    for app in reversed(built):
        registry.uninstall(app)
        await app.stop()


@pytest.fixture(scope="session")
def asgi_application() -> Any:
    """The site's ASGI application as a deployment builds it: Django for HTTP, the consumer for websockets."""
    from django.core.asgi import get_asgi_application

    return bokeh_asgi_application(get_asgi_application())


@pytest.fixture
async def ws(asgi_application: Any) -> AsyncIterator[Callable[..., WebsocketCommunicator]]:
    """Make WebsocketCommunicators (``ws("/app", token)``), all disconnected at teardown."""
    made: list[WebsocketCommunicator] = []

    def make(
        app_path: str,
        token: str | None = None,
        *,
        subprotocols: list[str] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> WebsocketCommunicator:
        if subprotocols is None:
            subprotocols = ["bokeh", token if token is not None else make_token()]
        path = app_path.rstrip("/") + "/ws"
        comm = WebsocketCommunicator(asgi_application, path, headers=headers or [], subprotocols=subprotocols)
        made.append(comm)
        return comm

    yield make
    for comm in made:
        if comm._future is not None and not comm.future.done():
            await comm.disconnect(timeout=TIMEOUT)


@pytest.fixture
async def open_session(ws: Callable[..., WebsocketCommunicator]) -> Callable[..., Any]:
    """Connect to an app, check the ACK and return the communicator (``await open_session("/app", token)``)."""

    async def connect(app_path: str, token: str | None = None, **kwargs: Any) -> WebsocketCommunicator:
        comm = ws(app_path, token, **kwargs)
        connected, subprotocol = await comm.connect(timeout=TIMEOUT)
        assert (connected, subprotocol) == (True, "bokeh")
        ack = await read_message(comm)
        assert ack.msgtype == "ACK"
        return comm

    return connect


@pytest.fixture
def bokeh_warnings(caplog: pytest.LogCaptureFixture) -> Callable[[], list[logging.LogRecord]]:
    """Warnings logged by bokehserver loggers so far."""
    caplog.set_level(logging.INFO, logger="bokehserver")

    def records() -> list[logging.LogRecord]:
        return [
            r for r in caplog.records
            if r.name.startswith("bokehserver") and r.levelno == logging.WARNING
        ]

    return records
