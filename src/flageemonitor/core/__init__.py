"""Pure logic with no I/O: names, rollout, compatibility, config model, host naming."""
