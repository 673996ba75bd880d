# python-zeroconf announcing NAME TYPE PORT for SECONDS (the peer of zero-cli/tests/mdns.rs; link.py says where).
import os, sys, time
from zeroconf import ServiceInfo
from link import zeroconf, address
zc = zeroconf()
name, kind, port, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
info = ServiceInfo(kind, f"{name}.{kind}", addresses=[address()], port=port, properties={"from": "python"}, server=os.environ.get("MDNS_SERVER", "pyhost.local."))
zc.register_service(info)
print("registered", flush=True)
time.sleep(secs)
zc.unregister_service(info)
zc.close()
