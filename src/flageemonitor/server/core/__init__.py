"""Settings, database plumbing, token security and log redaction."""
