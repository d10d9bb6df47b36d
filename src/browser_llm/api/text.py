"""Text fields that must be real Unicode.

JSON can carry lone surrogates ("\\ud800"); Python keeps them in a str, and the first
UTF-8 encode (tokenizer, grammar, log) fails far from the request. Refused at the edge.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StrictStr

from browser_llm.core.text import has_lone_surrogate

__all__ = ["UnicodeText", "check_unicode", "has_lone_surrogate"]


def check_unicode(value: str) -> str:
    if has_lone_surrogate(value):
        raise ValueError("must be valid Unicode text (it contains a lone surrogate)")
    return value


UnicodeText = Annotated[StrictStr, AfterValidator(check_unicode)]
