"""Which channel layer carries messages between server processes."""
from __future__ import annotations

from typing import Any

__all__ = ("LayerNotShared", "forget_inherited_layers", "require_shared_layer", "shared_layer")


class LayerNotShared(Exception):
    """More than one process was asked for, and the channel layer cannot reach the others."""


def shared_layer() -> Any | None:
    """The default channel layer if other processes share it (Redis), else None.

    Channels' in-memory layer lives inside one process: a message sent on it never reaches
    another, so it cannot carry anything between server processes.
    """
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    layer = get_channel_layer()
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return None
    return layer


def _configured_shared() -> bool:
    """Whether the default layer's configured backend reaches other processes (without building it)."""
    from channels.layers import InMemoryChannelLayer
    from django.conf import settings
    from django.utils.module_loading import import_string

    config = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get("default")
    if not config or "BACKEND" not in config:
        return False
    try:
        backend = import_string(config["BACKEND"])
    except ImportError:
        return True  # building it will say what is missing
    return not (isinstance(backend, type) and issubclass(backend, InMemoryChannelLayer))


def forget_inherited_layers() -> None:
    """Drop channel layers built before a fork: a forked process builds its own.

    A layer's identity (channels-redis's client prefix, which names every process-specific
    channel) and its Redis connections would otherwise be shared with the parent's other
    children, which would then take each other's messages.
    """
    from channels.layers import channel_layers

    channel_layers.backends.clear()


def require_shared_layer(processes: int) -> None:
    """Refuse ``processes`` > 1 without a shared channel layer, saying what to configure.

    Only the settings are read: a layer built here would be inherited by every forked worker.
    """
    if processes > 1 and not _configured_shared():
        raise LayerNotShared(
            f"{processes} server processes need a channel layer they share, so that a websocket reaching "
            "one process finds a session another built: set CHANNEL_LAYERS to channels-redis "
            '(BACKEND "channels_redis.core.RedisChannelLayer", CONFIG {"hosts": [{"address": '
            '"redis://127.0.0.1:6379", "socket_timeout": 30}]}); the in-memory layer reaches one process only'
        )
