"""All SQL of the catalogue. Each function takes an `AsyncConnection`; callers own transactions."""
