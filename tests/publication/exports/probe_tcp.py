"""Run inside a test namespace: listen on ARGV[1] and connect to it from each source address.

Prints {"source": true|false} as JSON: false when the SYN got no answer within a second
(dropped by the firewall under test).
"""

import json
import socket
import sys

server, sources = sys.argv[1], sys.argv[2:]
family = socket.AF_INET6 if ":" in server else socket.AF_INET
listener = socket.socket(family, socket.SOCK_STREAM)
listener.bind((server, 0))
listener.listen(16)
port = listener.getsockname()[1]
result = {}
for source in sources:
    client = socket.socket(family, socket.SOCK_STREAM)
    client.settimeout(1.0)
    client.bind((source, 0))
    try:
        client.connect((server, port))
        result[source] = True
    except OSError:
        result[source] = False
    finally:
        client.close()
print(json.dumps(result))
