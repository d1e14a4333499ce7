"""The fleet web pages: server-rendered Jinja2 (autoescaped), signed-in people only."""
