#!/usr/bin/env python3
"""Raw-socket clients for tests/e2e/test_door.sh (standard library only).

  door_clients.py raw PORT HEX-REQUEST HEADERS-FILE [WAIT]
      Sends the bytes (hex) and reads the answer until the server closes or
      WAIT seconds of silence: the status line and headers to HEADERS-FILE,
      the body to stdout.
  door_clients.py slowloris PORT SRC N INTERVAL SECONDS
      N connections from address SRC, each sending a header line one byte
      every INTERVAL seconds, for SECONDS.  Prints "open=K answered=A
      closed=C": connections still open at the end, ones that got an
      answer, ones the server closed.
  door_clients.py partial PORT SRC N HOLD
      N connections from SRC, each sending the headers of a POST with
      Content-Length 1000 and 10 bytes of the body.  Prints "refused=R
      accepted=A other=O" (R: 503 too_many_connections; A: no answer,
      waiting for the rest of the body), then keeps the connections open for
      HOLD seconds (or until stdin closes).
"""
import json
import select
import socket
import sys
import time


def connect(port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def complete(data):
    """A whole answer: headers and as many body bytes as Content-Length."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def read_answer(s, wait):
    """One answer: until it is complete, the peer closes, or `wait` seconds
    of silence."""
    data = b""
    while not complete(data):
        r, _, _ = select.select([s], [], [], wait)
        if not r:
            return data
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    return data


def raw(port, hexreq, hdrfile, wait=3.0):
    s = connect(port, "127.0.0.1")
    s.sendall(bytes.fromhex(hexreq))
    head, _, body = read_answer(s, float(wait)).partition(b"\r\n\r\n")
    with open(hdrfile, "wb") as f:
        f.write(head + b"\r\n\r\n" if head else b"")
    sys.stdout.buffer.write(body)
    s.close()


def slowloris(port, src, n, interval, seconds):
    line = b"GET /healthz HTTP/1.1\r\nHost: door\r\nX-Slow: " + b"a" * 10000
    socks = []
    for _ in range(n):
        s = connect(port, src)
        s.setblocking(False)
        socks.append(s)
    alive = {s: 0 for s in socks}
    answered = closed = 0
    end = time.monotonic() + seconds
    while alive and time.monotonic() < end:
        for s in list(alive):
            i = alive[s]
            try:
                s.send(line[i:i + 1])
                alive[s] = i + 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                closed += 1
                del alive[s]
                continue
            try:
                got = s.recv(4096)
                if got:
                    answered += 1
                else:
                    closed += 1
                del alive[s]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                closed += 1
                del alive[s]
        time.sleep(interval)
    print(f"open={len(alive)} answered={answered} closed={closed}", flush=True)
    for s in socks:
        s.close()


def partial(port, src, n, hold):
    head = (b"POST /auth/register HTTP/1.1\r\nHost: door\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    socks = []
    for _ in range(n):
        s = connect(port, src)
        s.sendall(head + b'{"email":"')
        socks.append(s)
    # Answers come at once for the refused; the others wait for their body.
    # Collect until nothing new arrives for a second.
    got = {}
    while True:
        ready, _, _ = select.select([s for s in socks if s not in got], [], [], 1.0)
        if not ready:
            break
        for s in ready:
            got[s] = read_answer(s, 0.2)
    refused = other = 0
    for data in got.values():
        head_, _, body = data.partition(b"\r\n\r\n")
        try:
            code = json.loads(body).get("error")
        except ValueError:
            code = None
        if head_.startswith(b"HTTP/1.1 503") and code == "too_many_connections":
            refused += 1
        else:
            other += 1
            sys.stderr.write("unexpected answer: %r\n" % data[:300])
    print(f"refused={refused} accepted={n - len(got)} other={other}", flush=True)
    select.select([sys.stdin], [], [], float(hold))
    for s in socks:
        s.close()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "raw":
        raw(int(args[0]), args[1], args[2], *args[3:])
    elif cmd == "slowloris":
        slowloris(int(args[0]), args[1], int(args[2]), float(args[3]), float(args[4]))
    elif cmd == "partial":
        partial(int(args[0]), args[1], int(args[2]), float(args[3]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
