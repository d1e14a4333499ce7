"""The endpoint agent: its bundle (source, checksums, cache), its layout on the endpoint, and
the install / update-config / uninstall plans built on the change model (`proxy.changes`)."""
