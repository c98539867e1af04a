import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from feed_work import next_rows  # noqa: E402

state = {"tick": 0}


def on_server_loaded(server_context):
    async def publish():
        state["tick"] += 1
        rows = next_rows(state["tick"])
        await server_context.update_sessions(lambda doc: doc.select_one({"name": "source"}).stream(rows, rollover=200))

    server_context.add_periodic_callback(publish, 100)
