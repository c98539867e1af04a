"""bokehserver.server.Server: built and checked in-process; served, stopped and forked in subprocesses.

Starting a Server binds Twisted's reactor to one event loop for the life of the process, so
every scenario that starts one runs as a small script in a subprocess of its own, reporting on
stdout what the test asserts.
"""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from bokeh.document import Document
from bokeh.models import Div
from bokeh.protocol.exceptions import ProtocolError

from bokehserver import Server
from bokehserver.registry import AppSpecError

from processes import kill_group

REPO_ROOT = Path(__file__).resolve().parent.parent
# bounds a failure only: a script that imports Django, bokeh and Twisted is slow on a loaded machine
WAIT_SECONDS = 90.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# The app every script serves: its page title and Div show the serving pid, a TextInput
# echoes into the Div through a server-side callback, and each hook prints a HOOK line.
APP = '''
import os
import sys

from bokeh.application import Application
from bokeh.application.handlers import Handler
from bokeh.models import Div, TextInput


def say(*words):
    # one write per line: the processes of a forked server share this pipe
    sys.stdout.write(" ".join(map(str, words)) + "\\n")
    sys.stdout.flush()


def report(event, *details):
    say("HOOK", event, os.getpid(), *details)


class PidApp(Handler):
    def modify_document(self, doc):
        doc.title = f"pid {os.getpid()}"
        div = Div(text=f"pid {os.getpid()}", name="pid")
        text = TextInput(name="input")
        text.on_change("value", lambda attr, old, new: setattr(div, "text", f"echo {new}"))
        doc.add_root(div)
        doc.add_root(text)

    def on_server_loaded(self, server_context):
        report("loaded")

    def on_server_unloaded(self, server_context):
        report("unloaded")

    def on_session_created(self, session_context):
        report("created", session_context.id)

    def on_session_destroyed(self, session_context):
        report("destroyed", session_context.id)


app = Application(PidApp())
'''

# start() inside asyncio.run(), bokeh.client on a thread, then `await server.stop()`.
IN_LOOP_SCRIPT = APP + '''
import asyncio
import json
import socket
import sys

from bokeh.client import pull_session

from bokehserver import Server


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:  # caught by the listener as it closed: not refused yet
        return False
    return False


async def refused_soon(port):
    """Whether the port refuses connections within a generous bound (closing a listener takes a loop turn)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not await asyncio.to_thread(refused, port):
        if loop.time() > deadline:
            return False
    return True


async def main():
    options = json.loads(sys.argv[1])
    unlisten_first = options.pop("unlisten_first")
    server = Server({"/": app}, port=0, address="127.0.0.1", **options)
    server.start()
    port = server.port
    result = {"port": port, "pid": os.getpid(), "loop_is_running_loop": server.io_loop is asyncio.get_running_loop()}

    def pull():
        with pull_session(url=f"http://127.0.0.1:{port}/") as session:
            return session.id, session.document.get_model_by_name("pid").text

    session_id, result["text"] = await asyncio.to_thread(pull)
    result["found"] = server.get_session("/", session_id).id == session_id
    result["sessions"] = [session.id for session in server.get_sessions()]
    result["session_id"] = session_id
    if unlisten_first:
        server.unlisten()
        result["refused_after_unlisten"] = await refused_soon(port)
    await server.stop()
    await asyncio.sleep(0)
    result["tasks_left"] = [repr(task) for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    result["refused"] = refused(port)
    try:
        server.start()
    except RuntimeError as exc:
        result["restart"] = str(exc)
    try:
        server.run_until_shutdown()
    except RuntimeError as exc:
        result["run_in_loop"] = str(exc)
    say("RESULT", json.dumps(result))


asyncio.run(main())
'''

# The plain script bokeh's docs show: no Django project, run_until_shutdown() until a signal.
PLAIN_SCRIPT = APP + '''
import sys

from bokehserver import Server

server = Server({"/": app}, port=0, address="127.0.0.1", num_procs=int(sys.argv[1]))
say("SERVING", server.port, os.getpid())
server.run_until_shutdown()
say("EXITED", os.getpid())
'''

CLIENT_SCRIPT = '''
import sys

from bokeh.client import pull_session

with pull_session(url=sys.argv[1]) as session:
    print("PULLED", session.id, session.document.get_model_by_name("pid").text, flush=True)
'''


def modify_doc(doc: Document) -> None:
    doc.add_root(Div(text="hello"))


