"""Wicket's benchmark harness: every figure is a ratio to a baseline measured in the same run.

`bench/run` (this package's `__main__`) starts each server or job in a child process of its
own, drives it with an external load generator (Postfix's smtp-source, wrk) or a small
asyncio client, and reports absolute numbers, the ratio to the baseline and whether the
issue's target is met. Nothing here is imported by the gateway or the portal.
"""
