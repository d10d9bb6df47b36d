"""Model ids name files: hostile ones are refused before anything uses them."""

from __future__ import annotations

import pytest

from browser_llm.core.errors import ValidationError
from browser_llm.models.catalog import Catalog
from browser_llm.models.ids import is_valid_model_id, validate_model_id

HOSTILE = [
    "",
    ".",
    "..",
    "../etc/passwd",
    "..%2f..%2fetc",
    "a/b",
    "a\\b",
    "/etc/passwd",
    "C:\\x",
    ".hidden",
    "a..b",
    "x" * 65,
    "name\0.gguf",
    "UPPER",
    "sp ace",
    "ünicode",
    "model.partial",
    "user-models.json",
    "-leading-dash",
]


@pytest.mark.parametrize("model_id", HOSTILE)
def test_hostile_ids_are_refused(model_id: str) -> None:
    assert not is_valid_model_id(model_id)
    with pytest.raises(ValidationError):
        validate_model_id(model_id)


def test_every_catalog_id_is_valid() -> None:
    entries = Catalog.builtin().all()
    assert len(entries) >= 8
    for entry in entries:
        assert validate_model_id(entry.id) == entry.id
        assert entry.sha256 is None or len(entry.sha256) == 64
        assert entry.source.type in ("package", "url")
        if entry.source.type == "url":
            assert entry.source.url is not None
            assert entry.source.url.startswith("https://huggingface.co/")
    ids = {e.id for e in entries}
    assert {"smollm2-135m-instruct-q4", "gemma3-270m-q4", "phi-3-mini-q4"} <= ids
