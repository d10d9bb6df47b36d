"""Request bodies of the OpenAI-compatible routes (/v1/...), as OpenAI's API defines them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

__all__ = [
    "ChatCompletionRequest",
    "ChatMessageIn",
    "CompletionRequest",
    "ResponseFormat",
    "StreamOptions",
]

OpenAIPenalty = Annotated[float, Field(ge=-2, le=2)]
StopParam = (
    StrictStr
    | Annotated[
        list[Annotated[StrictStr, Field(min_length=1, max_length=256)]], Field(max_length=8)
    ]
)


class TextPart(BaseModel):
    type: Literal["text"]
    text: StrictStr


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer"]
    content: StrictStr | list[TextPart] | None = None
    name: StrictStr | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class JsonSchemaFormat(BaseModel):
    name: StrictStr = "response"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: StrictBool | None = None
    description: StrictStr | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class _Sampling(BaseModel):
    """Fields both OpenAI endpoints share. Unknown fields are ignored, as OpenAI clients
    send many (user, metadata, ...) that change nothing here."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr = Field("", description="Any id: the loaded model answers")
    max_tokens: Annotated[StrictInt, Field(ge=1, le=4096)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stop: StopParam | None = None
    seed: StrictInt | None = None
    frequency_penalty: OpenAIPenalty | None = None
    presence_penalty: OpenAIPenalty | None = None
    n: StrictInt | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    logprobs: StrictBool | int | None = None
    engine: Literal["native", "browser"] | None = Field(
        None,
        description="Extension (OpenAI SDKs: extra_body): run on this engine; "
        "default BROWSER_LLM_ENGINE",
    )


class ChatCompletionRequest(_Sampling):
    messages: Annotated[list[ChatMessageIn], Field(min_length=1, max_length=512)]
    max_completion_tokens: Annotated[StrictInt, Field(ge=1, le=4096)] | None = None
    response_format: ResponseFormat | None = None
    top_logprobs: StrictInt | None = None


class CompletionRequest(_Sampling):
    prompt: StrictStr | Annotated[list[StrictStr], Field(min_length=1, max_length=1)]
    echo: StrictBool = False
    suffix: StrictStr | None = None
