"""Stage 1 of the install: idempotent steps, each checking before it acts (re-run = upgrade)."""
