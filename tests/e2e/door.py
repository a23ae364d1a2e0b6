# Raw HTTP clients for tests/e2e/test_apache.sh (python3, standard library).
#   door.py raw PORT SRC TIMEOUT < request-bytes > response-bytes
#   door.py slowloris PORT N SRC PROBE_SRC SECONDS OUT_DIR   (summary JSON)
#   door.py flood PORT N SRC PROBE_SRC OUT_DIR               (summary JSON)
import json, os, select, socket, sys, threading, time

def connect(port, src, timeout=10.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s

def read_all(s, timeout):
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return out, "eof"
            out += d
    except socket.timeout:
        return out, "timeout"
    except ConnectionResetError:
        return out, "reset"

def closed(s):
    """True once the server has closed or reset the connection."""
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        return False
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True

def status(resp):
    line = resp.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0

def probe(port, src):
    t = time.monotonic()
    try:
        s = connect(port, src, 30)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        resp, _ = read_all(s, 30)
        s.close()
    except OSError:
        resp = b""
    return status(resp), round((time.monotonic() - t) * 1000)

def raw(port, src, timeout):
    s = connect(port, src)
    s.sendall(sys.stdin.buffer.read())
    resp, _ = read_all(s, timeout)
    sys.stdout.buffer.write(resp)

def slowloris(port, n, src, probe_src, seconds, out_dir):
    # A header byte every 3 s on each connection, after the request line.
    start = time.monotonic()
    socks = []
    for i in range(n):
        s = connect(port, src)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
        socks.append(s)
    time.sleep(1.5)
    alive = [s for s in socks if not closed(s)]
    stop = threading.Event()
    def drip():
        while not stop.wait(3):
            for s in alive:
                try:
                    s.send(b"a")
                except OSError:
                    pass
    t = threading.Thread(target=drip, daemon=True)
    t.start()
    probes = [probe(port, probe_src) for _ in range(5)]
    still = sum(1 for s in alive if not closed(s))
    # Keep dripping until the server's header timeout ends them.
    answers, first = {}, None
    deadline = start + seconds
    for s in alive:
        resp, _ = read_all(s, max(0.1, deadline - time.monotonic()))
        code = status(resp) if resp else 0
        answers[code] = answers.get(code, 0) + 1
        if code and first is None:
            first = resp
            with open(os.path.join(out_dir, "slowloris.raw"), "wb") as f:
                f.write(resp)
    stop.set()
    for s in socks:
        s.close()
    json.dump({"opened": n, "refused": n - len(alive), "held": len(alive),
               "held_after_probes": still,
               "probe_status": [p[0] for p in probes], "probe_ms": [p[1] for p in probes],
               "answers": {str(k): v for k, v in answers.items()},
               "ended_after_s": round(time.monotonic() - start, 1)}, sys.stdout)

def flood(port, n, src, probe_src, out_dir):
    # n connections open at once, each with its first byte sent (that is
    # when mod_qos counts it); then a probe from another address; then the
    # rest of a request on every connection still open.
    socks = []
    for i in range(n):
        s = connect(port, src)
        s.sendall(b"G")
        socks.append(s)
    time.sleep(1.5)
    alive = [s for s in socks if not closed(s)]
    p = probe(port, probe_src)
    for i, s in enumerate(alive):
        try:
            s.sendall(b"ET /healthz HTTP/1.1\r\nHost: flood\r\nX-Request-ID: flood-%d\r\nConnection: close\r\n\r\n" % i)
        except OSError:
            pass
    codes = {}
    for s in alive:
        resp, _ = read_all(s, 30)
        code = status(resp)
        codes[code] = codes.get(code, 0) + 1
        if code == 503 and not os.path.exists(os.path.join(out_dir, "flood503.raw")):
            with open(os.path.join(out_dir, "flood503.raw"), "wb") as f:
                f.write(resp)
    for s in socks:
        s.close()
    json.dump({"opened": n, "refused": n - len(alive), "held": len(alive),
               "probe_status": p[0], "probe_ms": p[1],
               "answers": {str(k): v for k, v in codes.items()}}, sys.stdout)

mode, port = sys.argv[1], int(sys.argv[2])
if mode == "raw":
    raw(port, sys.argv[3], float(sys.argv[4]))
elif mode == "slowloris":
    slowloris(port, int(sys.argv[3]), sys.argv[4], sys.argv[5], float(sys.argv[6]), sys.argv[7])
elif mode == "flood":
    flood(port, int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])
