"""The OpenAI API's routes (``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``), in
the shapes its published reference gives: field names, the error object, and server-sent events that end with
``data: [DONE]``."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.engine import protocol as p
from app.history import ModelRecord
from app.outcomes import FinishReason
from app.server.api_errors import ApiError
from app.server.request_log import Served, requests_log
from app.server.served_engine import Ask, ServedEngine

log = logging.getLogger(__name__)

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
DEFAULT_MAX_TOKENS = 512
MAX_EMBED_INPUTS = 256


def routes(served: ServedEngine) -> list[Route]:
    async def models(_request: Request) -> Response:
        loaded = served.engine.loaded
        data = [{
            "id": record.name, "object": "model", "created": int(record.added_at.timestamp()), "owned_by": "hearth",
            "hearth": {"library_id": record.id, "file": Path(record.path).name,
                       "architecture": record.architecture, "parameters": record.parameter_count,
                       "quantization": record.quantization, "context_length": record.context_length,
                       "file_size": record.file_size,
                       "loaded": loaded is not None and Path(loaded.path) == Path(record.path).resolve()},
        } for record in served.models()]
        return JSONResponse({"object": "list", "data": data})

    async def chat_completions(request: Request) -> Response:
        return await _respond(served, request, chat_request(await json_body(request)), CHAT)

    async def completions(request: Request) -> Response:
        return await _respond(served, request, completion_request(await json_body(request)), TEXT)

    async def embeddings(request: Request) -> Response:
        started = time.perf_counter()
        model, texts, as_base64 = embedding_request(await json_body(request))
        record = served.find(model)
        served.check_room()
        plan = await served.plan_for(record)
        async with served.turn():
            await served.ensure_loaded(record, plan)
            embedded = await served.embed(texts)
        log_embedding(request, record.name, embedded.tokens, started)
        return JSONResponse({
            "object": "list", "model": record.name,
            "data": [{"object": "embedding", "index": i,
                      "embedding": _base64_floats(vector) if as_base64 else vector}
                     for i, vector in enumerate(embedded.vectors)],
            "usage": {"prompt_tokens": embedded.tokens, "total_tokens": embedded.tokens},
        })

    return [Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"])]


def embedding_request(body: dict[str, Any]) -> tuple[str, list[str], bool]:
    """The model, the texts, and whether the vectors go as base64 (the ``openai`` client asks for that by default:
    float32, little-endian)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "Name the model: “model” is one of the ids GET /v1/models lists.", param="model")
    given = body.get("input")
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ApiError(400, "“input” is a text or a list of texts (Hearth does not take token arrays).",
                       param="input")
    if len(texts) > MAX_EMBED_INPUTS:
        raise ApiError(400, f"At most {MAX_EMBED_INPUTS} texts per request.", param="input")
    if body.get("dimensions") is not None:
        raise ApiError(400, "Hearth returns the model's own dimensions: leave “dimensions” out.", param="dimensions")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise ApiError(400, "“encoding_format” is “float” or “base64”.", param="encoding_format")
    return model, texts, encoding == "base64"


def _base64_floats(vector: list[float]) -> str:
    import base64
    import struct

    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


@dataclass(frozen=True)
class Shape:
    """How one endpoint words an answer: its object names, and a piece of text as a choice."""

    prefix: str
    whole: str
    chunk: str
    choice: Callable[[str], dict[str, Any]]  # the whole answer's text
    delta: Callable[[str | None], dict[str, Any]]  # a streamed piece; None: the first chunk, where there is one
    first: bool  # a first chunk before any text (the chat's, with the role)


CHAT = Shape("chatcmpl", "chat.completion", "chat.completion.chunk",
             lambda text: {"message": {"role": "assistant", "content": text}},
             lambda text: {"delta": {"role": "assistant", "content": ""} if text is None else {"content": text}},
             first=True)
TEXT = Shape("cmpl", "text_completion", "text_completion", lambda text: {"text": text},
             lambda text: {"text": text or ""}, first=False)