class Script:
    """A Python script run in its own process group, its output read line by line on a thread."""

    def __init__(self, path: Path, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(path), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    @property
    def output(self) -> str:
        self._drain()
        return "\n".join(self.lines)

    def _drain(self) -> None:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return
            if line is not None:
                self.lines.append(line)

    def expect(self, pattern: str, count: int = 1, timeout: float = WAIT_SECONDS) -> list[re.Match[str]]:
        """Wait until ``count`` output lines match ``pattern``; return the matches, or fail showing the output."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            matches = [m for m in map(regex.search, self.lines) if m]
            if len(matches) >= count:
                return matches
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"{count} lines matching {pattern!r} not printed within {timeout:.0f} s\n"
                            f"--- output ---\n{self.output}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                pytest.fail(f"script exited ({self.proc.returncode}) before printing {pattern!r}\n"
                            f"--- output ---\n{self.output}")
            self.lines.append(line)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = WAIT_SECONDS) -> int:
        """Wait for the script to exit and for all of its output; return its exit code."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"script still running after {timeout:.0f} s\n--- output ---\n{self.output}")
        self._reader.join(timeout=5)
        self._drain()
        return code

    def kill(self) -> None:
        """Kill the script and whatever it forked (they share its process group), then reap it."""
        kill_group(self.proc)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)


def _script_env(django_settings: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "DJANGO_", "PYTHONUNBUFFERED"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    if django_settings:
        env["DJANGO_SETTINGS_MODULE"] = django_settings
    return env


@pytest.fixture
def run_script(tmp_path: Path) -> Iterator[Callable[..., Script]]:
    """Run ``source`` with ``args`` in a subprocess; Django settings only when ``django_settings`` names them."""
    scripts: list[Script] = []

    def run(source: str, *args: str, django_settings: str | None = None) -> Script:
        path = tmp_path / f"script_{len(scripts)}.py"
        path.write_text(source)
        script = Script(path, list(args), _script_env(django_settings), REPO_ROOT if django_settings else tmp_path)
        scripts.append(script)
        return script

    yield run
    for script in scripts:
        script.kill()


def assert_clean(output: str) -> None:
    """No traceback and no warning (an un-awaited coroutine, say) in a script's output."""
    assert "Traceback" not in output and "Warning" not in output, output


def hooks(output: str) -> list[tuple[str, int]]:
    return [(m.group(1), int(m.group(2))) for m in re.finditer(r"^HOOK (\w+) (\d+)", output, re.MULTILINE)]


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def page_title(url: str) -> str:
    with _NO_PROXY.open(url, timeout=10) as response:
        match = re.search(r"<title>(.*?)</title>", response.read().decode())
    assert match, f"no title in the page at {url}"
    return match.group(1)


@pytest.fixture
def built() -> Iterator[Callable[..., Server]]:
    """Build Servers in this process (never started: that binds the reactor); stop them after the test."""
    servers: list[Server] = []

    def build(applications: Any = modify_doc, **kwargs: Any) -> Server:
        kwargs.setdefault("address", "127.0.0.1")
        kwargs.setdefault("port", 0)
        server = Server(applications, **kwargs)
        servers.append(server)
        return server

    yield build
    for server in servers:
        server.stop()


def test_construction_binds_the_port_and_knows_it(built, free_port):
    server = built(prefix="/pre/")
    assert server.port > 0 and server.address == "127.0.0.1"
    assert server.prefix == "/pre"
    assert server.web_application.websocket_origins == {f"localhost:{server.port}"}
    assert not refused(server.port)  # bound and listening from construction, as bokeh does
    server.stop()
    assert refused(server.port)
    unlistened = built()
    unlistened.unlisten()
    assert refused(unlistened.port)
    with pytest.raises(RuntimeError, match="Server already stopped"):
        unlistened.start()
    port = free_port()
    assert built(port=port, allow_websocket_origin=["example.com", "a.org:8080"]).port == port
    assert built(port=0, allow_websocket_origin=["example.com"]).web_application.websocket_origins == {"example.com:80"}


def test_web_application_options_default_from_settings_and_kwargs_win(built, settings):
    settings.BOKEHSERVER = {**settings.BOKEHSERVER, "KEEP_ALIVE_MILLISECONDS": 1234, "SESSION_TOKEN_EXPIRATION": 60}
    web_app = built(session_token_expiration=30, websocket_max_message_size=4096).web_application
    assert web_app.keep_alive_milliseconds == 1234
    assert web_app.session_token_expiration == 30
    assert web_app.websocket_max_message_size_bytes == 4096
    assert web_app.app_paths == {"/", "/bokehserver-dashboard"}  # and the demo site's DASHBOARD_PATH


def test_apps_at_paths_functions_and_script_paths(built):
    server = built({"/a": modify_doc, "/b/": str(REPO_ROOT / "examples" / "sliders.py")})
    assert server.web_application.app_paths == {"/a", "/b", "/bokehserver-dashboard"}  # and DASHBOARD_PATH


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"port": -1}, ValueError, "port must be an int from 0 to 65535"),
        ({"port": "5006"}, ValueError, "port must be an int"),
        ({"port": 70000}, ValueError, "port must be an int"),
        ({"num_procs": -2}, ValueError, "num_procs must be an int >= 0"),
        ({"address": ""}, ValueError, "address must be"),
        ({"prefix": 3}, ValueError, "prefix must be a string"),
        ({"allow_websocket_origin": "localhost"}, ValueError, "must be a list"),
        ({"allow_websocket_origin": ["a:b:c"]}, ValueError, "Invalid host value"),
        ({"keep_alive_milliseconds": -5}, ValueError, "keep_alive_milliseconds must be >= 0"),
        ({"unused_session_lifetime_milliseconds": "15"}, ValueError, "must be a number"),
        ({"websocket_max_message_size": 0}, ValueError, "websocket_max_message_size_bytes must be > 0"),
        ({"websocket_max_message_size": 10, "websocket_max_message_size_bytes": 10}, TypeError, "not both"),
        ({"bogus": 1}, TypeError, "unexpected keyword argument 'bogus'"),
        ({"ssl_certfile": "cert.pem"}, TypeError, "not supported by bokehserver: terminate TLS"),
        ({"extra_websocket_origins": ["x"]}, TypeError, "allow_websocket_origin"),
        ({"io_loop": "loop"}, TypeError, "io_loop must be an asyncio event loop"),
        ({"applications": {"noslash": modify_doc}}, AppSpecError, "must be a string starting with '/'"),
        ({"applications": 42}, AppSpecError, "expected an Application, a modify_doc"),
        ({"applications": "/no/such/app.py"}, AppSpecError, "no such file or directory"),
        ({"applications": {}}, ValueError, "at least one application"),
    ],
)
def test_invalid_arguments_are_refused_at_construction(kwargs, error, message, free_port):
    port = free_port()
    options = {"address": "127.0.0.1", "port": port, **kwargs}
    applications = options.pop("applications", modify_doc)
    with pytest.raises(error, match=re.escape(message)):
        Server(applications, **options)
    Server(modify_doc, address="127.0.0.1", port=port).stop()  # the failed Server let go of the port


