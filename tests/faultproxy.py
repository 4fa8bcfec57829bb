#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for the S3 tests: it sits on 127.0.0.1
between gitwal and the test radosgw and, per request, forwards it or does
what a failing store or network does.

  faultproxy.py UPSTREAM_HOST:PORT DIR

listens on a free port of 127.0.0.1, writes it to DIR/port once it accepts
connections, and takes its orders from DIR/rules.json, read again whenever
the file changes (write a new one and rename it over the old: the switch is
atomic). The file holds a list of rules; the first that matches a request
acts on it, and a request no rule matches is forwarded. A rule:

  {"fault": KIND, "method": "PUT", "path": "regex", "count": N,
   "seconds": S, "delay": D, "status": 503, "forward": false}

  method, path  which requests it takes (path: re.search on the request
                target, query included); every request when absent
  count         how many requests it takes, then it is spent; no limit
                when absent
  seconds       how long it lasts from when the file was read; no limit
                when absent

KIND is one of
  refuse  no listening socket for `seconds` (connections are refused, as by
          a stopped server), and connections already open are reset when
          their next request comes; with method or path, the window opens
          at the first request they match (its connection is reset)
  reset   the connection is reset (RST) halfway: in the request's body when
          it has one, else halfway through the answer's body
  drop    the request goes to the server and its answer is read, then the
          connection is closed without a byte of it: a lost response
  status  answers `status` (500 by default) with an S3 error document; with
          "forward": true the request goes to the server first (it may have
          done the work), and its answer is replaced
  delay   waits `delay` seconds (1 by default), then forwards
  stall   reads what is sent and never answers (the connection stays open);
          with "forward": true the request is forwarded and the answer stops
          halfway through its body instead

