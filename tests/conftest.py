"""Shared pytest configuration: fixture plugins that start real components."""

pytest_plugins = [
    "tests.fixtures.sshd",
    "tests.fixtures.postgres",
    "tests.fixtures.server",
    "tests.fixtures.zabbix",
    "tests.fixtures.oci",
    "tests.fixtures.browser",
    "tests.fixtures.mariadb",
    "tests.fixtures.bi",
    "tests.fixtures.agent_bundle",
]
