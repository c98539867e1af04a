"""What bokehserver's daphne server changes in autobahn's handshake."""
from __future__ import annotations

import autobahn.websocket.protocol as autobahn_protocol
import txaio

from bokehserver import daphne_server


def test_autobahn_formats_its_config_only_when_its_debug_lines_are_logged():
    assert autobahn_protocol.pformat is daphne_server._pformat_if_logged
    config = [("autoPingInterval", 0, "WebSocketServerFactory")] * 40
    level = txaio.get_global_log_level()
    try:
        txaio.set_global_log_level("info")
        assert daphne_server._pformat_if_logged(config) == "(autobahn debug logging is off)"
        txaio.set_global_log_level("debug")
        assert "autoPingInterval" in daphne_server._pformat_if_logged(config)
    finally:
        txaio.set_global_log_level(level)
