"""The host update engine: one implementation for Linux and Windows hosts.

It runs from the proxy image itself, in a one-shot container with the engine socket mounted (as
Watchtower runs), started by the thin host wrappers: `flageemonitor host update-image`,
`update-config`, `hold`, `explain-missing`. It talks to the Docker Engine API through the Docker
SDK for Python; the host's settings come from the installer's env file, read as data.

- `settings`: the env file and what the engine takes from it;
- `specs`: the containers the engine creates (runtime, Watchtower, hold), as data, with a digest
  that detects drift;
- `engine`: pull, compare, start `<runtime>-next`, wait for health, swap or roll back, Watchtower.
"""
