#!/usr/bin/env python3
"""Writes a synthetic APIM capture (JSON Lines, ledger/v1 and azure-monitor
events, streamed and non-streamed calls, halves out of order) of about the
requested size, for benchmarks and memory checks.

usage: scripts/gen-events.py SIZE_MB OUT.jsonl
"""
import datetime
import json
import random
import sys

START = datetime.datetime(2026, 11, 20, 0, 0, 0)

def sse(text, usage):
    words = text.split(" ")
    out = ['data: {"id":"","object":"","created":0,"model":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}],"choices":[]}']
    for w in words:
        out.append("data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06",
                                          "choices": [{"index": 0, "delta": {"content": w + " "}, "finish_reason": None}]}))
    out.append("data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06",
                                      "choices": [], "usage": usage}))
    out.append("data: [DONE]")
    return "\n\n".join(out) + "\n\n"

def main():
    target = int(sys.argv[1]) * 1024 * 1024
    rnd = random.Random(7)
    lorem = ("the ledger keeps every call exactly once and reports tokens by caller and model " * 8).strip()
    written = 0
    n = 0
    held = []
    with open(sys.argv[2], "w") as f:
        while written < target:
            n += 1
            rid = f"bench-{n:010d}"
            ip = f"203.0.113.{n % 250}"
            stream = n % 3 == 0
            usage = {"prompt_tokens": 20 + n % 50, "completion_tokens": 10 + n % 30}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            base = {"schema": "ledger/v1", "requestId": rid, "time": (START + datetime.timedelta(milliseconds=250 * n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "callerIp": ip, "subscriptionId": f"team-{n % 7}", "operationId": "ChatCompletions_Create", "method": "POST",
                    "url": "https://contoso.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                    "chunk": {"index": 0, "count": 1}}
            req = dict(base, kind="request", body=json.dumps({"messages": [{"role": "user", "content": lorem}], "stream": stream}))
            if stream:
                body = sse(lorem, usage)
            else:
                body = json.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
                                   "choices": [{"index": 0, "message": {"role": "assistant", "content": lorem}, "finish_reason": "stop"}],
                                   "usage": usage})
            resp = dict(base, kind="response", status=200, durationMs=300 + n % 900, body=body)
            lines = [json.dumps(req), json.dumps(resp)]
            if rnd.random() < 0.2:
                lines.reverse()
            # Some halves arrive a little later, interleaved with other calls.
            if rnd.random() < 0.1:
                held.append(lines.pop())
            if held and rnd.random() < 0.2:
                lines.append(held.pop(0))
            for l in lines:
                f.write(l + "\n")
                written += len(l) + 1
        for l in held:
            f.write(l + "\n")
    print(f"{n} calls, {written / 1048576:.0f} MiB", file=sys.stderr)

main()
