"""Bodies of POST /tokenize and /detokenize (extensions: the spec has neither)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from browser_llm.service.tokens import MAX_TEXT_CHARS, MAX_TOKENS_IN

__all__ = ["DetokenizeBody", "DetokenizeResponse", "TokenizeBody", "TokenizeResponse"]

EngineName = Literal["native", "browser"]


class TokenizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(max_length=MAX_TEXT_CHARS, description="Text to tokenize")
    add_special: StrictBool = Field(
        False, description="Add the special tokens the model adds to a prompt (BOS)"
    )
    parse_special: StrictBool = Field(
        True, description="Read special-token text such as <|im_end|> as that one token"
    )
    engine: EngineName | None = None


class TokenizeResponse(BaseModel):
    tokens: list[int]
    count: int
    model: str


class DetokenizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: Annotated[
        list[Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]], Field(max_length=MAX_TOKENS_IN)
    ]
    remove_special: StrictBool = Field(False, description="Drop a leading BOS / trailing EOS")
    unparse_special: StrictBool = Field(
        True, description="Render special tokens as their text (False: leave them out)"
    )
    engine: EngineName | None = None


class DetokenizeResponse(BaseModel):
    text: str
    model: str
