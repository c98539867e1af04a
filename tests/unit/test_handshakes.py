"""The websocket handshake rate limit per client address."""
from __future__ import annotations

from bokehserver.consumers import CloseCode
from bokehserver.handshakes import HandshakeLimiter


def test_a_burst_of_rate_is_allowed_then_one_per_interval():
    limiter = HandshakeLimiter(rate=3)
    assert [limiter.allow("10.0.0.1", now=100.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("10.0.0.2", now=100.0)  # addresses have buckets of their own
    assert not limiter.allow("10.0.0.1", now=100.1)
    assert limiter.allow("10.0.0.1", now=100.0 + 1 / 3 + 0.01)


def test_idle_addresses_are_forgotten_when_too_many_are_tracked(monkeypatch):
    monkeypatch.setattr("bokehserver.handshakes._MAX_TRACKED", 10)
    limiter = HandshakeLimiter(rate=5)
    for index in range(11):
        limiter.allow(f"10.0.0.{index}", now=0.0)
    limiter.allow("10.0.1.1", now=60.0)
    assert len(limiter._buckets) <= 2


async def test_handshakes_past_the_rate_are_closed_4029_with_a_reason(web_app, ws, bk, settings, bokeh_warnings):
    settings.BOKEHSERVER = {"MAX_HANDSHAKES_PER_SECOND": 2}
    web_app({"/app": bk.slider_doc})
    outcomes = []
    for _ in range(3):
        comm = ws("/app")
        comm.scope["client"] = ("192.0.2.7", 40000)  # the communicator's scope names no client
        assert await comm.connect(timeout=bk.TIMEOUT) == (True, "bokeh")
        first = await comm.receive_output(bk.TIMEOUT)
        outcomes.append((first.get("code"), first.get("reason")) if first["type"] == "websocket.close" else "ACK")
    assert outcomes[:2] == ["ACK", "ACK"]
    code, reason = outcomes[2]
    assert code == CloseCode.LIMIT_REACHED == 4029
    assert "MAX_HANDSHAKES_PER_SECOND" in reason
    assert any("handshakes a second" in r.getMessage() for r in bokeh_warnings())
