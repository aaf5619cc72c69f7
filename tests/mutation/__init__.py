"""Mutation checks of the security defences: each defence listed in docs/security.md is removed in turn (a source
patch applied to a throwaway copy of the repository) and its named tests must then fail (``python -m
tests.mutation.run``, run by ``.ci/run``)."""
