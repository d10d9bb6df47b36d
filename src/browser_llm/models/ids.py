"""Model ids: the one check every id passes before it names a file or a catalog entry.

Ids become file names under models_dir, so they are kept to a strict charset:
no separators, no leading dot, no '..', bounded length.
"""

from __future__ import annotations

import re

from browser_llm.core.errors import ValidationError

__all__ = ["MAX_ID_LENGTH", "is_valid_model_id", "validate_model_id"]

MAX_ID_LENGTH = 64
_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")


def is_valid_model_id(model_id: str) -> bool:
    return (
        0 < len(model_id) <= MAX_ID_LENGTH
        and _ID.fullmatch(model_id) is not None
        and ".." not in model_id
        and not model_id.endswith((".", ".partial", ".lock", ".json"))
    )


def validate_model_id(model_id: str) -> str:
    """Returns the id, or raises ValidationError (400) naming the rule."""
    if not is_valid_model_id(model_id):
        raise ValidationError(
            "invalid model id: use 1-64 characters a-z, 0-9, '.', '_' or '-', starting with a "
            "letter or digit, without '..'",
            {"field": "model_id", "max_length": MAX_ID_LENGTH},
        )
    return model_id
