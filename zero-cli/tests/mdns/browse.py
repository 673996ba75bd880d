# python-zeroconf browsing TYPE for SECONDS, printing what it finds (the peer of zero-cli/tests/mdns.rs; link.py says where).
import sys, time
from zeroconf import ServiceBrowser
from link import zeroconf
zc = zeroconf()
found = {}
class L:
    def add_service(self, zc, t, name):
        info = zc.get_service_info(t, name, timeout=2000)
        found[name] = info
        print("added", name, info.port if info else None, info.properties if info else None, info.parsed_addresses() if info else None, flush=True)
    def remove_service(self, zc, t, name): print("removed", name, flush=True)
    def update_service(self, zc, t, name): pass
ServiceBrowser(zc, sys.argv[1], L())
time.sleep(float(sys.argv[2]))
zc.close()
