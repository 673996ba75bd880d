"""MQTT 5 scenarios run by paho-mqtt (an independent client) against a broker on 127.0.0.1:PORT.

Usage: python3 paho_v5.py PORT. Prints one line per scenario; exits non-zero on the first failure.
Works with paho-mqtt 1.6 (Debian) and 2.x.
"""

import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

PORT = int(sys.argv[1])
TIMEOUT = 5.0


class Client:
    """A paho client that records what it receives."""

    def __init__(self, client_id, clean_start=True, expiry=None, alias_maximum=None):
        try:
            self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id, protocol=mqtt.MQTTv5)
        except AttributeError:  # paho 1.x
            self.c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)
        self.messages = []
        self.connack = None
        self.cond = threading.Condition()
        self.c.on_message = self._on_message
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda *a: self._notify()
        props = Properties(PacketTypes.CONNECT)
        if expiry is not None:
            props.SessionExpiryInterval = expiry
        if alias_maximum is not None:
            props.TopicAliasMaximum = alias_maximum
        self.c.connect("127.0.0.1", PORT, keepalive=30, clean_start=clean_start, properties=props)
        self.c.loop_start()
        self.wait(lambda: self.connack is not None, "CONNACK")

    def _notify(self):
        with self.cond:
            self.cond.notify_all()

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        with self.cond:
            self.connack = (flags.get("session present", 0), rc)
            self.cond.notify_all()

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def wait(self, pred, what):
        with self.cond:
            if not self.cond.wait_for(pred, TIMEOUT):
                raise AssertionError(f"timed out waiting for {what}; got {len(self.messages)} messages")

    def subscribe(self, topic, qos=1, sub_id=None, **options):
        props = None
        if sub_id is not None:
            props = Properties(PacketTypes.SUBSCRIBE)
            props.SubscriptionIdentifier = sub_id
        rc, mid = self.c.subscribe(topic, options=SubscribeOptions(qos=qos, **options), properties=props)
        assert rc == 0, rc
        time.sleep(0.2)  # SUBACK comes back on the loop thread

    def publish(self, topic, payload, qos=1, props=None):
        info = self.c.publish(topic, payload, qos=qos, properties=props)
        if qos > 0:
            info.wait_for_publish(TIMEOUT)
        assert info.rc == 0, info.rc

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def request_response_properties():
    sub = Client("props-sub")
    sub.subscribe("req/#", qos=2, sub_id=42)
    sub.subscribe("req/+", qos=1, sub_id=7)
    pub = Client("props-pub")
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "resp/1"
    props.CorrelationData = b"\x01\x02corr"
    props.ContentType = "application/json"
    props.UserProperty = [("trace", "abc"), ("trace", "def")]
    props.MessageExpiryInterval = 60
    pub.publish("req/a", b'{"q":1}', qos=2, props=props)
    sub.wait(lambda: len(sub.messages) >= 1, "the request")
    time.sleep(0.2)
    assert len(sub.messages) == 1, f"overlapping subscriptions gave {len(sub.messages)} copies"
    m = sub.messages[0]
    p = m.properties
    assert m.qos == 2, m.qos
    assert sorted(p.SubscriptionIdentifier) == [7, 42], p.SubscriptionIdentifier
    assert p.ResponseTopic == "resp/1" and p.CorrelationData == b"\x01\x02corr", p
    assert p.ContentType == "application/json", p
    assert p.UserProperty == [("trace", "abc"), ("trace", "def")], p.UserProperty
    assert 0 < p.MessageExpiryInterval <= 60, p.MessageExpiryInterval
    sub.close()
    pub.close()


def shared_subscription_fairness():
    workers = [Client(f"worker-{i}") for i in range(2)]
    for w in workers:
        w.subscribe("$share/pool/jobs", qos=1)
    pub = Client("boss")
    for i in range(10):
        pub.publish("jobs", f"job {i}".encode(), qos=1)
    for w in workers:
        w.wait(lambda w=w: len(w.messages) >= 5, "five jobs each")
    time.sleep(0.2)
    counts = [len(w.messages) for w in workers]
    assert counts == [5, 5], counts
    for c in workers + [pub]:
        c.close()


