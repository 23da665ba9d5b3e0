"""A small client for any OpenAI-compatible chat endpoint, over httpx.

Works with OpenAI and with the servers that speak its chat-completions API (vLLM, Ollama,
LM Studio, llama.cpp server, OpenRouter, Together ...). Needs ``httpx``
(``pip install "tela-memory-core[openai]"``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from tela_memory.errors import MissingDependency
from tela_memory.messages import Message
from tela_memory.models.base import ChatChunk, ChatModel, ChatResult, ModelError, ToolSpec
from tela_memory.models.openai_wire import (
    SSEDecoder,
    completion_as_chunk,
    parse_stream_event,
    to_openai_messages,
)
from tela_memory.models.roles import ProviderFamily

if TYPE_CHECKING:
    import httpx

OPENAI_URL = "https://api.openai.com/v1"


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependency("httpx", "openai") from exc
    return httpx


class OpenAICompatible(ChatModel):
    """Chat model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: the model name the server knows.
        base_url: the API root (``http://localhost:11434/v1`` for Ollama, ``.../v1`` for vLLM).
        api_key: bearer token; ``None`` reads ``OPENAI_API_KEY`` when the URL is OpenAI's.
        family: role rules; OpenAI's own URL gets ``OPENAI`` (``developer`` role), anything
            else ``OPENAI_COMPATIBLE`` (``developer`` sent as ``system``).
        timeout: seconds for connect / read.
        stream_usage: ask for usage in the last stream chunk (``stream_options``).
        headers: extra HTTP headers.
        client: an ``httpx.Client`` to use (not closed by :meth:`close`).
        async_client: an ``httpx.AsyncClient`` to use (not closed by :meth:`aclose`).
        **defaults: request parameters sent every time (``temperature``, ``max_tokens`` ...).

    No connection is made before the first request.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str = OPENAI_URL,
        api_key: str | None = None,
        family: ProviderFamily | str | None = None,
        timeout: float = 60.0,
        stream_usage: bool = True,
        headers: dict[str, str] | None = None,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
        **defaults: Any,
    ) -> None:
        self._model = model
        self.base_url = base_url.rstrip("/")
        is_openai = self.base_url.startswith(OPENAI_URL)
        if api_key is None and is_openai:
            api_key = os.environ.get("OPENAI_API_KEY")
        self._api_key = api_key
        self.family = ProviderFamily(
            family or (ProviderFamily.OPENAI if is_openai else ProviderFamily.OPENAI_COMPATIBLE)
        )
        self._timeout = timeout
        self._stream_usage = stream_usage
        self._headers = dict(headers or {})
        self._client = client
        self._async_client = async_client
        self._own_client = client is None
        self._own_async_client = async_client is None
        self._defaults = defaults

    @property
    def model_name(self) -> str:
        """The model name sent to the server."""
        return self._model

    @property
    def url(self) -> str:
        """The chat-completions URL."""
        return f"{self.base_url}/chat/completions"

    # -- request building (shared by sync and async) --------------------------------------

    def _request_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **self._headers}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _body(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None,
        options: dict[str, Any],
        *,
        stream: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": to_openai_messages(messages, self.family),
            **self._defaults,
            **options,
        }
        if tools:
            body["tools"] = [t.to_openai() for t in tools]
        if stream:
            body["stream"] = True
            if self._stream_usage:
                body.setdefault("stream_options", {"include_usage": True})
        return body

    def _status_error(self, status: int, text: str, cause: BaseException | None) -> ModelError:
        return ModelError(
            f"{self.url} answered HTTP {status}: {text[:500]}",
            provider_error=cause,
            status=status,
            body=text,
        )

    def _transport_error(self, exc: BaseException) -> ModelError:
        return ModelError(f"request to {self.url} failed: {exc!r}", provider_error=exc)

    # -- clients ----------------------------------------------------------------------------

    def _sync(self) -> httpx.Client:
        if self._client is None:
            httpx = _httpx()
            self._client = httpx.Client(timeout=self._timeout)
        return self._client

    def _async(self) -> httpx.AsyncClient:
        if self._async_client is None:
            httpx = _httpx()
            self._async_client = httpx.AsyncClient(timeout=self._timeout)
        return self._async_client

    # -- sync -------------------------------------------------------------------------------

    def generate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> ChatResult:
        """One non-streamed completion."""
        from tela_memory.models.assemble import ChunkAssembler

        httpx = _httpx()
        body = self._body(messages, tools, options, stream=False)
        try:
            response = self._sync().post(self.url, json=body, headers=self._request_headers())
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code >= 400:
            raise self._status_error(response.status_code, response.text, None)
        assembler = ChunkAssembler()
        assembler.add(completion_as_chunk(_json(response)))
        return assembler.result()

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> Iterator[ChatChunk]:
        """Stream a completion over Server-Sent Events."""
        httpx = _httpx()
        body = self._body(messages, tools, options, stream=True)
        try:
            with self._sync().stream(
                "POST", self.url, json=body, headers=self._request_headers()
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._status_error(response.status_code, response.text, None)
                events = _EventChunks(self.url)
                for line in response.iter_lines():
                    chunk = events.feed(line)
                    if chunk is not None:
                        yield chunk
                    if events.done:
                        break
                tail = events.close()
                if tail is not None:
                    yield tail
                events.check_finished()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    # -- async ------------------------------------------------------------------------------

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> ChatResult:
        """Async twin of :meth:`generate`."""
        from tela_memory.models.assemble import ChunkAssembler

        httpx = _httpx()
        body = self._body(messages, tools, options, stream=False)
        try:
            response = await self._async().post(
                self.url, json=body, headers=self._request_headers()
            )
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code >= 400:
            raise self._status_error(response.status_code, response.text, None)
        assembler = ChunkAssembler()
        assembler.add(completion_as_chunk(_json(response)))
        return assembler.result()

    async def astream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> AsyncIterator[ChatChunk]:
        """Async twin of :meth:`stream`."""
        httpx = _httpx()
        body = self._body(messages, tools, options, stream=True)
        try:
            async with self._async().stream(
                "POST", self.url, json=body, headers=self._request_headers()
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise self._status_error(response.status_code, response.text, None)
                events = _EventChunks(self.url)
                async for line in response.aiter_lines():
                    chunk = events.feed(line)
                    if chunk is not None:
                        yield chunk
                    if events.done:
                        break
                tail = events.close()
                if tail is not None:
                    yield tail
                events.check_finished()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the sync client if this object created it."""
        if self._client is not None and self._own_client:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close both clients if this object created them."""
        self.close()
        if self._async_client is not None and self._own_async_client:
            await self._async_client.aclose()
            self._async_client = None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise ModelError(
            f"the server answered with something that is not JSON: {response.text[:200]!r}",
            provider_error=exc,
            status=response.status_code,
            body=response.text,
        ) from exc
    if not isinstance(data, dict):
        raise ModelError("the server answered with JSON that is not an object", body=response.text)
    return data


class _EventChunks:
    """SSE lines to chunks, shared by ``stream`` and ``astream`` (the I/O stays with them)."""

    def __init__(self, url: str) -> None:
        self._decoder = SSEDecoder()
        self._finished = False
        self._url = url

    @property
    def done(self) -> bool:
        """The server sent ``[DONE]``."""
        return self._decoder.done

    def feed(self, line: str) -> ChatChunk | None:
        """The chunk a line completes, if any."""
        payload = self._decoder.feed(line)
        return None if payload is None else self._chunk(payload)

    def close(self) -> ChatChunk | None:
        """The chunk left in the decoder at the end of the body, if any."""
        tail = self._decoder.close()
        return None if tail is None else self._chunk(tail)

    def check_finished(self) -> None:
        """Raise if the stream ended without ``[DONE]`` or a finish reason."""
        _check_finished(self._decoder.done or self._finished, self._url)

    def _chunk(self, payload: dict[str, Any]) -> ChatChunk:
        chunk = parse_stream_event(payload)
        self._finished = self._finished or chunk.finish_reason is not None
        return chunk


def _check_finished(finished: bool, url: str) -> None:
    if not finished:
        raise ModelError(f"the stream from {url} ended before the model finished its reply")


__all__ = ["OPENAI_URL", "OpenAICompatible"]
