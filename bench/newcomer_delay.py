#!/usr/bin/env python3
"""How far behind live a new listener starts: connect to an Ogg/Opus stream, and measure the
audio that arrives in the first burst (pages that come within 100 ms of the first byte are
audio from the past, sent at once). Prints seconds of audio in that burst.
usage: newcomer_delay.py URL [repeats]"""
import socket
import struct
import sys
import time
import urllib.parse


def once(url):
    u = urllib.parse.urlparse(url)
    s = socket.create_connection((u.hostname, u.port or 80), timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (u.path, u.hostname)).encode())
    buf, head_done, t_first = b"", False, None
    pages = []  # (arrival, granule, samples-bearing)
    s.settimeout(0.05)
    t_end = time.time() + 1.0
    while time.time() < t_end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        if not d:
            break
        now = time.time()
        buf += d
        if not head_done:
            if b"\r\n\r\n" not in buf:
                continue
            buf = buf.split(b"\r\n\r\n", 1)[1]
            head_done = True
        while len(buf) >= 27 and buf[:4] == b"OggS":
            nseg = buf[26]
            if len(buf) < 27 + nseg:
                break
            plen = 27 + nseg + sum(buf[27:27 + nseg])
            if len(buf) < plen:
                break
            if t_first is None:
                t_first = now
            pages.append((now, struct.unpack_from("<q", buf, 6)[0]))
            buf = buf[plen:]
    s.close()
    audio = [(t, g) for t, g in pages if g > 0]
    if not audio:
        return None
    burst = [g for t, g in audio if t - t_first <= 0.1]
    later = [g for t, g in audio if t - t_first > 0.1]
    if not burst:
        return 0.0
    # the burst holds audio from the first page's start to the last burst page's end
    first_start = audio[0][1] - (audio[1][1] - audio[0][1] if len(audio) > 1 else 0)
    return (max(burst) - first_start) / 48000.0


def main():
    url = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    vals = [v for v in (once(url) for _ in range(n)) if v is not None]
    vals.sort()
    print("%.2f" % vals[len(vals) // 2] if vals else "nan")


main()
