"""Benchmark 3: portal pages under wrk, against aiohttp's hello world in the same run.

The hello-world server and the seeded portal (`bench.portal_seed`) each run in a process
of their own; wrk drives each for the same time with the same connections. The ticket
list is fetched with the signed-in contact's session cookie; the link exchange POSTs
each seeded token once, with the CSRF cookie and form field a browser would send, and
only 303 redirects (a session started) count. Each portal route is probed first: one
that is missing or failing gives a "not available" row, and a ticket list that does not
show the contact's tickets is measured but not judged against the target.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import replace
from typing import Any

from bench.plan import Plan
from bench.procs import OUT, Child
from bench.report import Row, Target

CONNECTIONS = 16
LIST_TARGET = Target(">=", 0.05)
EXCHANGE_TARGET = Target(">=", 0.02)
HELLO = "aiohttp hello world"

EXCHANGE_SCRIPT = """
tokens = {}
for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
next_token, exchanged, other = 0, 0, 0
threads = {}
function setup(thread) table.insert(threads, thread) end
function request()
  next_token = next_token + 1
  local token = tokens[next_token] or "exhausted"
  return wrk.format("POST", "/l/" .. token, {
    ["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = "%(cookie)s"
  }, "csrf_token=%(csrf)s")
end
function response(status, headers, body)
  if status == 303 then exchanged = exchanged + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, thread in ipairs(threads) do ok = ok + thread:get("exchanged"); bad = bad + thread:get("other") end
  io.write(string.format("EXCHANGED %%d OTHER %%d SECONDS %%f\\n", ok, bad, summary.duration / 1e6))
end
"""


class WrkMissing(RuntimeError):
    """wrk is not installed (bench/setup.sh installs it)."""


def _wrk(url: str, seconds: int, *extra: str) -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkMissing("wrk is not installed; run bench/setup.sh")
    command = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", *extra, url]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=seconds + 60).stdout


def _requests_per_second(output: str) -> float:
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        raise RuntimeError(f"{non_2xx.group(1)} responses failed:\n{output}")
    return float(match.group(1))


def _probe(url: str, data: bytes | None = None, cookie: str = "") -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers={"Cookie": cookie})
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, ""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _hello(seconds: int) -> float:
    with Child("hello-http", "hello-http") as child:
        rate = _requests_per_second(_wrk(f"http://127.0.0.1:{child.port}/", seconds))
        child.stop()
    return rate


def _ticket_list(child: Child, seconds: int, hello: float) -> Row:
    url, ready = f"http://127.0.0.1:{child.port}/tickets", child.ready
    status, body = _probe(url, cookie=ready["session_cookie"])
    name = "portal ticket list (20 tickets, signed in)"
    if status != 200:
        return Row(name, target=LIST_TARGET, note=f"not available: GET /tickets answered {status}")
    rate = _requests_per_second(_wrk(url, seconds, "-H", f"Cookie: {ready['session_cookie']}"))
    listed = sum(subject in body for subject in ready["subjects"])
    if listed < len(ready["subjects"]):
        note = f"placeholder page lists {listed} of 20 tickets; not judged"
        return Row(name, rate, "req/s", hello, HELLO, None, note)
    return Row(name, rate, "req/s", hello, HELLO, LIST_TARGET)


def _exchange(child: Child, seconds: int, hello: float) -> Row:
    ready, name = child.ready, "link exchange POST (new session each)"
    tokens = open(ready["tokens_file"]).read().split()
    base = f"http://127.0.0.1:{child.port}/l/"
    form = f"csrf_token={ready['csrf_token']}".encode()
    status, _ = _probe(base + tokens[0], form, ready["csrf_cookie"])
    if status != 303:
        return Row(name, target=EXCHANGE_TARGET, note=f"not available: POST /l/<token> answered {status}")
    script = OUT / "exchange.lua"
    script.write_text(
        EXCHANGE_SCRIPT % {"tokens": ready["tokens_file"], "cookie": ready["csrf_cookie"], "csrf": ready["csrf_token"]}
    )
    lines = _wrk(base, seconds, "-s", str(script)).splitlines()
    words = next(line for line in lines if line.startswith("EXCHANGED")).split()
    exchanged, other, elapsed = int(words[1]), int(words[3]), float(words[5])
    note = f"{exchanged} sessions started" + (f", {other} refused (tokens ran out?)" if other else "")
    return Row(name, exchanged / elapsed, "req/s", hello, HELLO, EXCHANGE_TARGET, note)


def run(plan: Plan) -> list[Row]:
    try:
        from portal.app import create_app  # noqa: F401  (only: is the portal there yet?)
    except ImportError as error:
        return [Row("portal", note=f"not available: portal does not import ({error})")]
    with Child("portal", "portal", "--workdir", str(OUT / "portal"), "--links", str(plan.links)) as child:
        if plan.dry:
            status, _ = _probe(f"http://127.0.0.1:{child.port}/tickets", cookie=child.ready["session_cookie"])
            child.stop()
            with Child("hello-http", "hello-http") as baseline:
                baseline.stop()
            return [Row("portal and hello world start", note=f"dry: GET /tickets answered {status}")]
        hello = _hello(plan.wrk_seconds)
        listing = _ticket_list(child, plan.wrk_seconds, hello)
        exchange = _exchange(child, plan.wrk_seconds, hello)
        used = child.stop()["links_used"]
    return [listing, replace(exchange, note=f"{exchange.note}; {used} links consumed in the database")]