DIR/log gets one line per request: "req METHOD TARGET" when it reaches the
server, "fault KIND METHOD TARGET" when a rule took it (flushed at once, so a
test can wait for a line). Stdlib only; one process per test.
"""
import asyncio
import json
import os
import re
import socket
import struct
import sys
import time

MAX_HEAD = 64 * 1024
READ = 256 * 1024


class Rules:
    def __init__(self, path):
        self.path = path
        self.sig = None
        self.rules = []

    def load(self):
        try:
            st = os.stat(self.path)
            sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            sig = None
        if sig == self.sig:
            return
        self.sig = sig
        self.rules = []
        if sig is None:
            return
        with open(self.path) as f:
            text = f.read().strip()
        doc = json.loads(text) if text else []
        if isinstance(doc, dict):
            doc = [doc]
        now = time.monotonic()
        for r in doc:
            r = dict(r)
            # A refusal with a filter waits for its first request (match) to open its window.
            r["armed"] = r.get("fault") == "refuse" and bool(r.get("method") or r.get("path"))
            if r.get("seconds") is not None and not r["armed"]:
                r["until"] = now + float(r["seconds"])
            r["re"] = re.compile(r["path"]) if r.get("path") else None
            self.rules.append(r)

    def live(self, r):
        return (r.get("count") is None or r["count"] > 0) and (r.get("until") is None or time.monotonic() < r["until"])

    def match(self, method, target):
        self.load()
        for r in self.rules:
            if not self.live(r):
                continue
            if r.get("method") and r["method"] != method:
                continue
            if r["re"] and not r["re"].search(target):
                continue
            if r.get("count") is not None:
                r["count"] -= 1
            if r["armed"]:
                r["armed"] = False
                r["until"] = time.monotonic() + float(r.get("seconds", 1))
            return r
        return None

    def refusing(self):
        self.load()
        for r in self.rules:
            if r.get("fault") == "refuse" and not r["armed"] and self.live(r):
                return r
        return None


class Proxy:
    def __init__(self, upstream, d):
        host, port = upstream.rsplit(":", 1)
        self.up = (host, int(port))
        self.dir = d
        self.rules = Rules(os.path.join(d, "rules.json"))
        self.log = open(os.path.join(d, "log"), "a", buffering=1)
        self.server = None
        self.port = 0
        self.writers = set()

    def note(self, line):
        self.log.write("%.6f %s\n" % (time.time(), line))

    async def listen(self):
        self.server = await asyncio.start_server(self.client, "127.0.0.1", self.port, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    async def watch(self):
        """Closes the listening socket while a refuse rule lasts."""
        while True:
            r = self.rules.refusing()
            if r and self.server:
                self.server.close()
                self.server = None
                self.note("fault refuse - listener closed")
                for w in list(self.writers):
                    reset(w)
            elif not r and not self.server:
                await self.listen()
                self.note("refuse over - listening again")
            await asyncio.sleep(0.02)

    async def client(self, reader, writer):
        self.writers.add(writer)
        up = None
        try:
            while True:
                head = await read_head(reader)
                if head is None:
                    break
                line, headers = parse_head(head)
                method, target = line.split(" ")[:2]
                length = int(header(headers, "content-length") or 0)
                if header(headers, "transfer-encoding"):
                    raise ValueError("chunked requests are not supported")
                if self.rules.refusing():
                    self.note("fault refuse %s %s" % (method, target))
                    reset(writer)
                    return
                rule = self.rules.match(method, target)
                kind = rule["fault"] if rule else None
                # No "100 Continue": the client sends its body anyway (gitwal does not wait for it),
                # and an answer lost before any byte of it is what makes libcurl resend on its own.
                headers = [h for h in headers if h[0].lower() != "expect"]
                if kind:
                    self.note("fault %s %s %s" % (kind, method, target))
                if kind == "refuse":
                    reset(writer)
                    return
                if kind in ("reset", "stall") and length and not (kind == "stall" and rule.get("forward")):
                    if kind == "reset":
                        await reader.readexactly(max(1, length // 2))
                        reset(writer)
                        return
                    while await reader.read(READ):
                        pass
                    return
                if kind == "stall" and not rule.get("forward"):
                    while await reader.read(READ):
                        pass
                    return
                body = await reader.readexactly(length) if length else b""
                if kind == "status" and not rule.get("forward"):
                    send_error(writer, rule.get("status", 500))
                    await writer.drain()
                    continue
                if kind == "delay":
                    await asyncio.sleep(float(rule.get("delay", 1)))
                if up is None:
                    up = await asyncio.open_connection(*self.up)
                up[1].write(build_head(line, headers) + body)
                await up[1].drain()
                self.note("req %s %s" % (method, target))
                status, rhead, rbody, close = await read_response(up[0], method)
                if kind == "drop":
                    writer.close()
                    return
                if kind == "status":
                    send_error(writer, rule.get("status", 500))
                    await writer.drain()
                    continue
                if kind == "reset" or kind == "stall":
                    writer.write(rhead + rbody[:len(rbody) // 2])
                    await writer.drain()
                    if kind == "reset":
                        reset(writer)
                        return
                    while await reader.read(READ):
                        pass
                    return
                writer.write(rhead + rbody)
                await writer.drain()
                if close:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError) as e:
            self.note("error %s" % e)
        finally:
            self.writers.discard(writer)
            if up:
                up[1].close()
            try:
                writer.close()
            except Exception:
                pass


def reset(writer):
    """Close with RST, not FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def read_head(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise
        return None
    except asyncio.LimitOverrunError:
        raise ValueError("request head too long")
    if len(head) > MAX_HEAD:
        raise ValueError("request head too long")
    return head


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for l in lines[1:]:
        if l:
            k, v = l.split(":", 1)
            headers.append((k, v.strip()))
    return lines[0], headers


def header(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def build_head(line, headers):
    return ("%s\r\n%s\r\n" % (line, "".join("%s: %s\r\n" % h for h in headers))).encode("latin-1")


async def read_response(reader, method):
    """The upstream's answer: its head bytes, body bytes (as sent), and whether the connection ends."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        line, headers = parse_head(head)
        status = int(line.split(" ")[1])
        if status != 100:
            break
    close = (header(headers, "connection") or "").lower() == "close"
    if method == "HEAD" or status in (204, 304):
        return status, head, b"", close
    if (header(headers, "transfer-encoding") or "").lower() == "chunked":
        body = b""
        while True:
            size_line = await reader.readuntil(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            chunk = await reader.readexactly(n + 2)
            body += size_line + chunk
            if n == 0:
                # No trailers from radosgw: the empty line was read with the chunk.
                break
        return status, head, body, close
    length = header(headers, "content-length")
    if length is not None:
        return status, head, await reader.readexactly(int(length)), close
    return status, head, await reader.read(), True


def send_error(writer, status):
    code = {500: "InternalError", 503: "SlowDown"}.get(status, "InternalError")
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
            "<Message>injected by faultproxy</Message></Error>" % code).encode()
    writer.write(("HTTP/1.1 %d Injected\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n"
                  % (status, len(body))).encode() + body)


async def main():
    proxy = Proxy(sys.argv[1], sys.argv[2])
    await proxy.listen()
    tmp = os.path.join(proxy.dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % proxy.port)
    os.rename(tmp, os.path.join(proxy.dir, "port"))
    await proxy.watch()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: faultproxy.py UPSTREAM_HOST:PORT DIR")
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
