"""The `flageemonitor` command line."""
