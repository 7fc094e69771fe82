"""The server put together: Starlette's routing under Hearth's guard, served by uvicorn.

Starlette and uvicorn rather than FastAPI: the API's shapes are OpenAI's, not ones generated from Python types, so
FastAPI's schema layer would only stand between a request and the errors its clients expect; Starlette is the part
of it that is needed (routing, streaming responses, CORS), and uvicorn is the server llama-cpp-python's own API
server runs on.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.errors import HearthError
from app.server import anthropic_api, hearth_api, openai_api
from app.server.api_errors import ApiError
from app.server.guard import Guard
from app.server.hearth_api import HearthFacts
from app.server.options import ServerOptions
from app.server.served_engine import ServedEngine

log = logging.getLogger(__name__)


class ServerRefused(HearthError):
    """The options ask for something unsafe (listening beyond this computer without a key)."""


def check_options(options: ServerOptions) -> None:
    if not options.loopback and not options.api_key:
        raise ServerRefused(f"Listening on {options.host} lets other computers use Hearth's models, so it needs an "
                            "API key: turn on “allow other computers” to make one, or listen on 127.0.0.1.")


def build_app(options: ServerOptions, served: ServedEngine, facts: HearthFacts | None = None) -> Any:
    """``facts``: this computer's hardware and forecasts, answered at ``/hearth/v1/`` for another Hearth."""
    check_options(options)

    async def api_error(_request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers())

    async def not_found(_request: Request, _error: Exception) -> Response:
        missing = ApiError(404, "No such endpoint. Hearth answers /v1/models, /v1/chat/completions, /v1/completions, "
                                "/v1/embeddings and /v1/messages.", code="unknown_url")
        return JSONResponse(missing.body(), status_code=404)

    middleware = [Middleware(CORSMiddleware, allow_origins=list(options.cors_origins), allow_methods=["GET", "POST"],
                             allow_headers=["authorization", "content-type", "x-api-key"])] \
        if options.cors_origins else []
    hearth = hearth_api.routes(served, facts) if facts is not None else []
    app = Starlette(routes=openai_api.routes(served) + anthropic_api.routes(served) + hearth, middleware=middleware,
                    exception_handlers={ApiError: api_error, 404: not_found, 405: not_found})
    return Guard(app, options)


def uvicorn_server(options: ServerOptions, app: Any) -> Any:
    """uvicorn's server for ``app``, not started: ``run()`` serves in the foreground until Ctrl+C, ``serve()`` in
    a loop of the caller's."""
    import uvicorn

    config = uvicorn.Config(app, host=options.host, port=options.port, log_level="warning", access_log=False,
                            lifespan="off", timeout_graceful_shutdown=5)
    return uvicorn.Server(config)
