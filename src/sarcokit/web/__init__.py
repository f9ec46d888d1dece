"""The sarcopenia clinic: server-rendered pages, an HTTP API and its storage."""
