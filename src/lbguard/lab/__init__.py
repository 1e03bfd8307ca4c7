"""Lab harness: real HAProxy and NGINX processes, backends and traffic on 127.0.0.1.

Everything it starts listens on or connects to loopback addresses only, is bounded in
time, and stops at the end of its ``with`` block or at interpreter exit.
"""

from lbguard.lab.backends import Backends, BackendSpec, RecordedRequest
from lbguard.lab.errors import LabError
from lbguard.lab.generator import RequestSpec, Result, TrafficGenerator, count_servers
from lbguard.lab.products import (
    HAProxyProcess,
    NginxProcess,
    ProductProcess,
    child_pids,
    find_binary,
    free_port,
    nginx_config,
)
from lbguard.lab.syslog import SyslogReceiver

__all__ = [
    "BackendSpec",
    "Backends",
    "HAProxyProcess",
    "LabError",
    "NginxProcess",
    "ProductProcess",
    "RecordedRequest",
    "RequestSpec",
    "Result",
    "SyslogReceiver",
    "TrafficGenerator",
    "child_pids",
    "count_servers",
    "find_binary",
    "free_port",
    "nginx_config",
]
