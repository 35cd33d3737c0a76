"""The mutation suite: see __main__.py and mutants.toml."""
