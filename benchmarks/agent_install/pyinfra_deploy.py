"""The agent install as a pyinfra deploy: files.put (checksum-aware), server.shell for the unpack
and setup when the archive changed, files.template for the agent config, a restart when the
config or an asset changed."""

import os

from pyinfra import host
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

REPO = os.environ["BENCH_REPO"]
ASSETS = [("geral.conf", "/ariusmonitor/conf/zabbix_agentd.conf.d/geral.conf", "644"),
          ("MonitoraSATc", "/ariusmonitor/MonitoraSATc", "755"),
          ("MonitoraSATc64", "/ariusmonitor/MonitoraSATc64", "755"),
          ("MonitoraSAT.sh", "/ariusmonitor/MonitoraSAT.sh", "755"),
          ("MonitoraImpressora", "/ariusmonitor/MonitoraImpressora", "755"),
          ("MonitoraImpressora64", "/ariusmonitor/MonitoraImpressora64", "755"),
          ("libs.tar.gz", "/ariusmonitor/libs.tar.gz", "644")]

bundle = files.put(name="bundle archive", src=f"{REPO}/ariusmonitor.tar.gz", dest="/tmp/ariusmonitor.tar.gz",
                   mode="600")
server.shell(name="unpack and setup", commands=["tar -xzf /tmp/ariusmonitor.tar.gz -C /",
                                                "sh /ariusmonitor/utilities/setup.sh"], _if=bundle.did_change)
puts = [files.put(name=f"asset {name}", src=f"{REPO}/{name}", dest=dest, mode=mode) for name, dest, mode in ASSETS]
conf = files.template(name="agent config", src=os.path.join(os.path.dirname(__file__), "zabbix_agentd.conf.j2"),
                      dest="/ariusmonitor/conf/zabbix_agentd.conf", mode="644", proxy_ip="127.0.0.1",
                      tech_name=host.data.tech_name, agent_port=host.data.agent_port)
server.shell(name="restart agent", commands=["sh /ariusmonitor/utilities/start.sh"], _if=any_changed(conf, *puts))
