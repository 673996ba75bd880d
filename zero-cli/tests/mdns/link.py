# The link the python-zeroconf peers use: IPv4 on 127.0.0.1, or with MDNS_IPV6_IFINDEX set,
# IPv6 only on that interface (and MDNS_ADDRESS as the host's address).
import os, socket
from zeroconf import Zeroconf, IPVersion

def zeroconf():
    index = os.environ.get("MDNS_IPV6_IFINDEX")
    if index:
        return Zeroconf(interfaces=[int(index)], ip_version=IPVersion.V6Only)
    return Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)

def address():
    text = os.environ.get("MDNS_ADDRESS", "127.0.0.1")
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    return socket.inet_pton(family, text)
