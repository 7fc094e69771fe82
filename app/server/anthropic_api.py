"""Anthropic's Messages API (``POST /v1/messages``), which coding tools can now be pointed at: text content blocks, a
system prompt, stop sequences, and its streaming events (``message_start`` … ``message_stop``), errors in its own
shape."""

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
from app.history import ModelRecord
from app.outcomes import FinishReason
from app.server.api_errors import ApiError
from app.server.openai_api import json_body, log_request, number
from app.server.served_engine import Ask, ServedEngine

log = logging.getLogger(__name__)


def routes(served: ServedEngine) -> list[Route]:
    async def messages(request: Request) -> Response:
        try:
            return await _respond(served, request)
        except ApiError as error:
            return JSONResponse(error.anthropic_body(), status_code=error.status, headers=error.headers())

    return [Route("/v1/messages", messages, methods=["POST"])]


async def _respond(served: ServedEngine, request: Request) -> Response:
    started = time.perf_counter()
    body = await json_body(request)
    model, ask = messages_request(body)
    record = served.find(model)
    served.check_room()
    plan = await served.plan_for(record)
    if body.get("stream"):
        return StreamingResponse(_stream(served, record, plan, ask, request, started),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    finished: p.Finished | None = None
    async with served.turn():
        await served.ensure_loaded(record, plan)
        async with aclosing(served.answer(ask)) as events:
            async for event in events:
                if isinstance(event, p.Finished):
                    finished = event
    assert finished is not None
    log_request(request, record.name, finished, started)
    return JSONResponse({**_message(record, finished.text, finished),
                         "usage": {"input_tokens": finished.metrics.prompt_tokens,
                                   "output_tokens": finished.metrics.completion_tokens}})


def _message(record: ModelRecord, text: str, finished: p.Finished | None, message_id: str | None = None) -> dict[
        str, Any]:
    return {"id": message_id or f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant",
            "model": record.name, "content": [{"type": "text", "text": text}] if finished is not None else [],
            "stop_reason": stop_reason(finished) if finished is not None else None,
            "stop_sequence": finished.stop_sequence if finished is not None else None}


async def _stream(served: ServedEngine, record: ModelRecord, plan: Any, ask: Ask, request: Request,
                  started: float) -> AsyncIterator[str]:
    def event(kind: str, **data: Any) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    message_id = f"msg_{uuid.uuid4().hex}"
    try:
        async with served.turn():
            await served.ensure_loaded(record, plan)
            async with aclosing(served.answer(ask)) as events:
                opened = False
                async for happened in events:
                    if not opened:
                        opened = True
                        yield event("message_start", message={**_message(record, "", None, message_id),
                                                              "usage": {"input_tokens": 0, "output_tokens": 0}})
                        yield event("content_block_start", index=0, content_block={"type": "text", "text": ""})
                    if isinstance(happened, p.Token):
                        yield event("content_block_delta", index=0, delta={"type": "text_delta", "text": happened.text})
                        continue
                    yield event("content_block_stop", index=0)
                    yield event("message_delta",
                                delta={"stop_reason": stop_reason(happened), "stop_sequence": happened.stop_sequence},
                                usage={"input_tokens": happened.metrics.prompt_tokens,
                                       "output_tokens": happened.metrics.completion_tokens})
                    yield event("message_stop")
                    log_request(request, record.name, happened, started)
    except ApiError as error:  # the status line is sent already: the error is the stream's last event
        log.info("streamed message ended in an error: %s", error.message)
        yield f"event: error\ndata: {json.dumps(error.anthropic_body())}\n\n"


def messages_request(body: dict[str, Any]) -> tuple[str, Ask]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model: name one of the models GET /v1/models lists.", param="model")
    if "max_tokens" not in body:
        raise ApiError(400, "max_tokens: Field required", param="max_tokens")
    if body.get("tools"):
        raise ApiError(400, "tools: Hearth's server does not call tools.", param="tools")
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        raise ApiError(400, "messages: at least one message is required.", param="messages")
    messages = [{"role": "system", "content": _text(body["system"], "system")}] if body.get("system") else []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
            raise ApiError(400, f"messages.{index}.role: “user” or “assistant”.", param=f"messages.{index}.role")
        messages.append({"role": turn["role"], "content": _text(turn.get("content"), f"messages.{index}.content")})
    stops = body.get("stop_sequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise ApiError(400, "stop_sequences: a list of texts.", param="stop_sequences")
    return model, Ask(messages=messages, max_tokens=number(body["max_tokens"], "max_tokens", int, 1, 1_000_000),
                      temperature=number(body.get("temperature", 1.0), "temperature", float, 0.0, 1.0),
                      top_p=number(body.get("top_p", 1.0), "top_p", float, 0.0, 1.0), stop=tuple(stops))


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in content):
        return "".join(str(block.get("text", "")) for block in content)
    raise ApiError(400, f"{where}: Hearth's models read text only (text content blocks).", param=where)


def stop_reason(finished: p.Finished) -> str:
    if finished.stop_sequence is not None:
        return "stop_sequence"
    return "max_tokens" if finished.finish_reason is FinishReason.LENGTH else "end_turn"
