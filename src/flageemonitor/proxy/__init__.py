"""The proxy runtime: config store, daemon, pipeline, inventory, SSH, actions, CLI."""
