"""SSH transport (asyncssh): sessions, pinned host keys, algorithm lists."""

from flageemonitor.proxy.ssh.session import Connector, ConnectSettings, SshSession, map_connect_error

__all__ = ["ConnectSettings", "Connector", "SshSession", "map_connect_error"]
