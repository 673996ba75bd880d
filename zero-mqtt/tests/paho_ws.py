"""paho-mqtt over WebSocket against a broker: PORT_TCP is its MQTT port, PORT_WS its WebSocket
port. A paho subscriber on WebSocket receives what paho publishes on TCP and the other way
round, at every QoS, in MQTT 3.1.1 and 5. Prints one "ok" line per scenario."""

import sys
import threading
import time

import paho.mqtt.client as mqtt

TCP, WS = int(sys.argv[1]), int(sys.argv[2])
TIMEOUT = 5.0


def client(name, transport, port, protocol):
    kwargs = dict(client_id=name, protocol=protocol, transport=transport)
    try:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, **kwargs)
    except AttributeError:  # paho 1.x
        c = mqtt.Client(**kwargs)
    if transport == "websockets":
        c.ws_set_options(path="/mqtt")
    got, cond, connected = [], threading.Condition(), threading.Event()

    def on_message(_c, _u, msg):
        with cond:
            got.append((msg.topic, msg.payload, msg.qos))
            cond.notify_all()

    c.on_message = on_message
    c.on_connect = lambda *a, **k: connected.set()
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    assert connected.wait(TIMEOUT), f"{name}: no CONNACK over {transport}"
    return c, got, cond


for protocol, label in [(mqtt.MQTTv311, "3.1.1"), (mqtt.MQTTv5, "5")]:
    for sub_transport, pub_transport in [("websockets", "tcp"), ("tcp", "websockets"), ("websockets", "websockets")]:
        sub_port = WS if sub_transport == "websockets" else TCP
        pub_port = WS if pub_transport == "websockets" else TCP
        sub, got, cond = client(f"ws-sub-{label}-{sub_transport}", sub_transport, sub_port, protocol)
        sub.subscribe("ws/#", qos=2)
        pub, _, _ = client(f"ws-pub-{label}-{pub_transport}", pub_transport, pub_port, protocol)
        time.sleep(0.3)  # the SUBACK, and the subscription reaching every shard
        sent = []
        for i in range(30):
            qos = i % 3
            payload = (f"{label} {i} " + "x" * (i * 997)).encode()  # up to ~29 KB
            pub.publish(f"ws/{i}", payload, qos=qos).wait_for_publish(TIMEOUT)
            sent.append((f"ws/{i}", payload, qos))
        with cond:
            assert cond.wait_for(lambda: len(got) >= len(sent), TIMEOUT), f"{len(got)} of {len(sent)} arrived"
        # paho hands over an incoming QoS 2 message at PUBREL, so QoS 2 ones may come later.
        assert sorted(got) == sorted(sent), f"messages differ: {[(t, len(p), q) for t, p, q in got]}"
        assert [m for m in got if m[2] < 2] == [m for m in sent if m[2] < 2], "QoS 0/1 order changed"
        for c in (sub, pub):
            c.disconnect()
            c.loop_stop()
        print(f"ok MQTT {label} {pub_transport} -> {sub_transport}", flush=True)
print("all scenarios passed")