def test_num_procs_with_an_io_loop_is_refused():
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="num_procs > 1 cannot be combined with an explicit io_loop"):
            Server(modify_doc, io_loop=loop, num_procs=2, port=0)
    finally:
        loop.close()


def test_a_busy_port_is_a_clear_error(built):
    taken = built()
    with pytest.raises(OSError, match=rf"Cannot listen on 127\.0\.0\.1:{taken.port}"):
        built(port=taken.port)


def test_get_session_errors(built):
    server = built({"/app": modify_doc})
    with pytest.raises(ValueError, match="Application /nope does not exist on this server"):
        server.get_session("/nope", "some-id")
    with pytest.raises(ProtocolError, match="No such session missing-id"):
        server.get_session("/app", "missing-id")
    with pytest.raises(ValueError, match="does not exist"):
        server.get_sessions("/nope")
    assert server.get_sessions() == [] and server.get_sessions("/app") == []


def test_show_opens_the_app_url(built, monkeypatch):
    opened: list[tuple[str | None, str, int]] = []

    class Browser:
        def __init__(self, name: str | None) -> None:
            self.name = name

        def open(self, url: str, new: int = 0) -> bool:
            opened.append((self.name, url, new))
            return True

    monkeypatch.setattr("webbrowser.get", lambda name=None: Browser(name))
    server = built(prefix="p")
    server.show("/app")
    server.show("/", browser="firefox", new="window")
    server.show("/", browser="none")
    assert opened == [
        (None, f"http://127.0.0.1:{server.port}/p/app", 2),
        ("firefox", f"http://127.0.0.1:{server.port}/p/", 1),
    ]
    with pytest.raises(ValueError, match="app_path must start with a /"):
        server.show("app")
    with pytest.raises(ValueError, match="new must be one of"):
        server.show("/", new="popup")
    unbound = built(address=None)
    unbound.show("/", browser=None)
    assert opened[-1][1] == f"http://localhost:{unbound.port}/"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("django_settings", "unlisten_first"),
    [(None, False), ("project.settings", True)],
    ids=["no-django-project", "project-settings-unlisten-first"],
)
def test_start_in_a_running_loop_serves_bokeh_client_then_stops_cleanly(run_script, django_settings, unlisten_first):
    """In a running loop; with project settings daphne was imported first (INSTALLED_APPS), bound to its own loop."""
    options = {"record_interval_milliseconds": 0, "unlisten_first": unlisten_first}
    script = run_script(IN_LOOP_SCRIPT, json.dumps(options), django_settings=django_settings)
    result = json.loads(script.expect(r"^RESULT (.*)$")[0].group(1))
    assert script.wait() == 0, script.output
    assert result["loop_is_running_loop"]
    assert result["text"] == f"pid {result['pid']}"
    assert result["found"] and result["sessions"] == [result["session_id"]]
    assert result["tasks_left"] == []
    assert result["refused"], "the port still accepts connections after stop()"
    assert result.get("refused_after_unlisten", unlisten_first) == unlisten_first
    assert "a Server starts once" in result["restart"]
    assert "runs the loop itself" in result["run_in_loop"]
    assert [event for event, _ in hooks(script.output)] == ["loaded", "created", "destroyed", "unloaded"]
    assert_clean(script.output)


