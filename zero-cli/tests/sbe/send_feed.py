#!/usr/bin/env python3
"""Sends a recorded MDP 3.0 feed over multicast, from 127.0.0.1 on the loopback interface:
each record of FILE is one byte (0 feed A, 1 feed B, 2 the snapshot loop), a little-endian
u16 length, and the datagram.

    send_feed.py FILE GROUP_A:PORT GROUP_B:PORT GROUP_SNAPSHOT:PORT
"""
import socket
import struct
import sys
import time


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main():
    data = open(sys.argv[1], "rb").read()
    targets = [addr(a) for a in sys.argv[2:5]]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    at, sent = 0, 0
    while at < len(data):
        which, length = data[at], struct.unpack_from("<H", data, at + 1)[0]
        s.sendto(data[at + 3:at + 3 + length], targets[which])
        at += 3 + length
        sent += 1
        if sent % 50 == 0:
            time.sleep(0.001)
    print(sent, flush=True)


main()
