"""Which model a session talks to, and what went wrong when its provider failed.

`resolve_model` turns what the user gave (a pydantic-ai `Model`, a name, a `ModelConfig`, or nothing)
into a ready pydantic-ai model. API keys and base URLs come from the session's `env`, then the host
environment, and go only into the SDK client built here on the host, never into the VM.

OpenAI models go through the API their name asks for. `openai:NAME`, a bare `gpt-...` or `o...` name,
and the default model `OPENAI_API_KEY` picks use the Responses API, which OpenAI's reasoning models
need for tools (pydantic-ai refuses tools over Chat Completions while such a model reasons).
`openai-chat:NAME` and `ModelConfig(provider="openai", base_url=...)` use Chat Completions, which every
OpenAI-compatible server (ollama, vLLM, llama.cpp) speaks; `ModelConfig(api=...)` overrides either.
`OPENAI_BASE_URL` only says where requests go, as for a proxy in front of OpenAI: with it, `openai:`
still means Responses, so a server that speaks only Chat Completions wants `openai-chat:NAME`.

`classify_failure` reads what pydantic-ai (or the SDK underneath) raised, so the session harness can
retry what is transient and report the rest in one clean line, with every known secret redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urlsplit

import httpx2
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_ai import exceptions as pai
from pydantic_ai.models import Model

from agentos_nb.errors import ModelNotAvailable

DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-5-5"
DEFAULT_OPENAI_MODEL = "gpt-6.1-sol"
OFFLINE_NAME = "offline:agentos"
ANTHROPIC_API_URL = "https://api.anthropic.com"
OPENAI_API_URL = "https://api.openai.com/v1"
LOCAL_PLACEHOLDER_KEY = "api-key-not-set"
"""Sent to an OpenAI-compatible server on this machine or network when no key is set: the SDK needs one."""

REQUEST_TIMEOUT = httpx2.Timeout(300.0, connect=10.0)
"""Per attempt: 10 s to connect, 300 s between bytes. The harness retries with backoff, so the SDK doesn't."""

KNOWN_PROVIDERS = ("anthropic", "openai", "openai-chat", "offline")
OpenAIApi = Literal["responses", "chat"]
_KEY_VARS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
_URL_VARS = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}


class ModelConfig(BaseModel):
    """A model on a server of your choosing: an OpenAI-compatible local server (ollama, vLLM,
    llama.cpp) or a proxy. Unset `base_url` and `api_key` are looked up like any other."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["anthropic", "openai"]
    name: str = Field(min_length=1)
    base_url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    api: OpenAIApi | None = None
    """OpenAI's API: by default Chat Completions with a `base_url` (all compatible servers speak it),
    else Responses. "responses" suits a proxy in front of OpenAI's reasoning models."""

    @model_validator(mode="after")
    def _api_is_openai_only(self) -> ModelConfig:
        if self.api is not None and self.provider != "openai":
            raise ValueError(f"api={self.api!r} applies to OpenAI models only")
        return self


@dataclass(frozen=True)
class ResolvedModel:
    """The model to use, with what to call it and, in one sentence, why it was chosen."""

    model: Model
    name: str
    provider: str
    offline: bool
    reason: str


def resolve_model(
    model: str | ModelConfig | Model | None,
    *,
    env: Mapping[str, str] | None,
    offline: Callable[[], Model],
    host_env: Mapping[str, str] | None = None,
    configured_by_host: bool = False,
) -> ResolvedModel:
    """The model a session uses: the one given, else the one the keys in the environment pick, else
    the offline model. Raises `ModelNotAvailable` when the choice can't be honoured.

    `env` is the caller's (the session's); `configured_by_host` says `model` came from the host's
    own code (a VM type's default) rather than from the caller. Keys follow their endpoint: a base
    URL the caller gave is used only with a key the caller gave, so the host's key goes only to the
    provider's own endpoint or to one the host configured, never to one a request names."""
    caller, host = env or {}, os.environ if host_env is None else host_env
    sources = [caller, host]
    for source in sources:
        _remember_secrets(source.get(var) for var in _KEY_VARS.values())

    if isinstance(model, Model):
        return ResolvedModel(
            model,
            f"{model.system}:{model.model_name}",
            model.system,
            _runs_locally(model),
            "given explicitly",
        )
    if isinstance(model, ModelConfig):
        _remember_secrets([model.api_key])
        api = model.api or ("chat" if model.base_url else "responses")
        given = _Given(model.api_key, model.base_url, by_caller=not configured_by_host)
        return _build(model.provider, model.name, caller, host, "given explicitly", given, api)
    if isinstance(model, str):
        prefix, name = _split_name(model)
        if prefix == "offline":
            return _offline(offline, "given explicitly")
        return _build(prefix, name, caller, host, "given explicitly")

    if model is not None:
        raise TypeError(
            f"model must be a pydantic-ai Model, a name or a ModelConfig, not {type(model).__name__}"
        )
    for source, where in zip(sources, ("the session env", "the host environment"), strict=True):
        for provider, default_name in (
            ("anthropic", DEFAULT_ANTHROPIC_MODEL),
            ("openai", DEFAULT_OPENAI_MODEL),
        ):
            if source.get(_KEY_VARS[provider]):
                reason = f"{_KEY_VARS[provider]} is set in {where}"
                return _build(provider, default_name, caller, host, reason)
    return _offline(offline, "no ANTHROPIC_API_KEY or OPENAI_API_KEY: using the offline model")


