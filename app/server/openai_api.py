"""The OpenAI API's routes (``/v1/models``, ``/v1/chat/completions``), in the shapes its published reference gives:
field names, the error object, and server-sent events that end with ``data: [DONE]``."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.engine import protocol as p
from app.outcomes import FinishReason
from app.server.api_errors import ApiError
from app.server.served_engine import Ask, ServedEngine

log = logging.getLogger(__name__)
requests_log = logging.getLogger("hearth.server.requests")  # one line per request: ``hearth serve`` prints them

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
DEFAULT_MAX_TOKENS = 512


def routes(served: ServedEngine) -> list[Route]:
    async def models(_request: Request) -> Response:
        loaded = served.engine.loaded
        data = [{
            "id": record.name, "object": "model", "created": int(record.added_at.timestamp()), "owned_by": "hearth",
            "hearth": {"library_id": record.id, "file": record.path.rsplit("/", 1)[-1].rsplit("\\", 1)[-1],
                       "architecture": record.architecture, "parameters": record.parameter_count,
                       "quantization": record.quantization, "context_length": record.context_length,
                       "file_size": record.file_size,
                       "loaded": loaded is not None and loaded.path == record.path},
        } for record in served.models()]
        return JSONResponse({"object": "list", "data": data})

    async def chat_completions(request: Request) -> Response:
        started = time.perf_counter()
        body = await _json_body(request)
        asked = chat_request(body)
        record = served.find(asked.model)
        name = record.name
        if asked.stream:
            return StreamingResponse(_stream(served, record, asked, name, request, started),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        async with served.turn():
            await served.ensure_loaded(record)
            text, finished = "", None
            async with aclosing(served.answer(asked.ask)) as events:
                async for event in events:
                    if isinstance(event, p.Token):
                        text += event.text
                    else:
                        finished = event
        assert finished is not None
        _log_request(request, name, finished, started, 200)
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": name, "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": finished.text},
                         "logprobs": None, "finish_reason": finish_reason(finished.finish_reason)}],
            "usage": usage(finished),
        })

    return [Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"])]


async def _stream(served: ServedEngine, record: Any, asked: ChatRequest, name: str, request: Request,
                  started: float) -> AsyncIterator[str]:
    chunk_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict[str, Any], reason: str | None = None, **more: Any) -> str:
        data = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": name,
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}], **more}
        return f"data: {json.dumps(data)}\n\n"

    try:
        async with served.turn():
            await served.ensure_loaded(record)
            yield chunk({"role": "assistant", "content": ""})
            async with aclosing(served.answer(asked.ask)) as events:
                async for event in events:
                    if isinstance(event, p.Token):
                        yield chunk({"content": event.text})
                        continue
                    yield chunk({}, finish_reason(event.finish_reason))
                    if asked.include_usage:
                        data = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": name,
                                "system_fingerprint": None, "choices": [], "usage": usage(event)}
                        yield f"data: {json.dumps(data)}\n\n"
                    _log_request(request, name, event, started, 200)
    except ApiError as error:  # the status line is sent already: the error is the stream's last event
        log.info("streamed answer ended in an error: %s", error.message)
        yield f"data: {json.dumps(error.body())}\n\n"
    yield "data: [DONE]\n\n"


class ChatRequest:
    """A chat completion request, checked: what Hearth cannot do is refused with the field that asks for it."""

    def __init__(self, model: str, ask: Ask, stream: bool, include_usage: bool) -> None:
        self.model, self.ask, self.stream, self.include_usage = model, ask, stream, include_usage


def chat_request(body: dict[str, Any]) -> ChatRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "Name the model: “model” is one of the ids GET /v1/models lists.", param="model")
    messages = [_message(i, m) for i, m in enumerate(_required_list(body, "messages"))]
    if not messages:
        raise ApiError(400, "“messages” is empty.", param="messages")
    if body.get("n", 1) != 1:
        raise ApiError(400, "Hearth writes one answer per request: “n” must be 1.", param="n")
    if body.get("tools") or body.get("functions"):
        raise ApiError(400, "Hearth's server does not call tools.", param="tools")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = DEFAULT_MAX_TOKENS if limit is None else _number(limit, "max_tokens", int, 1, 1_000_000)
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if len(stops) > 4 or not all(isinstance(s, str) for s in stops):
        raise ApiError(400, "“stop” is a string or a list of up to 4 strings.", param="stop")
    json_object, json_schema = _response_format(body.get("response_format"))
    seed = body.get("seed")
    options = body.get("stream_options") or {}
    return ChatRequest(model, Ask(
        messages=messages, max_tokens=max_tokens,
        temperature=_number(body.get("temperature", 1.0), "temperature", float, 0.0, 2.0),
        top_p=_number(body.get("top_p", 1.0), "top_p", float, 0.0, 1.0),
        seed=None if seed is None else _number(seed, "seed", int, -(2**63), 2**63 - 1) % 2**32,
        stop=stops, json_object=json_object, json_schema=json_schema,
    ), stream=bool(body.get("stream", False)), include_usage=bool(options.get("include_usage", False)))


def _message(index: int, message: Any) -> dict[str, str]:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        roles = ", ".join(ROLES)
        raise ApiError(400, f"Message {index} needs a “role” ({roles}); Hearth does not run tools.",
                       param=f"messages[{index}].role")
    content = message.get("content")
    if isinstance(content, list):  # content parts: the text ones
        if any(not isinstance(part, dict) or part.get("type") != "text" for part in content):
            raise ApiError(400, "Hearth's models read text only: every content part must be of type “text”.",
                           param=f"messages[{index}].content")
        content = "".join(str(part.get("text", "")) for part in content)
    if not isinstance(content, str):
        raise ApiError(400, f"Message {index} has no text content.", param=f"messages[{index}].content")
    return {"role": ROLES[message["role"]], "content": content}


def _response_format(value: Any) -> tuple[bool, str | None]:
    if value is None:
        return False, None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return False, None
    if kind == "json_object":
        return True, None
    if kind == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise ApiError(400, "“response_format.json_schema.schema” must be a JSON schema object.",
                           param="response_format")
        return False, json.dumps(schema)
    raise ApiError(400, "“response_format.type” is “text”, “json_object” or “json_schema”.", param="response_format")


def _required_list(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if not isinstance(value, list):
        raise ApiError(400, f"“{name}” must be a list.", param=name)
    return value


def _number(value: Any, name: str, kind: type, low: float, high: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not float(value).is_integer()):
        raise ApiError(400, f"“{name}” must be a number.", param=name)
    if not low <= value <= high:
        raise ApiError(400, f"“{name}” must be between {low:g} and {high:g}.", param=name)
    return kind(value)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, f"The request body is not JSON: {error}.") from error
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def finish_reason(reason: FinishReason) -> str:
    return "length" if reason is FinishReason.LENGTH else "stop"


def usage(finished: p.Finished) -> dict[str, Any]:
    m = finished.metrics
    return {"prompt_tokens": m.prompt_tokens, "completion_tokens": m.completion_tokens,
            "total_tokens": m.prompt_tokens + m.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": m.cached_prompt_tokens}}


def _log_request(request: Request, model: str, finished: p.Finished, started: float, status: int) -> None:
    client = request.client.host if request.client else "?"
    m = finished.metrics
    requests_log.info("%s %s %s %s %d+%d tokens %.2f s %d", time.strftime("%H:%M:%S"), client, request.url.path,
                      model, m.prompt_tokens, m.completion_tokens, time.perf_counter() - started, status)
