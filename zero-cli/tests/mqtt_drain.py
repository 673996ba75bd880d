"""paho-mqtt (an independent client) as the load of zero-cli's SIGTERM test.

Usage:
  python3 mqtt_drain.py sub PORT CLIENT_ID TOPIC
      A persistent QoS 1 subscriber (MQTT 3.1.1, clean session off) that reconnects whenever
      it loses the broker and prints each payload it receives on a line of its own.
  python3 mqtt_drain.py pub PORT CLIENT_ID TOPIC
      An MQTT 5 publisher sending numbered QoS 1 messages (at most 50 unacknowledged) until
      the broker disconnects it; then prints `acked N1 N2 ...` (every message the broker
      acknowledged) and `disconnect REASON` (the reason code of the broker's DISCONNECT, or
      `none`).
Works with paho-mqtt 1.6 (Debian) and 2.x.
"""

import sys
import threading
import time

import paho.mqtt.client as mqtt

MODE, PORT, CLIENT_ID, TOPIC = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def client(protocol, clean):
    kwargs = {"client_id": CLIENT_ID, "protocol": protocol}
    if protocol != mqtt.MQTTv5:
        kwargs["clean_session"] = clean
    try:
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, **kwargs)
    except AttributeError:  # paho 1.x
        return mqtt.Client(**kwargs)


def subscribe():
    c = client(mqtt.MQTTv311, clean=False)
    c.on_connect = lambda c, u, flags, rc: c.subscribe(TOPIC, qos=1)

    def on_message(c, u, msg):
        print(msg.payload.decode(), flush=True)

    c.on_message = on_message
    c.reconnect_delay_set(min_delay=1, max_delay=1)
    c.connect("127.0.0.1", PORT, keepalive=30)
    print("subscribing", flush=True)
    c.loop_forever(retry_first_connection=True)


def publish():
    c = client(mqtt.MQTTv5, clean=True)
    reason = []
    gone = threading.Event()
    room = threading.Semaphore(50)  # a token per message that may be unacknowledged

    def on_disconnect(c, u, rc, properties=None):
        reason.append(getattr(rc, "value", rc))
        gone.set()
        room.release()

    c.on_publish = lambda c, u, mid: room.release()
    c.on_disconnect = on_disconnect
    c.max_inflight_messages_set(50)
    c.connect("127.0.0.1", PORT, keepalive=30)
    c.loop_start()
    sent, deadline = [], time.time() + 60
    print("publishing", flush=True)
    while time.time() < deadline and not gone.is_set():
        if room.acquire(timeout=1) and not gone.is_set():
            n = len(sent) + 1
            sent.append((n, c.publish(TOPIC, str(n), qos=1)))
    c.loop_stop()
    # A publish made as the connection went down has an error code: never acknowledged.
    acked = [n for n, info in sent if info.rc == mqtt.MQTT_ERR_SUCCESS and info.is_published()]
    print("acked " + " ".join(str(n) for n in acked), flush=True)
    print(f"disconnect {reason[0] if reason else 'none'}", flush=True)


subscribe() if MODE == "sub" else publish()