def no_local():
    me = Client("me")
    me.subscribe("chat", qos=0, noLocal=True)
    me.publish("chat", b"my own", qos=0)
    other = Client("other")
    other.publish("chat", b"theirs", qos=1)
    me.wait(lambda: len(me.messages) >= 1, "the other client's message")
    time.sleep(0.2)
    assert [m.payload for m in me.messages] == [b"theirs"], [m.payload for m in me.messages]
    me.close()
    other.close()


def session_resume():
    c = Client("persist", clean_start=True, expiry=60)
    c.subscribe("offline/t", qos=1)
    c.close()
    pub = Client("feeder")
    for i in range(3):
        pub.publish("offline/t", f"missed {i}".encode(), qos=1)
    pub.close()
    c = Client("persist", clean_start=False, expiry=60)
    assert c.connack[0] == 1, f"session present: {c.connack}"
    c.wait(lambda: len(c.messages) >= 3, "the missed messages")
    assert [m.payload for m in c.messages] == [b"missed 0", b"missed 1", b"missed 2"]
    c.close()


def topic_alias():
    sub = Client("alias-sub")
    sub.subscribe("a/very/long/topic/name", qos=0)
    pub = Client("alias-pub")
    props = Properties(PacketTypes.PUBLISH)
    props.TopicAlias = 1
    pub.publish("a/very/long/topic/name", b"first", qos=1, props=props)
    pub.publish("", b"second", qos=1, props=props)
    sub.wait(lambda: len(sub.messages) >= 2, "both aliased messages")
    assert [(m.topic, m.payload) for m in sub.messages] == [
        ("a/very/long/topic/name", b"first"),
        ("a/very/long/topic/name", b"second"),
    ]
    sub.close()
    pub.close()


def topic_aliases_from_the_broker():
    """The broker names topics by alias to a client that allows them (at most 2 here); paho
    hands aliased messages over as they came, so they are resolved here as a client must."""
    sub = Client("alias-receiver", alias_maximum=2)
    sub.subscribe("plant/#", qos=1)
    pub = Client("alias-sender")
    sent = [f"plant/line-{i % 3}/temperature" for i in range(12)]
    for i, topic in enumerate(sent):
        pub.publish(topic, str(i).encode(), qos=1)
    sub.wait(lambda: len(sub.messages) >= len(sent), "every message")
    aliases, resolved, by_alias = {}, [], 0
    for m in sub.messages:
        alias = getattr(m.properties, "TopicAlias", None)
        assert alias is None or 1 <= alias <= 2, f"alias {alias} beyond the maximum of 2"
        if m.topic:
            if alias is not None:
                aliases[alias] = m.topic
            resolved.append(m.topic)
        else:
            assert alias in aliases, f"alias {alias} used before it was assigned"
            resolved.append(aliases[alias])
            by_alias += 1
    assert resolved == sent, resolved
    # Three topics round-robin through two aliases: every one is reassigned, none reused.
    assert by_alias == 0, by_alias
    pub.publish("plant/line-0/temperature", b"again", qos=1)
    pub.publish("plant/line-0/temperature", b"and again", qos=1)
    sub.wait(lambda: len(sub.messages) >= len(sent) + 2, "the repeats")
    last = sub.messages[-1]
    assert last.topic == "" and last.properties.TopicAlias in aliases, (last.topic, last.properties)
    sub.close()
    pub.close()


for scenario in [
    request_response_properties,
    shared_subscription_fairness,
    no_local,
    session_resume,
    topic_alias,
    topic_aliases_from_the_broker,
]:
    scenario()
    print(f"ok {scenario.__name__}", flush=True)
print("all scenarios passed")
