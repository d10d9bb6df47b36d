"""Structured answers through the clients people use, unchanged (issue 36): the openai SDK's
`chat.completions.parse` and LangChain's `with_structured_output` (its default method, a
strict `json_schema` response format) return a parsed object on the real engine with the
default model at temperature 0. Both raise when the answer ends at the token budget, which
is how a looping answer (the whitespace grammar before issue 36) reached their users."""

from __future__ import annotations

import re
from collections.abc import Iterator

import langchain_openai
import openai
import pytest
from pydantic import BaseModel

from browser_llm.config import DEFAULT_MODEL_ID as MODEL
from tests.e2e.conftest import Server, served

# The budget: a sensible answer to these prompts ends well before it.
MAX_TOKENS = 150
_LOOP = re.compile(r"(.{4,}?)\1{3,}", re.DOTALL)  # a span repeated 4+ times in a row


class Joke(BaseModel):
    setup: str
    punchline: str
    rating: int


class Ingredient(BaseModel):
    name: str
    amount: str


class Recipe(BaseModel):
    name: str
    ingredients: list[Ingredient]
    steps: list[str]


CASES = [
    pytest.param(
        Joke, "Tell me a joke about cats, and rate how funny it is from 1 to 10.", id="joke"
    ),
    pytest.param(Recipe, "Give me a simple recipe for pancakes.", id="recipe"),
]
RECIPE = [{"role": "user", "content": "Give me a simple recipe for pancakes."}]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _assert_no_loop(answer: BaseModel) -> None:
    for text in _strings(answer.model_dump()):
        assert not _LOOP.search(text), f"a looping value: {text!r}"


def test_no_string_value_loops_after_a_lone_space(oai: openai.OpenAI) -> None:
    """Greedy SmolLM2 takes a lone " " after `"amount":` (a number was to come; the schema
    wants a string). The grammar then refuses every pick but tokens starting with `"`, all
    far off the model's distribution (`");` at logprob -20), and the value looped:
    `"); 1.25g, 1.25g, ...`. The sampler now writes the `"` that ` "` would have written
    (engine/native/whitespace_merge.py), and no string value loops."""
    completion = oai.chat.completions.parse(
        model=MODEL, messages=RECIPE, response_format=Recipe, temperature=0, max_tokens=MAX_TOKENS
    )
    recipe = completion.choices[0].message.parsed
    assert recipe is not None and recipe.ingredients
    assert not any(i.amount.startswith(")") for i in recipe.ingredients)
    _assert_no_loop(recipe)


def _items_run(items: list[Ingredient]) -> int:
    """The longest run of identical items in a row."""
    longest = run = 0
    for i, item in enumerate(items):
        run = run + 1 if i and item == items[i - 1] else 1
        longest = max(longest, run)
    return longest


def test_an_array_repeating_one_item_gets_no_fourth_copy(
    oai: openai.OpenAI, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Greedy SmolLM2 lists the same ingredient until the budget ends the answer (then the
    SDK raises). The engine sets aside the token that would start a fourth identical item
    in a row (grammar/repeated_items.py): the answer is the unwatched one up to there, and
    the model goes on to the steps. BROWSER_LLM_JSON_REPEAT_LIMIT=0 turns it off."""
    request = {"model": MODEL, "messages": RECIPE, "temperature": 0, "max_tokens": MAX_TOKENS}
    with served(tmp_path_factory.mktemp("unwatched"), BROWSER_LLM_JSON_REPEAT_LIMIT="0") as srv:
        base = srv.base_url.replace("/api/v1", "/v1")
        with openai.OpenAI(base_url=base, api_key="unused", max_retries=0) as plain:
            try:
                loose = plain.chat.completions.parse(response_format=Recipe, **request)
            except openai.LengthFinishReasonError as exc:
                loose = exc.completion  # type: ignore[assignment]
    unwatched = loose.choices[0].message.content or ""
    if _items_run(Recipe.model_validate_json(unwatched).ingredients) <= 3:
        pytest.skip("this build's greedy answer does not repeat an ingredient 4 times")
    watched_completion = oai.chat.completions.parse(response_format=Recipe, **request)
    watched = watched_completion.choices[0].message.content or ""
    recipe = Recipe.model_validate_json(watched)
    assert _items_run(recipe.ingredients) == 3
    # Identical up to the separator after the third copy, which the watched answer skips.
    common = 0
    while common < min(len(watched), len(unwatched)) and watched[common] == unwatched[common]:
        common += 1
    assert unwatched[:common].count('"name"') >= 4  # the recipe's name and three items
    rest = watched[common:]
    assert "]" in rest and "{" not in rest[: rest.index("]")]  # the list ends there


@pytest.fixture
def oai(server: Server) -> Iterator[openai.OpenAI]:
    base = server.base_url.replace("/api/v1", "/v1")
    with openai.OpenAI(base_url=base, api_key="unused", max_retries=0) as client:
        yield client


@pytest.mark.parametrize(("model", "prompt"), CASES)
def test_openai_sdk_parse_returns_the_object(
    oai: openai.OpenAI, model: type[BaseModel], prompt: str
) -> None:
    completion = oai.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": prompt}],
        response_format=model,
        temperature=0,
        max_tokens=MAX_TOKENS,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"  # parse raises on "length"; this says why
    assert isinstance(choice.message.parsed, model)
    assert model.model_validate_json(choice.message.content or "") == choice.message.parsed
    _assert_no_loop(choice.message.parsed)


@pytest.mark.parametrize(("model", "prompt"), CASES)
def test_langchain_with_structured_output_returns_the_object(
    server: Server, model: type[BaseModel], prompt: str
) -> None:
    llm = langchain_openai.ChatOpenAI(
        base_url=server.base_url.replace("/api/v1", "/v1"),
        api_key="unused",
        model=MODEL,
        temperature=0,
        max_tokens=MAX_TOKENS,
        max_retries=0,
    )
    structured = llm.with_structured_output(model, include_raw=True)
    result = structured.invoke(prompt)
    assert isinstance(result, dict)
    assert result["parsing_error"] is None
    raw = result["raw"]
    assert raw.response_metadata["finish_reason"] == "stop"
    assert isinstance(result["parsed"], model)
    _assert_no_loop(result["parsed"])
    # ... and without include_raw, the way most code calls it: the object itself.
    assert llm.with_structured_output(model).invoke(prompt) == result["parsed"]
