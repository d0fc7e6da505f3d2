"""The pure kernel: ids, clock, money, errors, actors, pagination. Imports nothing of ours."""
