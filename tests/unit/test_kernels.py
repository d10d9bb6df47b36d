"""The installed llama.cpp is the Makefile's build, with its patches."""

from browser_llm.engine.native.ggml.kernels import batch_invariant_attention


def test_the_build_rounds_a_lone_attention_row_as_in_a_batch() -> None:
    assert batch_invariant_attention()
