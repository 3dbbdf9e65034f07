#!/usr/bin/env python3
"""How soon a message is searchable after it is acknowledged, under load.

Runs beside a load (benches/run-search-freshness starts both): every INTERVAL seconds it sends one
message with a word no other message has, over HTTP (the 201 answer is the delivered
acknowledgement: the message is durable), then searches for that word every POLL seconds until
the search finds it. The time from the 201 to the first search that finds it is the message's
freshness delay; a probe not found within 10 s counts as lost (and fails the run). Prints one
JSON object: the probes' count, p50, p99 and max in milliseconds.

Standard library only (HS256 tokens are made with hmac). Targets 127.0.0.1 only.

Usage: search-freshness.py PORT DATA_DIR DURATION_SECONDS [INTERVAL_SECONDS] [POLL_SECONDS]
"""

import base64
import hashlib
import hmac
import http.client
import json
import sys
import time


def token(secret, tenant, user):
    def part(value):
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    now = int(time.time())
    signing = part({"alg": "HS256", "typ": "JWT"}) + "." + part(
        {"sub": user, "tenant": tenant, "iat": now, "exp": now + 3600}
    )
    signature = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


class Api:
    def __init__(self, port, bearer):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = {"Authorization": "Bearer " + bearer, "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        payload = None if body is None else json.dumps(body)
        self.connection.request(method, path, body=payload, headers=self.headers)
        response = self.connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None)


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main():
    port = int(sys.argv[1])
    secret = open(sys.argv[2] + "/dev-secret").read().strip()
    duration = float(sys.argv[3])
    interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
    poll = float(sys.argv[5]) if len(sys.argv) > 5 else 0.002
    api = Api(port, token(secret, "probe", "prober"))
    status, body = api.call("POST", "/v1/conversations", {"kind": "group", "title": "probe"})
    assert status == 201, (status, body)
    conversation = body["conversation_id"]
    delays, lost = [], 0
    started = time.monotonic()
    number = 0
    while time.monotonic() - started < duration:
        number += 1
        word = "freshprobe%dq" % number
        begin = time.monotonic()
        status, body = api.call(
            "POST",
            "/v1/conversations/%s/messages" % conversation,
            {"client_id": "probe-%d" % number, "text": "probe " + word},
        )
        assert status == 201, (status, body)
        acked = time.monotonic()
        while True:
            status, body = api.call("GET", "/v1/search/messages?q=" + word)
            assert status == 200, (status, body)
            if body["hits"]:
                delays.append((time.monotonic() - acked) * 1000)
                break
            if time.monotonic() - acked > 10:
                lost += 1
                break
            time.sleep(poll)
        rest = interval - (time.monotonic() - begin)
        if rest > 0:
            time.sleep(rest)
    print(json.dumps({
        "probes": len(delays),
        "lost": lost,
        "freshness_p50_ms": round(quantile(delays, 0.5), 1),
        "freshness_p99_ms": round(quantile(delays, 0.99), 1),
        "freshness_max_ms": round(max(delays), 1),
    }))
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    main()
