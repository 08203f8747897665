"""Scenario (f): the whole browser-less authorization code flow, as many times a second as it goes.

authorize → sign-in page → sign in → consent page → allow → token, each flow with its own cookie jar, ``concurrency``
flows at a time for ``duration`` seconds. Prints one JSON object: flows, seconds, failures, latency of a whole flow.

    python bench/flow.py ISSUER SECRET PASSWORD --duration 10 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import httpx
from mint import CHALLENGE, CLIENT_ID, REDIRECT_URI, RESOURCE, SCOPE, VERIFIER

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def one_flow(issuer: str, secret: str, password: str) -> None:
    async with httpx.AsyncClient(base_url=issuer, timeout=30.0) as http:
        state = secrets.token_urlsafe(8)
        response = await http.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "scope": SCOPE,
                "state": state,
                "code_challenge": CHALLENGE,
                "code_challenge_method": "S256",
                "resource": RESOURCE,
                "prompt": "consent",
            },
        )
        login = response.headers["location"]
        page = await http.get(login)
        csrf = CSRF.search(page.text)
        assert csrf, page.text
        response = await http.post(login, data={"csrf": csrf.group(1), "username": "bench", "password": password})
        assert response.status_code == 303, response.text
        response = await http.get(response.headers["location"])  # /interaction/{id} → consent
        consent = response.headers["location"]
        page = await http.get(consent)
        csrf = CSRF.search(page.text)
        assert csrf, page.text
        response = await http.post(consent, data={"csrf": csrf.group(1), "decision": "allow"})
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["state"] == [state], query
        response = await http.post(
            "/token",
            auth=(CLIENT_ID, secret),
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "code_verifier": VERIFIER,
                "redirect_uri": REDIRECT_URI,
            },
        )
        assert response.status_code == 200, response.text
        assert "refresh_token" in response.json(), response.text


async def run(issuer: str, secret: str, password: str, duration: float, concurrency: int) -> dict[str, object]:
    latencies: list[float] = []
    failures: list[str] = []
    deadline = time.monotonic() + duration

    async def worker() -> None:
        while time.monotonic() < deadline:
            start = time.monotonic()
            try:
                await one_flow(issuer, secret, password)
            except (AssertionError, KeyError, httpx.HTTPError) as exc:
                failures.append(repr(exc)[:200])
                continue
            latencies.append(time.monotonic() - start)

    begun = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - begun
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e6) if latencies else 0

    return {
        "requests": len(latencies),
        "duration_us": round(elapsed * 1e6),
        "errors": {"status": len(failures)},
        "first_failure": failures[0] if failures else None,
        "latency_us": {"p50": pct(0.5), "p99": pct(0.99)},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("issuer")
    parser.add_argument("secret")
    parser.add_argument("password")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    result = asyncio.run(run(args.issuer, args.secret, args.password, args.duration, args.concurrency))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
