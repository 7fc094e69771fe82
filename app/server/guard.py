"""The checks every request passes before it reaches a route: the Host header (against DNS rebinding: a web page
whose name points at 127.0.0.1 must not reach the API), the Origin (no web page at all unless configured), the API
key, and the size of the body. Written as plain ASGI so that the body limit holds for a chunked upload too, and so
that a refused request never reaches Starlette's routing."""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from app.server.api_errors import ApiError
from app.server.options import ServerOptions, is_loopback, own_names
from app.server.request_log import Served, requests_log

Scope = dict[str, Any]
Message = dict[str, Any]


class Guard:
    def __init__(self, app: Any, options: ServerOptions) -> None:
        self.app, self.options = app, options
        self.hosts = {name.casefold() for name in options.allowed_hosts}
        if not options.loopback:  # other computers reach it by this computer's own names and addresses
            self.hosts |= own_names()
        self.origins = set(options.cors_origins)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            self._check(headers)
            body = await self._body(headers, receive)
        except ApiError as error:
            await _send_error(send, error, anthropic=scope["path"].startswith("/v1/messages"))
            client = scope.get("client") or ("?", 0)
            served = Served(at=time.strftime("%H:%M:%S"), client=str(client[0]), endpoint=scope["path"], model="",
                            prompt_tokens=0, completion_tokens=0, seconds=0.0, status=error.status)
            requests_log.info("%s (refused: %s)", served.line(), error.code, extra={"served": served})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())  # after the body: the client's disconnect

        await self.app(scope, replay, send)

    def _check(self, headers: dict[str, str]) -> None:
        host = _host_name(headers.get("host", ""))
        if not (is_loopback(host) or host.casefold() in self.hosts):
            raise ApiError(403, f"Requests for the host “{host}” are refused: this server answers requests sent to "
                                "this computer's own address.", "permission_error", "host_not_allowed")
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            raise ApiError(403, "Requests from web pages are refused unless their origin is allowed in the "
                                "server's settings.", "permission_error", "origin_not_allowed")
        key = self.options.api_key
        if key is not None:
            given = headers.get("x-api-key") or _bearer(headers.get("authorization", ""))
            if not given or not hmac.compare_digest(given.encode(), key.encode()):
                raise ApiError(401, "Incorrect API key provided. Use the key that Hearth showed when it allowed "
                                    "other computers.", "authentication_error", "invalid_api_key")

    async def _body(self, headers: dict[str, str], receive: Any) -> bytes:
        limit = self.options.max_body_bytes
        too_large = ApiError(413, f"The request is larger than this server accepts ({limit // 2**20} MiB).",
                             "invalid_request_error", "request_too_large")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _host_name(host: str) -> str:
    if host.startswith("["):  # [::1]:8089
        return host[1: host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _send_error(send: Any, error: ApiError, *, anthropic: bool) -> None:
    body = json.dumps(error.anthropic_body() if anthropic else error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers().items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