def _split_name(model: str) -> tuple[str, str]:
    """`prefix:name` (`openai-chat` kept apart from `openai`), or a bare name whose provider is
    inferred the way pydantic-ai used to."""
    text = model.strip()
    if text == "offline" or text.startswith("offline:"):
        return "offline", text
    if ":" in text:
        prefix, name = text.split(":", 1)
        if prefix not in KNOWN_PROVIDERS:
            raise ModelNotAvailable(
                f"unknown model provider {prefix!r} in {model!r}: "
                f"known providers are {', '.join(KNOWN_PROVIDERS)}"
            )
    elif text.startswith("claude"):
        prefix, name = "anthropic", text
    elif text.startswith(("gpt-", "o1", "o3", "o4")):
        prefix, name = "openai", text
    else:
        raise ModelNotAvailable(
            f"cannot tell which provider serves model {model!r}: "
            "write it as 'anthropic:NAME' or 'openai:NAME' "
            "(for a local OpenAI-compatible server, 'openai-chat:NAME' with OPENAI_BASE_URL set, "
            "or ModelConfig(provider='openai', name=NAME, base_url=...))"
        )
    if not name.strip():
        raise ModelNotAvailable(f"model {model!r} names no model after {prefix!r}")
    return prefix, name.strip()


@dataclass(frozen=True)
class _Given:
    """A `ModelConfig`'s own key and base URL, and whether the caller or the host's code gave them."""

    api_key: str | None
    base_url: str | None
    by_caller: bool


def _build(
    prefix: str,
    name: str,
    caller: Mapping[str, str],
    host: Mapping[str, str],
    reason: str,
    given: _Given | None = None,
    api: OpenAIApi | None = None,
) -> ResolvedModel:
    """The model `prefix:name` (`openai-chat` is OpenAI over Chat Completions, and keeps its name),
    with a key that may go where it is sent: see `resolve_model`."""
    provider = "openai" if prefix == "openai-chat" else prefix
    key_var, url_var = _KEY_VARS[provider], _URL_VARS[provider]
    given = given or _Given(None, None, by_caller=True)
    caller_key = (given.api_key if given.by_caller else None) or caller.get(key_var)
    host_key = (None if given.by_caller else given.api_key) or host.get(key_var)
    base_url: str | None
    if given.base_url:
        base_url, url_by_caller = given.base_url, given.by_caller
    elif caller.get(url_var):
        base_url, url_by_caller = caller[url_var], True
    else:
        base_url, url_by_caller = host.get(url_var) or None, False
    api_key = caller_key or (None if url_by_caller else host_key)
    if not api_key:
        if provider == "openai" and base_url and _is_local(base_url):
            api_key = LOCAL_PLACEHOLDER_KEY
        elif host_key:
            raise ModelNotAvailable(
                f"model {prefix}:{name} is to be sent to {base_url}, a base URL given with the "
                f"session, so it needs the API key given with it too ({key_var} in the same env, "
                "or ModelConfig(api_key=...)): the host's key goes only to endpoints the host set",
                variable=key_var,
            )
        else:
            raise ModelNotAvailable(
                f"model {prefix}:{name} needs an API key: set {key_var} in the session env "
                f"(create_session(env={{'{key_var}': ...}})) or in the environment",
                variable=key_var,
            )
    if provider == "anthropic":
        model = _anthropic_model(name, api_key, base_url)
    else:
        api = api or ("chat" if prefix == "openai-chat" else "responses")
        model = _openai_model(name, api_key, base_url, api)
    return ResolvedModel(model, f"{prefix}:{name}", provider, False, reason)


def install_hint(extra: str) -> str:
    """The command that adds `extra` to this very installation (a source checkout is installed
    editable, from its folder, not from PyPI), and the way to do without."""
    command = f"pip install 'agentos_nb[{extra}]'"
    with contextlib.suppress(importlib.metadata.PackageNotFoundError, ValueError):
        origin = json.loads(
            importlib.metadata.distribution("agentos_nb").read_text("direct_url.json") or "null"
        )
        if isinstance(origin, dict) and origin.get("dir_info", {}).get("editable"):
            folder = urlsplit(origin["url"]).path
            command = f"pip install -e '{folder}[{extra}]'"
    return f"{command} (or use the offline model: model='offline', or --model offline on the command line)"


