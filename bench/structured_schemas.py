"""The structured-output benchmark's requests: 30 schemas of the kinds clients send, each
with a prompt (bench/structured_bench.py). Extraction, classification with enums, nested
arrays of objects, bounded numbers, optional fields, tool-call arguments."""

from __future__ import annotations

from typing import Any

S: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
N: dict[str, Any] = {"type": "number"}
B: dict[str, Any] = {"type": "boolean"}


def obj(props: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object schema as strict clients send it: no extra keys, the rest required."""
    return {
        "type": "object",
        "properties": props,
        "required": [k for k in props if k not in optional],
        "additionalProperties": False,
    }


def arr(items: dict[str, Any], **bounds: int) -> dict[str, Any]:
    return {"type": "array", "items": items, **bounds}


def enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def between(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


CASES: list[tuple[str, str, dict[str, Any]]] = [
    # extraction
    (
        "event",
        "Extract the event: 'Team meeting with Sarah and Tom, Friday March 3rd, 10am, room 4B.'",
        obj({"title": S, "date": S, "time": S, "location": S, "attendees": arr(S)}),
    ),
    (
        "user",
        "Extract the user: 'John Smith is a 34-year-old engineer from Boston, john@example.com.'",
        obj({"name": S, "age": INT, "email": S, "city": S}),
    ),
    (
        "contact",
        "Extract the contact details: 'Call Maria Lopez at +1 555 0100 or write to maria@acme.io.'",
        obj({"name": S, "phone": S, "email": S}),
    ),
    (
        "invoice",
        "Extract the invoice: 'Invoice 2041 from Acme Ltd, total 349.90 EUR, due 2024-07-01.'",
        obj(
            {
                "number": S,
                "vendor": S,
                "total": N,
                "currency": S,
                "due": {"type": "string", "format": "date"},
            }
        ),
    ),
    (
        "address",
        "Extract the address: '221B Baker Street, London NW1 6XE, United Kingdom'",
        obj({"street": S, "city": S, "postcode": S, "country": S}),
    ),
    (
        "book",
        "Extract the book: 'Dune by Frank Herbert, published in 1965, 412 pages.'",
        obj({"title": S, "author": S, "year": INT, "pages": INT}),
    ),
    (
        "flight",
        "Extract the flight: 'BA 117 from London Heathrow to New York JFK, departs 08:25.'",
        obj({"airline": S, "number": S, "from": S, "to": S, "departs": S}),
    ),
    (
        "product",
        "Describe a laptop for sale as a product listing.",
        obj({"name": S, "price": N, "in_stock": B, "tags": arr(S)}),
    ),
    # classification with enums
    (
        "sentiment",
        "Classify the sentiment of: 'I love this product, it works great!'",
        obj({"sentiment": enum("positive", "negative", "neutral"), "confidence": N}),
    ),
    (
        "topic",
        "What is this headline about? 'Stocks rally as central bank holds rates.'",
        obj({"topic": enum("politics", "business", "sports", "science", "entertainment")}),
    ),
    (
        "priority",
        "Triage this ticket: 'The checkout page crashes for every customer.'",
        obj(
            {
                "priority": enum("low", "medium", "high", "urgent"),
                "team": enum("frontend", "backend", "billing"),
                "summary": S,
            }
        ),
    ),
    (
        "language",
        "Which language is this? 'Où est la gare, s'il vous plaît ?'",
        obj({"language": enum("english", "french", "spanish", "german"), "translation": S}),
    ),
    (
        "spam",
        "Is this message spam? 'You won a free cruise, click here now!'",
        obj({"spam": B, "reason": S}),
    ),
    (
        "intent",
        "Classify the intent: 'Can you book me a table for two tonight?'",
        obj({"intent": enum("booking", "question", "complaint", "greeting"), "people": INT}),
    ),
    # nested arrays of objects
    (
        "recipe",
        "Give me a simple recipe for pancakes.",
        obj({"name": S, "ingredients": arr(obj({"name": S, "amount": S})), "steps": arr(S)}),
    ),
    (
        "todo",
        "Make a to-do list for moving house.",
        obj({"tasks": arr(obj({"task": S, "done": B}), maxItems=6)}),
    ),
    (
        "team",
        "Describe a small software team with three people.",
        obj({"team": S, "members": arr(obj({"name": S, "role": S}), minItems=1, maxItems=5)}),
    ),
    (
        "itinerary",
        "Plan a two-day trip to Paris.",
        obj(
            {
                "city": S,
                "days": arr(obj({"day": INT, "activities": arr(S, maxItems=4)}), maxItems=3),
            }
        ),
    ),
    (
        "quiz",
        "Write two quiz questions about the solar system.",
        obj({"questions": arr(obj({"question": S, "answer": S}), minItems=2, maxItems=2)}),
    ),
    (
        "order",
        "Create an order for two pizzas and a salad.",
        obj({"items": arr(obj({"item": S, "quantity": between(1, 10)})), "total": N}),
    ),
    # bounded numbers
    (
        "joke",
        "Tell me a joke about cats, and rate how funny it is from 1 to 10.",
        obj({"setup": S, "punchline": S, "rating": between(1, 10)}),
    ),
    (
        "review",
        "Review the movie Inception in one sentence with a score out of 5.",
        obj({"summary": S, "score": between(0, 5)}),
    ),
    (
        "weather",
        "Describe today's weather in Oslo.",
        obj(
            {
                "city": S,
                "temperature_c": between(-60, 60),
                "condition": enum("sunny", "cloudy", "rain", "snow"),
            }
        ),
    ),
    (
        "person_age",
        "Who was Albert Einstein? Give his name and age at death.",
        obj({"name": S, "age": between(0, 130)}),
    ),
    (
        "capital",
        "What is the capital of Japan?",
        obj({"country": S, "capital": S, "population_millions": {"type": "number", "minimum": 0}}),
    ),
    # optional fields
    (
        "profile",
        "Create a profile for a user named Alex who likes hiking.",
        obj(
            {"name": S, "nickname": S, "age": INT, "hobbies": arr(S)}, optional=("nickname", "age")
        ),
    ),
    (
        "meeting",
        "Summarise: 'Standup moved to 9:30, Bob is out today.'",
        obj(
            {"summary": S, "time": S, "absent": arr(S), "location": S},
            optional=("location", "absent"),
        ),
    ),
    # tool-call arguments
    (
        "tool_weather",
        "Call get_weather for Paris in celsius.",
        obj(
            {
                "name": {"const": "get_weather"},
                "arguments": obj({"city": S, "unit": enum("celsius", "fahrenheit")}),
            }
        ),
    ),
    (
        "tool_search",
        "Call search to find vegan restaurants near me, at most 5 results.",
        obj({"name": {"const": "search"}, "arguments": obj({"query": S, "limit": between(1, 20)})}),
    ),
    (
        "tool_email",
        "Call send_email to tell bob@example.com the meeting is moved to Monday.",
        obj(
            {"name": {"const": "send_email"}, "arguments": obj({"to": S, "subject": S, "body": S})}
        ),
    ),
]
