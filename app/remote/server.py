"""One OpenAI-compatible server the person added, as Hearth talks to it: its models, how long a context each takes,
its tokenizer where it offers one, and answers streamed with what they cost.

Written over httpx2 (already in the bundle, through huggingface_hub) rather than the ``openai`` client, which
does the same requests and streaming but would add 30 MB of source to an installer kept under 350 MB; the part of
the API used here is four requests and one stream of ``data:`` lines. Beside the API it asks what servers add:
the context length (``/props`` on llama-server, fields of ``/v1/models`` on vLLM and Hearth) and tokenizing
(``/tokenize`` on llama-server and vLLM, ``/extras/tokenize`` on llama-cpp-python's server). Every request goes
through ``network.recording_client``: it is in the Privacy log, and Work offline blocks it. Whatever goes wrong
ends in a ``RemoteError`` with a sentence, and an answer cut off keeps what was written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from app.errors import HearthError
from app.outcomes import FinishReason

TIMEOUT_S = 30.0  # for one step of a request: connecting, or the next piece of a streamed answer


class RemoteError(HearthError):
    """A remote server could not do what was asked; the message says what happened, in plain words."""


@dataclass(frozen=True)
class RemoteModel:
    id: str
    context_length: int | None = None  # as the server says; None where it does not
    hearth: bool = False  # the server is another Hearth, which also forecasts its models (``forecast``)


@dataclass(frozen=True)
class RemoteAnswer:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float | None
    tokens_per_s: float | None
    error: str = ""  # the answer was cut off (the connection dropped, the server failed): why; ``text`` is kept


class RemoteServer:
    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        from app import network

        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.host = urlsplit(self.base_url).hostname or self.base_url
        self._http = network.recording_client(f"Using a model on {self.host}", TIMEOUT_S)
        self._api_key = api_key
        self._tokenize_path: str | None = None  # which tokenize endpoint answered, once one has

    def close(self) -> None:
        self._http.close()

    # --- what it has ---

    def models(self) -> list[RemoteModel]:
        listed = self._api("GET", "/models", None)
        data = listed.get("data") if isinstance(listed, dict) else None
        if not isinstance(data, list):
            raise RemoteError(f"{self.host} does not answer the OpenAI API at {self.base_url}.")
        return [RemoteModel(str(entry["id"]), _context_of(entry), isinstance(entry.get("hearth"), dict))
                for entry in data if isinstance(entry, dict) and "id" in entry]

    def forecast(self, model: str) -> dict[str, Any] | None:
        """Another Hearth's forecast for one of its models (``app.server.hearth_api``); None from other servers."""
        answer = self._get_json("/hearth/v1/forecast?" + urlencode({"model": model}))
        return answer if isinstance(answer, dict) and "verdict_words" in answer else None

    def hardware(self) -> dict[str, Any] | None:
        """Another Hearth's description of its computer; None from other servers."""
        answer = self._get_json("/hearth/v1/hardware")
        return answer if isinstance(answer, dict) and "sentences" in answer else None

    def context_length(self, model: str) -> int | None:
        """llama-server's ``/props`` (the context it runs with, where ``/v1/models`` says the trained one), else
        the model's entry in ``/v1/models``; None where neither says."""
        props = self._get_json("/props")
        settings = props.get("default_generation_settings") if isinstance(props, dict) else None
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
        if isinstance(n_ctx, int) and n_ctx > 0:
            return n_ctx
        for listed in self.models():
            if listed.id == model and listed.context_length:
                return listed.context_length
        return None

    def tokenize(self, model: str, text: str) -> list[int] | None:
        """The server's own tokens for ``text``; None where it offers no tokenizer (the caller then estimates)."""
        paths = [self._tokenize_path] if self._tokenize_path else ["/tokenize", "/extras/tokenize"]
        for path in paths:
            body = {"content": text, "prompt": text, "model": model, "add_special": False} if path == "/tokenize" \
                else {"input": text}
            answer = self._post_json(path, body)
            tokens = answer.get("tokens") if isinstance(answer, dict) else None
            if isinstance(tokens, list) and all(isinstance(t, int) for t in tokens):
                self._tokenize_path = path
                return tokens
        return None

    def detokenize(self, model: str, tokens: list[int]) -> str | None:
        """The text of ``tokens`` from the server's own tokenizer, at the endpoint beside the one that tokenized;
        None where it has none."""
        if self._tokenize_path is None:
            return None
        path, body = ("/detokenize", {"tokens": tokens, "model": model}) if self._tokenize_path == "/tokenize" \
            else ("/extras/detokenize", {"tokens": tokens})
        answer = self._post_json(path, body)
        if isinstance(answer, dict):
            for field in ("content", "prompt", "text"):  # llama-server, vLLM, llama-cpp-python
                if isinstance(answer.get(field), str):
                    return str(answer[field])
        return None

    # --- answers ---

    def chat(self, model: str, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.7,
             top_p: float = 0.95, seed: int | None = None, stop: list[str] | None = None,
             grammar: str | None = None, on_text: Callable[[str], None] | None = None,
             cancelled: Callable[[], bool] = lambda: False) -> RemoteAnswer:
        """Streams one answer, timed here (the time to the first text, and tokens per second from the server's
        token counts, or its tokenizer's count of the answer where it sends none; 0 where it has neither).
        ``cancelled`` is asked after every piece: a stop ends the stream and keeps the text. ``grammar`` (GBNF)
        is a field llama.cpp's servers read and others ignore: the caller checks the answer either way."""
        body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens,
                                "temperature": temperature, "top_p": top_p, "stream": True,
                                "stream_options": {"include_usage": True}}
        if seed is not None:
            body["seed"] = seed
        if stop:
            body["stop"] = stop
        if grammar:
            body["grammar"] = grammar
        started = time.perf_counter()
        parts: list[str] = []
        first: float | None = None
        reason, error = FinishReason.LENGTH, ""
        usage: dict[str, Any] = {}
        try:
            with self._http.stream("POST", self.base_url + "/chat/completions", json=body,
                                   headers=self._headers()) as response:
                if response.status_code >= 400:
                    response.read()
                    raise RemoteError(self._status_sentence(response.status_code, _json_of(response), model))
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if isinstance(chunk.get("error"), dict):
                        raise RemoteError(f"{self.host} failed while answering: {chunk['error'].get('message')}")
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            first = first or time.perf_counter()
                            parts.append(text)
                            if on_text is not None:
                                on_text(text)
                        if choice.get("finish_reason"):
                            reason = FinishReason.LENGTH if choice["finish_reason"] == "length" else FinishReason.STOP
                    if cancelled():
                        reason = FinishReason.CANCELLED
                        break
        except RemoteError as failure:
            if not parts:
                raise
            error, reason = str(failure), FinishReason.CANCELLED
        except Exception as failure:  # the connection, or what came over it (httpx2's errors, broken JSON)
            if not parts:
                raise RemoteError(self._unreachable(failure)) from failure
            # cut off: what was written is kept, and marked
            error, reason = f"The connection to {self.host} was lost in the middle of the answer.", \
                FinishReason.CANCELLED
        ended = time.perf_counter()
        written = int(usage.get("completion_tokens") or 0)
        if not usage and parts and not error:  # a server that sends no usage (llama-cpp-python's): its tokenizer
            counted = self.tokenize(model, "".join(parts))
            written = len(counted) if counted is not None else 0
        return RemoteAnswer(
            text="".join(parts), finish_reason=reason, prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=written, ttft_s=first - started if first is not None else None,
            tokens_per_s=(written - 1) / (ended - first) if first is not None and written > 1 and ended > first
            else None, error=error)

    # --- the requests ---

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _api(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """A request to the API itself: an error status is a ``RemoteError``."""
        try:
            response = self._http.request(method, self.base_url + path, json=body, headers=self._headers())
        except Exception as error:
            raise RemoteError(self._unreachable(error)) from error
        if response.status_code >= 400:
            raise RemoteError(self._status_sentence(response.status_code, _json_of(response), None))
        return _json_of(response)

    def _get_json(self, path: str) -> Any:
        return self._json("GET", path, None)

    def _post_json(self, path: str, body: dict[str, Any]) -> Any:
        return self._json("POST", path, body)

    def _json(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """An endpoint beside the API, at the server's root; None where it has none (or answers no JSON)."""
        root = self.base_url.removesuffix("/v1")
        try:
            response = self._http.request(method, root + path, json=body, headers=self._headers())
        except Exception as error:
            raise RemoteError(self._unreachable(error)) from error
        if response.status_code in (401, 403):
            raise RemoteError(self._status_sentence(response.status_code, None, None))
        return _json_of(response) if response.status_code < 400 else None

    def _status_sentence(self, status: int, body: Any, model: str | None) -> str:
        if status in (401, 403):
            return f"{self.host} refused Hearth's API key. Check the key saved for it."
        if status == 404:
            return (f"{self.host} has no model called “{model}” any more." if model
                    else f"{self.host} does not answer the OpenAI API at {self.base_url}.")
        return f"{self.host} failed to answer ({status}): {_message_of(body) or 'no reason given'}"

    def _unreachable(self, error: BaseException) -> str:
        from app import network

        cause: BaseException | None = error
        while cause is not None:
            if isinstance(cause, network.OfflineError):
                return str(cause)
            if "timeout" in type(cause).__name__.lower():
                return f"{self.host} stopped answering (nothing for {TIMEOUT_S:.0f} s)."
            cause = cause.__cause__ or cause.__context__
        return f"Could not reach {self.host}. Is the computer on, and its server running at {self.base_url}?"


def _json_of(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _context_of(extra: dict[str, Any]) -> int | None:
    """A model's context length among the fields servers add to ``/v1/models``: Hearth's ``hearth.context_length``,
    llama-server's ``meta.n_ctx_train``, vLLM's ``max_model_len``."""
    for value in ((extra.get("hearth") or {}).get("context_length"), (extra.get("meta") or {}).get("n_ctx_train"),
                  extra.get("max_model_len")):
        if isinstance(value, int) and value > 0:
            return value
    return None


def _message_of(body: Any) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("detail"), str):
            return str(body["detail"])
    return None