async def _respond(served: ServedEngine, request: Request, asked: ChatRequest, shape: Shape) -> Response:
    """Finds and checks the model before anything is sent, so that a model that is missing or does not fit, and a
    full queue, are answered with their status; then answers whole or streamed."""
    started = time.perf_counter()
    record = served.find(asked.model)
    served.check_room()
    plan = await served.plan_for(record)
    if asked.stream:
        return StreamingResponse(_stream(served, record, plan, asked, shape, request, started),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    finished: p.Finished | None = None
    async with served.turn():
        await served.ensure_loaded(record, plan)
        async with aclosing(served.answer(asked.ask)) as events:
            async for event in events:
                if isinstance(event, p.Finished):
                    finished = event
    assert finished is not None
    log_request(request, record.name, finished, started)
    return JSONResponse({
        "id": f"{shape.prefix}-{uuid.uuid4().hex}", "object": shape.whole, "created": int(time.time()),
        "model": record.name, "system_fingerprint": None,
        "choices": [{"index": 0, **shape.choice(finished.text), "logprobs": None,
                     "finish_reason": finish_reason(finished.finish_reason)}],
        "usage": usage(finished),
    })


async def _stream(served: ServedEngine, record: ModelRecord, plan: Any, asked: ChatRequest, shape: Shape,
                  request: Request, started: float) -> AsyncIterator[str]:
    chunk_id, created = f"{shape.prefix}-{uuid.uuid4().hex}", int(time.time())

    def event(choices: list[dict[str, Any]], **more: Any) -> str:
        data = {"id": chunk_id, "object": shape.chunk, "created": created, "model": record.name,
                "system_fingerprint": None, "choices": choices, **more}
        return f"data: {json.dumps(data)}\n\n"

    def piece(text: str | None, reason: str | None = None) -> str:
        return event([{"index": 0, **shape.delta(text), "logprobs": None, "finish_reason": reason}])

    try:
        async with served.turn():
            await served.ensure_loaded(record, plan)
            if shape.first:
                yield piece(None)
            async with aclosing(served.answer(asked.ask)) as events:
                async for happened in events:
                    if isinstance(happened, p.Token):
                        yield piece(happened.text)
                        continue
                    yield piece("", finish_reason(happened.finish_reason))
                    if asked.include_usage:
                        yield event([], usage=usage(happened))
                    log_request(request, record.name, happened, started)
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
    max_tokens = DEFAULT_MAX_TOKENS if limit is None else number(limit, "max_tokens", int, 1, 1_000_000)
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if len(stops) > 4 or not all(isinstance(s, str) for s in stops):
        raise ApiError(400, "“stop” is a string or a list of up to 4 strings.", param="stop")
    json_object, json_schema = _response_format(body.get("response_format"))
    seed = body.get("seed")
    options = body.get("stream_options") or {}
    return ChatRequest(model, Ask(
        messages=messages, max_tokens=max_tokens,
        temperature=number(body.get("temperature", 1.0), "temperature", float, 0.0, 2.0),
        top_p=number(body.get("top_p", 1.0), "top_p", float, 0.0, 1.0),
        seed=None if seed is None else number(seed, "seed", int, -(2**63), 2**63 - 1) % 2**32,
        stop=stops, json_object=json_object, json_schema=json_schema,
    ), stream=bool(body.get("stream", False)), include_usage=bool(options.get("include_usage", False)))


def completion_request(body: dict[str, Any]) -> ChatRequest:
    """A (legacy) text completion: the model goes on from ``prompt`` as it is, with no chat format."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ApiError(400, "“prompt” must be a text (Hearth answers one prompt per request).", param="prompt")
    for unsupported in ("echo", "logprobs", "suffix", "best_of"):
        if body.get(unsupported) not in (None, False, 0, 1 if unsupported == "best_of" else None):
            raise ApiError(400, f"Hearth's server does not support “{unsupported}”.", param=unsupported)
    asked = chat_request({**body, "messages": [{"role": "user", "content": prompt}],
                          "max_tokens": body.get("max_tokens", 16)})  # the API's own default for completions
    return ChatRequest(asked.model, replace(asked.ask, messages=[], raw_prompt=prompt), asked.stream,
                       asked.include_usage)


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


def number(value: Any, name: str, kind: type, low: float, high: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not float(value).is_integer()):
        raise ApiError(400, f"“{name}” must be a number.", param=name)
    if not low <= value <= high:
        raise ApiError(400, f"“{name}” must be between {low:g} and {high:g}.", param=name)
    return kind(value)


async def json_body(request: Request) -> dict[str, Any]:
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


def log_embedding(request: Request, model: str, tokens: int, started: float) -> None:
    served = Served(at=time.strftime("%H:%M:%S"), client=request.client.host if request.client else "?",
                    endpoint=request.url.path, model=model, prompt_tokens=tokens, completion_tokens=0,
                    seconds=time.perf_counter() - started, status=200)
    requests_log.info("%s", served.line(), extra={"served": served})


def log_request(request: Request, model: str, finished: p.Finished, started: float, status: int = 200) -> None:
    m = finished.metrics
    served = Served(at=time.strftime("%H:%M:%S"), client=request.client.host if request.client else "?",
                    endpoint=request.url.path, model=model, prompt_tokens=m.prompt_tokens,
                    completion_tokens=m.completion_tokens, seconds=time.perf_counter() - started, status=status)
    requests_log.info("%s", served.line(), extra={"served": served})