@pytest.mark.e2e
def test_plain_script_serves_until_sigterm_then_shuts_down_in_order(run_script):
    server = run_script(PLAIN_SCRIPT, "1")
    port, pid = (int(g) for g in server.expect(r"^SERVING (\d+) (\d+)$")[0].groups())
    server.expect(r"^HOOK loaded")
    client = run_script(CLIENT_SCRIPT, f"http://127.0.0.1:{port}/")
    session_id, text = client.expect(r"^PULLED (\S+) (.*)$")[0].groups()
    assert client.wait() == 0 and text == f"pid {pid}"
    assert page_title(f"http://127.0.0.1:{port}/") == f"pid {pid}"
    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output
    events = hooks(server.output)
    assert [event for event, _ in events] == ["loaded", "created", "created", "destroyed", "destroyed", "unloaded"]
    assert f"HOOK destroyed {pid} {session_id}" in server.output
    assert server.lines.index(f"HOOK unloaded {pid}") < server.lines.index(f"EXITED {pid}")
    assert refused(port)
    assert_clean(server.output)


@pytest.mark.e2e
def test_two_processes_answer_on_one_port(run_script):
    script = run_script(PLAIN_SCRIPT, "2")
    serving = script.expect(r"^SERVING (\d+) (\d+)$", count=2)
    ports = {int(m.group(1)) for m in serving}
    pids = {int(m.group(2)) for m in serving}
    assert len(ports) == 1 and len(pids) == 2 and script.proc.pid not in pids
    port = ports.pop()
    script.expect(r"^HOOK loaded", count=2)
    seen: set[int] = set()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(10):
            titles = pool.map(page_title, [f"http://127.0.0.1:{port}/"] * 4)
            seen.update(int(title.split()[1]) for title in titles)
            if seen == pids:
                break
    assert seen == pids
    script.signal(signal.SIGTERM)
    assert script.wait() == 0, script.output
    unloaded = {pid for event, pid in hooks(script.output) if event == "unloaded"}
    assert unloaded == pids
    assert sorted(int(m) for m in re.findall(r"^EXITED (\d+)$", script.output, re.MULTILINE)) == sorted(pids)
    assert refused(port)
    assert_clean(script.output)


DOC_READY_JS = """() => window.Bokeh !== undefined && Bokeh.documents.length === 1
    && Bokeh.documents[0].get_model_by_name("pid") != null"""


@pytest.mark.e2e
@pytest.mark.browser
def test_chromium_uses_an_app_of_a_script_server(run_script, chromium_page):
    server = run_script(PLAIN_SCRIPT, "1")
    port, pid = server.expect(r"^SERVING (\d+) (\d+)$")[0].groups()
    page = chromium_page.page
    page.goto(f"http://localhost:{port}/")
    page.wait_for_function(DOC_READY_JS)
    assert page.evaluate("""() => Bokeh.documents[0].get_model_by_name("pid").text""") == f"pid {pid}"
    page.evaluate("""() => { Bokeh.documents[0].get_model_by_name("input").value = "hello" }""")
    page.wait_for_function("""() => Bokeh.documents[0].get_model_by_name("pid").text === "echo hello" """)
    assert chromium_page.errors == []
    server.signal(signal.SIGINT)
    assert server.wait() == 0, server.output
    assert [event for event, _ in hooks(server.output)][-1] == "unloaded"
    assert_clean(server.output)
