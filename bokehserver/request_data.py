"""What app code sees as ``session_context.request``, and the request data a token carries."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from django.http import HttpRequest

__all__ = ("RequestProxy", "token_payload")


def _title_case(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


# What a session keeps of its page request besides headers, cookies and arguments: the whole
# HttpRequest (META, the ASGI scope, the body) would stay alive as long as the session.
KEPT_REQUEST_ATTRIBUTES = ("user", "session", "scheme", "path_info", "content_type", "LANGUAGE_CODE")


def _kept(request: HttpRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in KEPT_REQUEST_ATTRIBUTES if hasattr(request, name)}


def _parse_cookie_header(value: str) -> dict[str, str]:
    from django.http.cookie import parse_cookie

    return parse_cookie(value)


class RequestProxy:
    """The request a session was created from, shaped like bokeh serve's.

    ``arguments`` is ``dict[str, list[bytes]]`` without ``bokeh-session-id``; header names are
    title-cased as Tornado's are; ``user``, ``session`` and a few more attributes of the Django
    request (``KEPT_REQUEST_ATTRIBUTES``), or the keys of the ASGI scope, are looked up too.
    """

    def __init__(
        self,
        *,
        arguments: dict[str, list[bytes]],
        cookies: dict[str, str],
        headers: dict[str, str],
        path: str,
        uri: str,
        host: str,
        protocol: str,
        remote_ip: str | None,
        method: str = "GET",
        underlying: Any = None,
        url_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.all_arguments = dict(arguments)
        self.arguments = {k: v for k, v in arguments.items() if k != "bokeh-session-id"}
        self.cookies = cookies
        self.headers = headers
        self.path = path
        self.uri = uri
        self.host = host
        self.protocol = protocol
        self.remote_ip = remote_ip
        self.method = method
        # values a site's URL pattern captured around the include, e.g. pk of "reports/<int:pk>/"
        self.url_kwargs = dict(url_kwargs or {})
        self._underlying = underlying

    def __getattr__(self, name: str) -> Any:
        underlying = self.__dict__.get("_underlying")
        if underlying is None or name.startswith("_"):
            raise AttributeError(name)
        if isinstance(underlying, dict):
            try:
                return underlying[name]
            except KeyError:
                raise AttributeError(name) from None
        return getattr(underlying, name)

    @classmethod
    def from_django(cls, request: HttpRequest) -> RequestProxy:
        return cls(
            arguments={k: [v.encode() for v in request.GET.getlist(k)] for k in request.GET},
            cookies=dict(request.COOKIES),
            headers={_title_case(k): v for k, v in request.headers.items()},
            path=request.path,
            uri=request.get_full_path(),
            host=request.get_host(),
            protocol=request.scheme,
            remote_ip=request.META.get("REMOTE_ADDR"),
            method=request.method or "GET",
            underlying=_kept(request),
            url_kwargs=_site_kwargs(getattr(getattr(request, "resolver_match", None), "kwargs", None)),
        )

    @classmethod
    def from_scope(cls, scope: dict[str, Any]) -> RequestProxy:
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            name = _title_case(raw_name.decode("latin-1"))
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        query = scope.get("query_string", b"").decode("latin-1")
        arguments = {k: [v.encode() for v in vs] for k, vs in parse_qs(query, keep_blank_values=True).items()}
        client = scope.get("client") or (None, None)
        path = scope.get("path", "")
        return cls(
            arguments=arguments,
            cookies=_parse_cookie_header(headers.get("Cookie", "")),
            headers=headers,
            path=path,
            uri=path + ("?" + query if query else ""),
            host=headers.get("Host", ""),
            protocol="https" if scope.get("scheme") in ("https", "wss") else "http",
            remote_ip=client[0],
            method="GET",
            underlying=scope,
            url_kwargs=_site_kwargs((scope.get("url_route") or {}).get("kwargs")),
        )

    def with_payload(self, payload: dict[str, Any]) -> RequestProxy:
        """Return a copy whose arguments, cookies and headers come from a token payload."""
        headers = payload.get("headers")
        cookies = payload.get("cookies")
        if cookies is not None and headers is not None and "Cookie" not in headers:
            headers = {**headers, "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        return RequestProxy(
            arguments=payload.get("arguments", self.arguments),
            cookies=cookies if cookies is not None else self.cookies,
            headers=headers if headers is not None else self.headers,
            path=self.path,
            uri=self.uri,
            host=self.host,
            protocol=self.protocol,
            remote_ip=self.remote_ip,
            method=self.method,
            underlying=self._underlying,
            url_kwargs=self.url_kwargs,
        )


def _site_kwargs(kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """A URL match's kwargs without bokehserver's own (``app_path``, ``file_path``, ``name``)."""
    return {k: v for k, v in (kwargs or {}).items() if k not in ("app_path", "file_path", "name")}


def _filtered(items: dict[str, str], include: Iterable[str] | None, exclude: Iterable[str] | None) -> dict[str, str]:
    if include is not None:
        wanted = set(include)
        return {k: v for k, v in items.items() if k in wanted}
    if exclude is not None:
        unwanted = set(exclude)
        return {k: v for k, v in items.items() if k not in unwanted}
    return dict(items)


def token_payload(
    request: RequestProxy,
    application: Any,
    *,
    include_headers: Iterable[str] | None = None,
    exclude_headers: Iterable[str] | None = None,
    include_cookies: Iterable[str] | None = None,
    exclude_cookies: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Build the request data a page's token carries to the websocket, as bokeh serve does."""
    headers = _filtered(request.headers, include_headers, exclude_headers)
    cookies = _filtered(request.cookies, include_cookies, exclude_cookies)
    if cookies and "Cookie" in headers and "Cookie" not in set(include_headers or ()):
        del headers["Cookie"]
    payload: dict[str, Any] = {
        "headers": headers,
        "cookies": cookies,
        "arguments": dict(request.all_arguments),
    }
    payload.update(application.process_request(request))
    return payload
