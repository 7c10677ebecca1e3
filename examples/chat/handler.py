"""One WebSocket-over-HTTP request of the chat, handled by a process that lives only for it.

`server.py` runs this script once per POST from the GRIP proxy: the request body (WebSocket events,
e.g. `OPEN\\r\\n` or `TEXT 2\\r\\nhi\\r\\n`) arrives on stdin, the request headers in CGI-style
environment variables (HTTP_CONNECTION_ID, ...), and the CGI response (headers, blank line, events)
goes to stdout. The process keeps no state: the proxy holds the subscriptions.

- OPEN: accept the connection, turn GRIP on (`Sec-WebSocket-Extensions: grip`) and subscribe it to
  channel `room` with a `c:` control message.
- TEXT: publish the text as a `ws-message` to `room` through the proxy's publish API, so every
  connection in the room, the sender's included, receives it.
- PING: answer PONG with the same payload. CLOSE: answer CLOSE, which completes the close handshake.

GRIP_URL names the publish API (default http://localhost:5561), e.g.
`http://localhost:5561?iss=realm&key=base64:...` when the proxy requires a signed token.
"""

import os
import sys

from gripcontrol import (
    GripPubControl,
    WebSocketEvent,
    WebSocketMessageFormat,
    decode_websocket_events,
    encode_websocket_events,
    parse_grip_uri,
    websocket_control_message,
)
from pubcontrol import Item

CHANNEL = "room"
EVENTS_TYPE = "application/websocket-events"
# The proxy's outbound buffer is 200000 bytes; a longer message could never have been sent.
MAX_TEXT = 200_000


def publish(texts):
    """Publishes each text to the room, in order; returns once the publish API has accepted them."""
    pub = GripPubControl(parse_grip_uri(os.environ.get("GRIP_URL", "http://localhost:5561")))
    try:
        for text in texts:
            # blocking=True raises on a refused or failed publish, so the proxy sees an error
            # instead of a message silently lost.
            pub.publish(CHANNEL, Item(WebSocketMessageFormat(text)), blocking=True)
    finally:
        pub.close()


def respond(events_in):
    """The events to answer with, and the headers of the response."""
    out = []
    headers = [("Content-Type", EVENTS_TYPE)]
    texts = []
    for e in events_in:
        if e.type == "OPEN":
            out.append(WebSocketEvent("OPEN"))
            headers.append(("Sec-WebSocket-Extensions", "grip"))
            control = websocket_control_message("subscribe", {"channel": CHANNEL})
            out.append(WebSocketEvent("TEXT", "c:" + control))
        elif e.type == "TEXT":
            text = (e.content or b"").decode("utf-8", errors="replace")
            if text.strip():
                texts.append(text[:MAX_TEXT])
        elif e.type == "PING":
            out.append(WebSocketEvent("PONG", e.content))
        elif e.type == "CLOSE":
            # Echo the close code (first two bytes) to complete the close handshake.
            out.append(WebSocketEvent("CLOSE", e.content[:2] if e.content else None))
        # BINARY, PONG and DISCONNECT need no answer.
    if texts:
        publish(texts)
    return headers, out


def main():
    body = sys.stdin.buffer.read()
    try:
        events_in = decode_websocket_events(body)
    except ValueError as e:
        sys.stdout.write(f"Status: 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n{e}\n")
        return 0
    headers, out = respond(events_in)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    sys.stdout.buffer.write(head.encode("latin-1") + encode_websocket_events(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
