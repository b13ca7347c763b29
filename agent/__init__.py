"""EdgeTally agent: the daemon and its parts (model, identify, rules, outbox, sync)."""