def _anthropic_model(name: str, api_key: str, base_url: str | None) -> Model:
    try:
        from anthropic import AsyncAnthropic
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider
    except ImportError as error:
        raise ModelNotAvailable(f"Anthropic models need the SDK: {install_hint('anthropic')}") from error
    # An explicit base_url, so the SDK never falls back to the host's ANTHROPIC_BASE_URL on its own.
    client = AsyncAnthropic(
        api_key=api_key, base_url=base_url or ANTHROPIC_API_URL, max_retries=0, timeout=REQUEST_TIMEOUT
    )
    return AnthropicModel(name, provider=AnthropicProvider(anthropic_client=client))


def _openai_model(name: str, api_key: str, base_url: str | None, api: OpenAIApi) -> Model:
    try:
        from openai import AsyncOpenAI
        from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
        from pydantic_ai.providers.openai import OpenAIProvider
    except ImportError as error:
        raise ModelNotAvailable(f"OpenAI models need the SDK: {install_hint('openai')}") from error
    client = AsyncOpenAI(
        api_key=api_key, base_url=base_url or OPENAI_API_URL, max_retries=0, timeout=REQUEST_TIMEOUT
    )
    model_class = OpenAIResponsesModel if api == "responses" else OpenAIChatModel
    return model_class(name, provider=OpenAIProvider(openai_client=client))


def _offline(factory: Callable[[], Model], reason: str) -> ResolvedModel:
    return ResolvedModel(factory(), OFFLINE_NAME, "offline", True, reason)


