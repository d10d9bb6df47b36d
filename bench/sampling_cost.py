"""The time a token spends in sampling, apart from its decode: plain text, plain text with a
frequency penalty, JSON mode (with and without the penalty) and a JSON schema, greedy.

One process, the default model, one sequence: it decodes json_speed.py's prompt and then
one token at a time up to --tokens, timing the sampler's pick (with the grammar check and
the closing budget's walk, as the engine does) and the decode apart; median of --runs.
Server-level tok/s on a shared machine is noisier than the sampling time it hides, which
this prints directly. Compare checkouts with --repo (run with this checkout's .venv; the
other checkout's src/ is imported instead):

    .venv/bin/python bench/sampling_cost.py --repo /work/main
    .venv/bin/python bench/sampling_cost.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

KINDS = {  # kind -> (json_mode, schema, frequency_penalty)
    "plain": (False, False, 0.0),
    "plain_penalty": (False, False, 1.0),
    "json_mode": (True, False, 1.0),
    "json_mode_no_penalty": (True, False, 0.0),
    "json_schema": (False, True, 0.0),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(args.repo.resolve() / "src"))

    import llama_cpp

    from browser_llm.core.types import ChatMessage, GenerationParams
    from browser_llm.engine.config import ContextConfig
    from browser_llm.engine.native.model import LlamaModel
    from browser_llm.engine.native.sampling import SamplerChain
    from browser_llm.grammar.closing import ClosingCatalog
    from browser_llm.grammar.json_schema import grammar_for
    from harness import default_model_path
    from json_speed import LONG_SCHEMA, PROMPT

    config = ContextConfig(
        context_size=2048, batch_size=512, threads=args.threads, gpu_layers=0, max_sequences=1
    )
    model = LlamaModel("bench", str(default_model_path()), config)
    catalog = ClosingCatalog(model)
    assert model.chat_template is not None
    text = model.chat_template.render([ChatMessage("user", PROMPT)], True)
    prompt = model.tokenize(text, True, True)
    source = Path(sys.modules["browser_llm"].__file__ or "").parent
    print(f"Browser LLM from {source}: ms per token, median of {args.runs} runs")

    def one_run(params: GenerationParams) -> tuple[int, float, float]:
        model.forget(0)
        grammar = params.grammar
        if grammar is not None and hasattr(model, "whitespace_merges"):
            sampler = SamplerChain(
                params, model.n_vocab, model.eog_tokens, model.vocab, model.whitespace_merges()
            )
        else:
            sampler = SamplerChain(params, model.n_vocab, model.eog_tokens, model.vocab)
        if grammar is not None and hasattr(sampler, "watch_repeats"):  # as the engine does
            from browser_llm.grammar.repeated_items import RepeatedItems

            sampler.watch_repeats(RepeatedItems(), model.piece)
        budget = catalog.budget(grammar) if grammar is not None else None
        tokens: Any = (llama_cpp.llama_token * len(prompt))(*prompt)
        llama_cpp.llama_decode(model.ctx, llama_cpp.llama_batch_get_one(tokens, len(prompt)))
        sampling = decoding = 0.0
        n = 0
        for i in range(args.tokens):
            started = time.perf_counter()
            if grammar is None:
                token = sampler.sample(model.ctx, -1)
            else:
                token = sampler.choose(model.ctx, -1)
                if model.is_eog(token):
                    break
                assert budget is not None
                if not budget.allows(model.piece(token), args.tokens - i - 1):
                    break
                sampler.accept(token)
            sampling += time.perf_counter() - started
            started = time.perf_counter()
            one: Any = (llama_cpp.llama_token * 1)(token)
            llama_cpp.llama_decode(model.ctx, llama_cpp.llama_batch_get_one(one, 1))
            decoding += time.perf_counter() - started
            n += 1
        sampler.free()
        return n, sampling, decoding

    for kind, (json_mode, schema, penalty) in KINDS.items():
        grammar = grammar_for(json_mode, LONG_SCHEMA if schema else None)
        params = GenerationParams(temperature=0.0, grammar=grammar, frequency_penalty=penalty)
        one_run(params)  # warm-up
        runs = [one_run(params) for _ in range(args.runs)]
        n = runs[0][0]
        sampling = statistics.median(r[1] for r in runs) / n * 1000
        decoding = statistics.median(r[2] for r in runs) / n * 1000
        print(f"{kind:22s} {n:4d} tokens  sampling {sampling:.3f}  decode {decoding:.3f}")
    model.free()
    return 0


if __name__ == "__main__":
    sys.exit(main())
