"""Grammars in pure Python: GBNF, its walker, JSON schema -> GBNF, closing, output checks."""