def _is_local(url: str) -> bool:
    """A server on this machine or its private network (ollama, vLLM, llama.cpp): no key needed."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith((".localhost", ".local")) or host == "host.docker.internal":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified


def _runs_locally(model: Model) -> bool:
    from pydantic_ai.models.function import FunctionModel
    from pydantic_ai.models.test import TestModel

    return isinstance(model, FunctionModel | TestModel)


# --- failures ----------------------------------------------------------------------------------------

FailureKind = Literal[
    "auth", "rate_limit", "overloaded", "server", "network", "timeout", "bad_request", "other"
]
_TRANSIENT: frozenset[str] = frozenset({"rate_limit", "overloaded", "server", "network", "timeout"})


@dataclass(frozen=True)
class ProviderFailure:
    """A provider failure, told in one line that is safe to show: no secret ever appears in it."""

    kind: FailureKind
    transient: bool
    message: str
    retry_after: float | None


_SECRETS: set[str] = set()
"""Every API key `resolve_model` has seen, so no failure message can carry one."""
_KEYLIKE = re.compile(r"\b(sk-|sk_)[A-Za-z0-9_\-*.]{6,}|(Bearer\s+)\S+", re.IGNORECASE)


def _remember_secrets(values: Iterable[str | None]) -> None:
    _SECRETS.update(value for value in values if value and len(value) >= 8)


def classify_failure(
    error: BaseException, *, provider: str | None = None, secrets: Iterable[str] = ()
) -> ProviderFailure | None:
    """What kind of provider failure `error` is, or None when it isn't one (then it is our bug).

    Reads pydantic-ai's `ModelAPIError` family first, then SDK and httpx2 errors that escaped it.
    `provider` names it in the message (pass `ResolvedModel.provider`); else it is read off the SDK
    error underneath, when there is one. Known API keys and anything shaped like one are redacted."""
    if isinstance(error, BaseExceptionGroup):
        members = [e for e in error.exceptions if not _is_cancellation(e)]
        failures = [classify_failure(e, provider=provider, secrets=secrets) for e in members]
        if members and all(failures):
            return failures[0]
        return None
    for exc in _causes(error):
        found = _classify_one(exc, provider or _provider_of(error))
        if found is not None:
            kind, message, retry_after = found
            return ProviderFailure(kind, kind in _TRANSIENT, redact(message, secrets), retry_after)
    return None


def _classify_one(exc: BaseException, provider: str) -> tuple[FailureKind, str, float | None] | None:
    if isinstance(exc, pai.ModelRequestTimeout):
        return "timeout", f"{provider} did not answer within {exc.timeout:g} s", None
    if isinstance(exc, pai.ModelAPIError):
        status = exc.status_code if isinstance(exc, pai.ModelHTTPError) else None
        kind = _category_kind(exc) or (_status_kind(status, exc.body) if status else "other")
        return kind, _describe(kind, provider, status, _detail(exc.body, exc)), exc.retry_after
    status_error = _sdk_status_error(exc)
    if status_error is not None:
        status, body, headers = status_error
        kind = _status_kind(status, body)
        return kind, _describe(kind, provider, status, _detail(body, exc)), _retry_after(headers)
    if _is_transport_error(exc):
        kind = "timeout" if _is_timeout(exc) else "network"
        return kind, _describe(kind, provider, None, _detail(None, exc)), None
    return None


def _category_kind(exc: pai.ModelAPIError) -> FailureKind | None:
    categories: list[tuple[type[pai.ModelAPIError], FailureKind]] = [
        (pai.ModelAuthenticationError, "auth"),
        (pai.ModelRateLimitError, "rate_limit"),
        (pai.ModelQuotaExceededError, "other"),
        (pai.ModelOverloadedError, "overloaded"),
        (pai.ModelUnavailableError, "server"),
        (pai.ModelServerError, "server"),
        (pai.ModelTimeoutError, "timeout"),
        (pai.ModelConnectionError, "network"),
        (pai.ModelRequestRejectedError, "bad_request"),
    ]
    return next((kind for category, kind in categories if isinstance(exc, category)), None)


def _status_kind(status: int, body: object) -> FailureKind:
    error_type = str(_error_field(body, "type") or "")
    if status == 529 or "overloaded" in error_type:
        return "overloaded"
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server"
    if status >= 400 and status != 402:
        return "bad_request"
    return "other"


def _describe(kind: FailureKind, provider: str, status: int | None, detail: str) -> str:
    http = f" (HTTP {status})" if status else ""
    what = {
        "auth": f"{provider} rejected the API key{http}",
        "rate_limit": f"{provider} rate limit reached{http}",
        "overloaded": f"{provider} is overloaded{http}",
        "server": f"{provider} server error{http}",
        "network": f"connection to {provider} failed",
        "timeout": f"{provider} did not answer in time{http}",
        "bad_request": f"{provider} rejected the request{http}",
        "other": f"{provider} request failed{http}",
    }[kind]
    return f"{what}: {detail}" if detail else what


def _detail(body: object, exc: BaseException) -> str:
    """The provider's own words if its body has them, else the deepest error text in the chain."""
    message = _error_field(body, "message")
    if not isinstance(message, str) or not message.strip():
        texts = [str(e) for e in _causes(exc) if str(e) and not isinstance(e, pai.ModelHTTPError)]
        message = texts[-1] if texts else type(exc).__name__
    text = " ".join(message.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _error_field(body: object, field: str) -> object:
    """A field of an error body: Anthropic nests it under "error", OpenAI's SDK already unwrapped it."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get(field)
        if field == "message" and isinstance(inner, str):
            return inner
    return body if field == "message" and isinstance(body, str) else None


def _sdk_status_error(exc: BaseException) -> tuple[int, object, Mapping[str, str]] | None:
    """An error response the SDK (anthropic, openai) or httpx2 raised without pydantic-ai mapping it."""
    response = getattr(exc, "response", None)
    status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
    is_sdk = _package(exc) in ("anthropic", "openai") or isinstance(exc, httpx2.HTTPStatusError)
    if not is_sdk or not isinstance(status, int) or status < 400:
        return None
    headers = getattr(response, "headers", None) or {}
    return status, getattr(exc, "body", None), headers


def _is_transport_error(exc: BaseException) -> bool:
    if isinstance(exc, httpx2.TransportError):
        return True
    # The SDKs' APIConnectionError / APITimeoutError, and legacy httpx if something still uses it.
    names = {cls.__name__ for cls in type(exc).__mro__}
    return _package(exc) in ("anthropic", "openai", "httpx") and bool(
        names & {"APIConnectionError", "TransportError"}
    )


def _is_timeout(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"APITimeoutError", "TimeoutException"})


def _retry_after(headers: Mapping[str, str]) -> float | None:
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        if "retry-after" in lowered:
            raw = lowered["retry-after"]
            try:
                return max(0.0, float(raw))
            except ValueError:
                when = parsedate_to_datetime(raw)
                when = when if when.tzinfo else when.replace(tzinfo=UTC)
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (ValueError, TypeError):
        return None
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it was raised from (`raise ... from`), outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


def _provider_of(error: BaseException) -> str:
    for exc in _causes(error):
        if (package := _package(exc)) in ("anthropic", "openai"):
            return package
    return "the model provider"


def _package(exc: BaseException) -> str:
    return type(exc).__module__.partition(".")[0]


def _is_cancellation(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError)


def redact(text: str, extra: Iterable[str]) -> str:
    """`text` with every API key it holds replaced by "[redacted]": the ones `resolve_model` has
    seen, those in `extra` (8 characters or more), and anything shaped like one (`sk-...`,
    `Bearer ...`)."""
    for secret in sorted({*_SECRETS, *(s for s in extra if s and len(s) >= 8)}, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub(lambda m: f"{m.group(1) or m.group(2)}[redacted]", text)
