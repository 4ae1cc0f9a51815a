# Receives a service manager's sd_notify messages (systemd --user started with NOTIFY_SOCKET=<path>):
# binds the datagram socket at argv[1], prints "listening", then "READY=1" once the manager sends it, and exits.
import os
import socket
import sys

path = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
os.chmod(path, 0o777)  # the manager runs as another user
print("listening", flush=True)
while True:
    message = sock.recv(65536).decode(errors="replace")
    if "READY=1" in message.split("\n"):
        print("READY=1", flush=True)
        break
