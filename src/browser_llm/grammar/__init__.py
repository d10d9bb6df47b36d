"""Grammars in pure Python (never llama.cpp): GBNF, its walker, JSON schema -> GBNF, closing JSON in budget, and checks of the output."""
