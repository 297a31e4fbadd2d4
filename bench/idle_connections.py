#!/usr/bin/python3
"""Opens N TLS keep-alive connections to a server, completes one request on each so that the
server holds a fully set-up session, then keeps them idle for a moment and prints the server's
RSS growth per connection.

Usage: idle_connections.py PORT CA_FILE SERVER_PID COUNT
"""
import socket
import ssl
import sys
import time

port, ca, pid, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def rss_kib():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


context = ssl.create_default_context(cafile=ca)
before = rss_kib()
connections = []
for _ in range(count):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = context.wrap_socket(sock, server_hostname="localhost")
    tls.sendall(b"GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n")
    tls.recv(4096)  # the server answers (404 or 401) and keeps the connection open
    connections.append(tls)
time.sleep(2)
after = rss_kib()
print("idle TLS connections: %d, server RSS %d KiB -> %d KiB, %.1f KiB per connection"
      % (count, before, after, (after - before) / count))
for tls in connections:
    tls.close()
