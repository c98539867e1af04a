"""A bound on HTTP/1.1 pipelining: how many requests one connection may send ahead of the answers.

Browsers never pipeline. A client that writes thousands of requests back to back on one connection
has them answered one after another, each through the whole Django stack, for as long as it keeps
sending: a single socket that takes a steady share of the event loop. Past MAX_PIPELINED_REQUESTS
requests in a row that arrived behind another unanswered one, the connection gets 503 with the
reason and is closed; the rest of what it sent is dropped.

Import only where daphne's reactor is installed (``daphne_server``).
"""
from __future__ import annotations

import logging
from typing import Any

from daphne.http_protocol import WebRequest

from . import conf
from ._compat.twisted import has_pipelined_data

logger = logging.getLogger(__name__)

__all__ = ("BoundedWebRequest",)

REFUSAL = "too many pipelined requests on one connection (MAX_PIPELINED_REQUESTS)"


class BoundedWebRequest(WebRequest):
    """daphne's request, counting the requests its connection pipelined in a row; past the limit, 503 and close."""

    def process(self) -> None:
        limit = conf.get("MAX_PIPELINED_REQUESTS")
        if limit is not None and _pipelined_in_a_row(self.channel) > limit:
            self._refuse_and_close()
            return
        super().process()

    def _refuse_and_close(self) -> None:
        channel = self.channel
        logger.warning("Closing the HTTP connection of %s: %s", _peer(self), REFUSAL)
        channel.persistent = False  # Twisted closes the connection after this answer and drops what follows
        body = REFUSAL.encode()
        self.setResponseCode(503)
        self.responseHeaders.setRawHeaders(b"connection", [b"close"])
        self.responseHeaders.setRawHeaders(b"content-type", [b"text/plain; charset=utf-8"])
        self.responseHeaders.setRawHeaders(b"content-length", [str(len(body)).encode()])
        self.write(body)
        self.finish()


def _pipelined_in_a_row(channel: Any) -> int:
    """Count this request if more data waits behind it (it was pipelined), else start again at 0."""
    behind = has_pipelined_data(channel)
    count = (getattr(channel, "_bokehserver_pipelined", 0) + 1) if behind else 0
    channel._bokehserver_pipelined = count
    return count


def _peer(request: WebRequest) -> str:
    try:
        return str(request.getClientAddress().host)
    except Exception:
        return "a client"
