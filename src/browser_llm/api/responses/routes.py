"""OpenAI's Responses API at /v1/responses: create (one JSON body or typed SSE events),
retrieve, delete and input_items of stored responses (service/response_store.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from browser_llm.api.envelope import arrived_at, request_id_of
from browser_llm.api.responses.calls import input_items, responses_call
from browser_llm.api.responses.protocol import ResponseCreate
from browser_llm.api.responses.render import ResponsesView, new_response_id
from browser_llm.api.services import services
from browser_llm.api.streams import (
    SSE_EVENT_SCHEMA,
    GenerationSSEResponse,
    collect_unless_disconnected,
)
from browser_llm.core.errors import BrowserLLMError, ValidationError
from browser_llm.service.response_store import ResponseStore, StoredResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai-responses"])

_CREATED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The response; with stream=true, Server-Sent Events (response.created "
        "... response.completed)",
        "content": {"application/json": {}, "text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
    }
}


class ResponseNotFoundError(BrowserLLMError):
    code = "NOT_FOUND"


async def _stored(store: ResponseStore, response_id: str, field: str | None) -> StoredResponse:
    found = await store.get(response_id)
    if found is None:
        details = {"field": field} if field else None
        raise ResponseNotFoundError(f"no stored response with id '{response_id}'", details)
    return found


@router.post("/responses", summary="OpenAI Responses API: create a response", responses=_CREATED)
async def create_response(body: ResponseCreate, request: Request) -> Response:
    svc = services(request)
    store = svc.responses
    context: list[dict[str, Any]] = []
    if body.previous_response_id is not None:
        previous = await _stored(store, body.previous_response_id, "previous_response_id")
        context = previous.context + previous.body.get("output", [])
    items = input_items(body)
    context = context + items
    call = responses_call(body, context, request_id_of(request), arrived_at(request))
    answer = await svc.answers.start(call)
    view = ResponsesView(answer, body, new_response_id())

    async def keep(final: dict[str, Any]) -> None:
        if body.store is not False:
            await store.save(StoredResponse(view.id, view.created_at, final, items, context))

    if body.stream:
        return GenerationSSEResponse(answer.stream, view.events(keep))
    completion = await collect_unless_disconnected(request, answer.stream)
    final = view.body(answer.done(completion))
    await keep(final)
    return JSONResponse(final)


@router.get("/responses/{response_id}", summary="OpenAI Responses API: a stored response")
async def retrieve_response(response_id: str, request: Request) -> Response:
    found = await _stored(services(request).responses, response_id, None)
    return JSONResponse(found.body)


@router.delete("/responses/{response_id}", summary="OpenAI Responses API: delete a response")
async def delete_response(response_id: str, request: Request) -> Response:
    if not await services(request).responses.delete(response_id):
        raise ResponseNotFoundError(f"no stored response with id '{response_id}'")
    return JSONResponse({"id": response_id, "object": "response.deleted", "deleted": True})


@router.get(
    "/responses/{response_id}/input_items",
    summary="OpenAI Responses API: the input items of a stored response",
)
async def list_input_items(
    response_id: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: Annotated[str | None, Query(max_length=200)] = None,
    include: Annotated[list[str] | None, Query()] = None,  # nothing extra to include here
) -> Response:
    found = await _stored(services(request).responses, response_id, None)
    items = found.input_items if order == "asc" else list(reversed(found.input_items))
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise ValidationError(f"after: no item '{after}' in this response", {"field": "after"})
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return JSONResponse(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
    )
