"""Who may open which app, and whose a session is.

Each app has a rule: public, a logged-in user, a Django permission, or a callable on the request.
A session belongs to the user whose request made it: the page's token carries that user's id
(signed, so it cannot be forged), and a page or websocket of anyone else is refused.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

logger = logging.getLogger(__name__)

__all__ = ("AccessRules", "Rule", "USER_KEY", "login_key_of", "owner_in", "owner_of", "signing", "websocket_user")

# The token payload key that names the session's owner (a user's primary key, as a string).
USER_KEY = "bokehserver_user"


@dataclass(frozen=True)
class Rule:
    """One app's access rule: ``kind`` is "public", "login", "perm", "staff" (active staff with the
    permissions: the admin's own apps) or "callable"."""

    kind: str
    permissions: tuple[str, ...] = ()
    check: Callable[[Any], Any] | None = None

    @property
    def needs_user(self) -> bool:
        return self.kind != "public"

    async def allows(self, user: Any, request: Any) -> bool:
        """Whether ``user`` (making ``request``) may open the app."""
        if self.kind == "public":
            return True
        if user is None or not user.is_authenticated:
            return False
        if self.kind == "staff":
            return bool(user.is_active and user.is_staff) and await user.ahas_perms(self.permissions)
        if self.kind == "perm":
            return await user.ahas_perms(self.permissions)
        if self.kind == "callable":
            assert self.check is not None
            if inspect.iscoroutinefunction(self.check):
                return bool(await self.check(request))
            return bool(await sync_to_async(self.check)(request))
        return True


PUBLIC = Rule("public")
LOGIN = Rule("login")


def parse_rule(value: Any) -> Rule:
    """A rule from its setting: "public", "login", "perm:app.codename[,app.other]", a callable or "module:callable"."""
    if isinstance(value, Rule):
        return value
    if callable(value):
        return Rule("callable", check=value)
    if not isinstance(value, str):
        raise ValueError(f"an access rule is a string or a callable, not {value!r}")
    if value in ("public", "login"):
        return PUBLIC if value == "public" else LOGIN
    if value.startswith("perm:"):
        permissions = tuple(p.strip() for p in value[5:].split(",") if p.strip())
        if not permissions or not all("." in p for p in permissions):
            raise ValueError(f"{value!r}: name permissions as 'perm:app_label.codename'")
        return Rule("perm", permissions=permissions)
    if ":" in value:
        module, _, name = value.partition(":")
        return Rule("callable", check=getattr(importlib.import_module(module), name))
    raise ValueError(f"unknown access rule {value!r}: use 'public', 'login', 'perm:app.codename' or a callable")


class AccessRules:
    """The rule of every served app, and of the index (the strictest rule of any app when unset)."""

    def __init__(self, app_paths: Iterable[str], access: Mapping[str, Any] | None = None,
                 login_required: bool | Iterable[str] = False) -> None:
        paths = set(app_paths)
        if isinstance(login_required, bool):
            default = LOGIN if login_required else PUBLIC
            login_paths: set[str] = set()
        else:
            default = PUBLIC
            login_paths = {p.rstrip("/") or "/" for p in login_required}
            unknown = login_paths - paths
            if unknown:
                raise ValueError(f"login_required names apps that are not served: {sorted(unknown)}")
        rules = {path: (LOGIN if path in login_paths else default) for path in paths}
        for path, value in (access or {}).items():
            path = path.rstrip("/") or "/"
            if path not in paths:
                raise ValueError(f"ACCESS names an app that is not served: {path!r}")
            rules[path] = parse_rule(value)
        self._rules = rules
        # the admin's own apps (staff rules) neither close the index nor sign every app's sessions
        self._site_rules = [rule for rule in rules.values() if rule.kind != "staff"]
        self._index = default if default.needs_user or not any(r.needs_user for r in self._site_rules) else LOGIN

    def rule_for(self, app_path: str | None) -> Rule:
        """The rule of ``app_path``; None means the index of apps."""
        if app_path is None:
            return self._index
        return self._rules.get(app_path or "/", PUBLIC)

    @property
    def restricted(self) -> bool:
        """Whether any app needs a user: then sessions are signed unless configured otherwise."""
        return any(rule.needs_user for rule in self._site_rules)


def owner_of(user: Any) -> str | None:
    """The owner id a session made for ``user`` carries (None for anonymous users)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


def owner_in(payload: Mapping[str, Any]) -> str | None:
    owner = payload.get(USER_KEY)
    return None if owner is None else str(owner)


def login_key_of(cookies: Mapping[str, str]) -> str | None:
    """The Django session key of a request's cookies: the login a Bokeh session is tied to."""
    from django.conf import settings

    return cookies.get(settings.SESSION_COOKIE_NAME) or None


def login_digest(login_key: str) -> str:
    """What logs and messages show of a Django session key (never the key itself)."""
    return hashlib.sha256(login_key.encode()).hexdigest()[:12]


async def websocket_user(scope: Mapping[str, Any], cookies: Mapping[str, str]) -> Any:
    """The Django user of a websocket: the scope's (a site's AuthMiddlewareStack) or the session cookie's."""
    user = scope.get("user")
    if user is not None:
        return user
    return await sync_to_async(_user_for_login_key)(login_key_of(cookies))


def _user_for_login_key(login_key: str | None) -> Any:
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import get_user
    from django.contrib.auth.models import AnonymousUser
    from django.db import close_old_connections

    if not login_key:
        return AnonymousUser()
    close_old_connections()
    try:
        store = import_module(settings.SESSION_ENGINE).SessionStore(login_key)

        class _Request:
            session = store

        return get_user(_Request())  # type: ignore[arg-type]
    finally:
        close_old_connections()


def signing(secret_key: str | bytes | None, *, restricted: bool) -> tuple[bool, str | bytes | None]:
    """Whether to sign session ids and tokens when nobody said, and with what.

    Unsigned, as bokeh serve, while every app is public; once an app needs a user, tokens carry
    that user's id and are signed: with the configured key, else the site's SECRET_KEY.
    """
    if not restricted:
        return False, secret_key
    from django.conf import settings

    return True, secret_key or settings.SECRET_KEY
