# python-zeroconf announcing NAME TYPE PORT for SECONDS on 127.0.0.1 (the peer of zero-cli/tests/mdns.rs).
import sys, time, socket
from zeroconf import Zeroconf, ServiceInfo, IPVersion
zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
name, kind, port, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
info = ServiceInfo(kind, f"{name}.{kind}", addresses=[socket.inet_aton("127.0.0.1")], port=port, properties={"from": "python"}, server="pyhost.local.")
zc.register_service(info)
print("registered", flush=True)
time.sleep(secs)
zc.unregister_service(info)
zc.close()
