"""The AriusMonitor endpoint agent bundle builder (an operator tool; see build.py and
deploy/agent-bundle/LAYOUT.md). Not part of the installed product."""
