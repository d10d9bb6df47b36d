"""Request bodies of the OpenAI-compatible routes (/v1/...), as OpenAI's API defines them.

Every field OpenAI documents is declared here and is honoured, refused with a 400
naming it (a value this server cannot honour), or — metadata only, which changes no
answer — accepted and ignored. docs/api.md has the table. Unknown fields are refused
(extra="forbid"): a typo or a newer field must not silently change nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

__all__ = [
    "IGNORED_FIELDS",
    "ChatCompletionRequest",
    "ChatMessageIn",
    "CompletionRequest",
    "FunctionDef",
    "ResponseFormat",
    "StreamOptions",
    "ToolCallIn",
    "ToolChoice",
    "ToolDef",
]

OpenAIPenalty = Annotated[float, Field(ge=-2, le=2)]
StopParam = (
    StrictStr
    | Annotated[
        list[Annotated[StrictStr, Field(min_length=1, max_length=256)]], Field(max_length=8)
    ]
)
# Agents send 8192-32000 and more: accepted, clamped to the room left in the context
# (the answer then ends with finish_reason "length").
MaxTokens = Annotated[StrictInt, Field(ge=1, le=1_000_000)]

# Accepted and ignored: metadata that changes no answer on this server.
IGNORED_FIELDS = (
    "user",
    "metadata",
    "store",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "prediction",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: StrictStr


class FunctionCallIn(_Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    arguments: Annotated[StrictStr, Field(max_length=100_000)]


class ToolCallIn(_Strict):
    """An earlier assistant turn's tool call, sent back in the history."""

    id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(_Strict):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: StrictStr | list[TextPart] | None = None
    name: StrictStr | None = None
    tool_calls: Annotated[list[ToolCallIn], Field(max_length=64)] | None = None
    tool_call_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    refusal: StrictStr | None = None
    # An earlier answer sent back as the SDK holds it: its reasoning (either name) goes back
    # to the chat template; its citations, audio reference and null legacy call are ignored.
    reasoning_content: StrictStr | None = None
    reasoning: StrictStr | None = None
    annotations: Annotated[list[dict[str, Any]], Field(max_length=256)] | None = None
    audio: dict[str, Any] | None = None
    function_call: None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class FunctionDef(_Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    description: Annotated[StrictStr, Field(max_length=4096)] | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None


class ToolDef(_Strict):
    type: Literal["function"]
    function: FunctionDef


class _NamedFunction(_Strict):
    name: StrictStr


class ToolChoice(_Strict):
    type: Literal["function"]
    function: _NamedFunction


class JsonSchemaFormat(_Strict):
    name: StrictStr = "response"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: StrictBool | None = None
    description: StrictStr | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(_Strict):
    include_usage: StrictBool = False
    include_obfuscation: StrictBool | None = None  # ignored: nothing to obfuscate locally


class _Sampling(_Strict):
    """Fields both OpenAI endpoints share."""

    model: StrictStr = Field(
        "", max_length=200, description="Model id or alias; empty: the loaded model"
    )
    max_tokens: MaxTokens | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stop: StopParam | None = None
    seed: StrictInt | None = None
    frequency_penalty: OpenAIPenalty | None = None
    presence_penalty: OpenAIPenalty | None = None
    n: StrictInt | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    logit_bias: dict[str, float] | None = None
    engine: Literal["native", "browser"] | None = Field(
        None,
        description="Extension (OpenAI SDKs: extra_body): run on this engine; "
        "default BROWSER_LLM_ENGINE",
    )
    keep_alive: StrictStr | StrictInt | StrictFloat | None = Field(
        None,
        description="Extension (OpenAI SDKs: extra_body): how long the model stays loaded "
        "once idle (Ollama's "
        'keep_alive: "5m", seconds, negative for ever, 0 unload when idle); default '
        "BROWSER_LLM_KEEP_ALIVE",
    )
    # Metadata: accepted, ignored (IGNORED_FIELDS).
    user: StrictStr | None = None
    metadata: dict[str, Any] | None = None
    store: StrictBool | None = None
    service_tier: StrictStr | None = None
    prompt_cache_key: StrictStr | None = None
    safety_identifier: StrictStr | None = None


class ChatCompletionRequest(_Sampling):
    messages: Annotated[list[ChatMessageIn], Field(min_length=1, max_length=512)]
    max_completion_tokens: MaxTokens | None = None
    response_format: ResponseFormat | None = None
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = None
    tools: Annotated[list[ToolDef], Field(max_length=128)] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoice | None = None
    parallel_tool_calls: StrictBool | None = None
    # Refused when they ask for something this server cannot do (fields.py).
    functions: list[Any] | None = None
    function_call: Any = None
    modalities: list[StrictStr] | None = None
    audio: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    verbosity: StrictStr | None = None
    prediction: dict[str, Any] | None = None
    # "none": a thinking model does not think (where its template can turn it off); any
    # other effort: the model's default (service/thinking/plan.py).
    reasoning_effort: StrictStr | None = None


class CompletionRequest(_Sampling):
    prompt: StrictStr | Annotated[list[StrictStr], Field(min_length=1, max_length=1)]
    echo: StrictBool = False
    suffix: StrictStr | None = None
    best_of: StrictInt | None = None
    logprobs: StrictInt | None = None
