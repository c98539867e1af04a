"""Computes the feed once per tick and pushes it into every live session with update_sessions."""
import logging
import random

logger = logging.getLogger("examples.shared_feed")

ROLLOVER = 300
state = {"t": 0, "price": 100.0}


def on_server_loaded(server_context):
    async def publish():
        state["t"] += 1
        state["price"] += random.gauss(0, 1)
        rows = {"t": [state["t"]], "price": [state["price"]]}

        def apply(doc):
            doc.select_one({"name": "source"}).stream(rows, rollover=ROLLOVER)

        await server_context.update_sessions(apply)

    server_context.add_periodic_callback(publish, 200)
    logger.info("shared feed publishing every 200 ms")


def on_server_unloaded(server_context):
    logger.info("shared feed stopped")
