"""POST /tokenize and /detokenize with the real model's vocabulary (engine process)."""

from __future__ import annotations

import httpx


def test_round_trip_and_agreement_with_generation(api: httpx.Client) -> None:
    text = "Héllo, wörld! <|im_end|> 🙂 1234"
    data = api.post("/tokenize", json={"text": text}).json()["data"]
    assert data["count"] == len(data["tokens"]) > 0
    back = api.post("/detokenize", json={"tokens": data["tokens"]}).json()["data"]
    assert back["text"] == text
    # parse_special reads <|im_end|> as one special token; without it, as plain text.
    plain = api.post("/tokenize", json={"text": text, "parse_special": False}).json()["data"]
    assert plain["count"] > data["count"]
    hidden = api.post("/detokenize", json={"tokens": data["tokens"], "unparse_special": False})
    assert "<|im_end|>" not in hidden.json()["data"]["text"]
    # The count a raw prompt is charged equals tokenize with the model's own specials.
    counted = api.post("/tokenize", json={"text": text, "add_special": True}).json()["data"]
    body = {"prompt": text, "raw": True, "max_tokens": 1, "temperature": 0}
    usage = api.post("/generate", json=body).json()["data"]["usage"]
    assert usage["prompt_tokens"] == counted["count"]


def test_bad_ids_are_400(api: httpx.Client) -> None:
    resp = api.post("/detokenize", json={"tokens": [1, 10_000_000]})
    assert resp.status_code == 400 and resp.json()["error"]["details"]["field"] == "tokens.1"
