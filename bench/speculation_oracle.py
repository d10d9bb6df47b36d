"""The best prompt-lookup speculation can do on the grounded prompts, as arithmetic.

Each prompt's greedy answer comes from the engine's own LlamaModel (one sequence, the
model's chat template, no server). Then, offline, at every step: the draft that
speculation/drafts.py looks up, how far back its match reaches, and how many of its
tokens the answer confirms. A step costs 1 (a plain one-row decode); a sequence's first
draft row costs FIRST more and each further row ROW more (bench/speculation_ceiling.py on
2 EPYC cores: 1.1 and 0.5). Three policies, as speed-ups over plain decoding:

- oracle: verifies exactly the draft tokens that will be accepted, never one that
  misses: what these drafts would give if their future were known;
- known rates: the engine's rule (speculation/budget.allot) given each kind's true
  chance per class of match length, measured over the whole kind afterwards: the best a
  policy can do that knows what a draft carries (its match length) but not its future;
- budget: decides as the engine does, with acceptance rates learnt per class of match
  length as the answer goes (MatchRates), paying for its misses;
- also the first draft token's acceptance by match length.

Usage:

    flock /tmp/bench.lock .venv/bin/python bench/speculation_oracle.py [--short]
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import llama_cpp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_llm.core.types import ChatMessage
from browser_llm.engine.config import ContextConfig
from browser_llm.engine.native.kv.slots import shared_prefix
from browser_llm.engine.native.model import LlamaModel
from browser_llm.engine.native.speculation.budget import MAX_DRAFT, MatchRates, Offer, allot
from browser_llm.engine.native.speculation.costs import DraftCosts
from browser_llm.engine.native.speculation.drafts import NgramIndex
from grounded_prompts import grounded_prompts
from harness import default_model_path

CLASSES = ((1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 10**9))


def _greedy(model: LlamaModel, prompt: str, max_tokens: int) -> tuple[list[int], list[int]]:
    """The chat-templated prompt's tokens and its greedy answer's (without the end)."""
    assert model.chat_template is not None
    text = model.chat_template.render([ChatMessage(role="user", content=prompt)])
    tokens = model.tokenize(text, add_special=model.add_bos)
    memory = llama_cpp.llama_get_memory(model.ctx)
    llama_cpp.llama_memory_seq_rm(memory, 0, -1, -1)
    batch, size = model.batch, model.config.batch_size
    answer: list[int] = []
    feed, pos = tokens, 0
    while len(answer) < max_tokens:
        for start in range(0, len(feed), size):
            chunk = feed[start : start + size]
            for i, token in enumerate(chunk):
                batch.token[i], batch.pos[i] = token, pos + i
                batch.n_seq_id[i], batch.seq_id[i][0] = 1, 0
                batch.logits[i] = i == len(chunk) - 1
            batch.n_tokens = len(chunk)
            assert llama_cpp.llama_decode(model.ctx, batch) == 0
            pos += len(chunk)
        logits = np.ctypeslib.as_array(
            llama_cpp.llama_get_logits_ith(model.ctx, -1), (model.n_vocab,)
        )
        token = int(np.argmax(logits))
        if model.is_eog(token):
            break
        answer.append(token)
        feed = [token]
    return tokens, answer


def _class(matched: int) -> tuple[int, int]:
    return next(c for c in CLASSES if c[0] <= matched <= c[1])


def _simulate(
    prompt: list[int],
    answer: list[int],
    costs: DraftCosts,
    oracle: bool,
    known: dict[tuple[int, int], float] | None = None,
) -> float:
    """Cost, in plain one-row decodes, of giving out `answer` after its first token
    (`known`: fixed rates per match class instead of learnt ones)."""
    index, i, cost = NgramIndex([*prompt, answer[0]]), 0, 0.0
    rates = MatchRates()
    while i < len(answer) - 1:
        draft, matched = index.lookup(min(MAX_DRAFT, len(answer) - 1 - i))
        right = shared_prefix(draft, answer[i + 1 :])
        if oracle:
            rows = right
        elif known is not None:
            rate = known.get(_class(matched), 0.0) if draft else 0.0
            rows = allot([Offer(rate, len(draft))], 10**6, costs)[0]
        else:
            rows = allot([Offer(rates.rate(matched), len(draft))], 10**6, costs)[0] if draft else 0
            if rows:
                rates.record(matched, rows, min(right, rows))
            elif draft:  # its first token judged for free by the token that comes
                rates.record(matched, 1, min(right, 1))
        cost += 1 + (costs.first_row + costs.row * (rows - 1) if rows else 0)
        given = answer[i + 1 : i + 2 + min(right, rows)]
        index.extend(given)
        i += len(given)
    return cost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="the ~110-200-token passages")
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--first", type=float, default=1.1)
    parser.add_argument("--row", type=float, default=0.5)
    args = parser.parse_args()
    config = ContextConfig(
        context_size=2048, batch_size=512, threads=2, gpu_layers=0, max_sequences=1
    )
    model = LlamaModel("bench", str(default_model_path()), config)
    costs = DraftCosts(plain=1.0, first_row=args.first, row=args.row)
    answers = []
    for kind, prompt in grounded_prompts(args.short):
        tokens, answer = _greedy(model, prompt, args.tokens)
        if len(answer) >= 2:
            answers.append((kind, tokens, answer))
    per_kind: dict[str, dict[tuple[int, int], list[int]]] = collections.defaultdict(
        lambda: collections.defaultdict(lambda: [0, 0])
    )
    for kind, tokens, answer in answers:
        index = NgramIndex([*tokens, answer[0]])
        for i in range(len(answer) - 1):
            draft, matched = index.lookup(1)
            if draft:
                counts = per_kind[kind][_class(matched)]
                counts[0] += 1
                counts[1] += draft[0] == answer[i + 1]
            index.append(answer[i + 1])
    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for kind, tokens, answer in answers:
        known = {cls: right / n for cls, (n, right) in per_kind[kind].items()}
        total = totals[kind]
        total[0] += len(answer) - 1
        total[1] += _simulate(tokens, answer, costs, oracle=True)
        total[2] += _simulate(tokens, answer, costs, oracle=False, known=known)
        total[3] += _simulate(tokens, answer, costs, oracle=False)
    print(f"costs: plain 1, first draft row +{args.first}, further rows +{args.row} each")
    print(
        f"{'kind':10s} {'tokens':>7s} {'oracle':>7s} {'known rates':>12s} {'budget':>7s}"
        f" {'budget/oracle':>14s} {'budget/known':>13s}"
    )
    for kind, (steps, oracle, known_cost, budget) in totals.items():
        print(
            f"{kind:10s} {int(steps):7d} {steps / oracle:7.2f} {steps / known_cost:12.2f}"
            f" {steps / budget:7.2f} {oracle / budget:14.2f} {known_cost / budget:13.2f}"
        )
    firsts: dict[tuple[int, int], list[int]] = collections.defaultdict(lambda: [0, 0])
    for classes in per_kind.values():
        for cls, (n, right) in classes.items():
            firsts[cls][0] += n
            firsts[cls][1] += right
    print("first draft token right, by match length:")
    for (lo, hi), (n, right) in sorted(firsts.items()):
        span = f"{lo}+" if hi > 10**6 else f"{lo}-{hi}"
        print(f"  {span:>6s}: {right / n:.2f} of {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
