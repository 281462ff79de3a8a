"""The official `openai` Python package as an independent client of Stonepot's
OpenAI-compatible API (which routes to a fake provider started by the Rust test).

Usage: STONEPOT_URL=http://127.0.0.1:PORT STONEPOT_KEY=... python3 openai_client.py
"""
import os
import sys

import openai

base = os.environ["STONEPOT_URL"] + "/v1"
client = openai.OpenAI(base_url=base, api_key=os.environ["STONEPOT_KEY"], max_retries=0, timeout=20)

# Models: the routes, then the targets.
ids = [m.id for m in client.models.list()]
assert "default" in ids and "openai" in ids, ids

# A whole answer.
r = client.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}])
assert r.choices[0].message.content == "Hello from the fake.", r
assert r.choices[0].finish_reason == "stop", r
assert r.usage.prompt_tokens == 120 and r.usage.completion_tokens == 8, r.usage
assert r.usage.prompt_tokens_details.cached_tokens == 100, r.usage

# A provider/model pair routes to that provider with that model.
r = client.chat.completions.create(model="openai/gpt-fake-mini", messages=[{"role": "user", "content": "hi"}])
assert r.choices[0].message.content == "Hello from the fake."

# Streaming with tools: two parallel calls whose arguments arrive in pieces, and usage.
tools = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]
stream = client.chat.completions.create(
    model="default",
    messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather and time?"}],
    tools=tools,
    stream=True,
    stream_options={"include_usage": True},
)
calls = {}
finish = None
usage = None
for chunk in stream:
    if chunk.usage:
        usage = chunk.usage
    for choice in chunk.choices:
        for tc in choice.delta.tool_calls or []:
            c = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            if tc.id:
                c["id"] = tc.id
            if tc.function and tc.function.name:
                c["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                c["arguments"] += tc.function.arguments
        finish = choice.finish_reason or finish
assert calls[0] == {"id": "call_w", "name": "get_weather", "arguments": '{"city":"Paris"}'}, calls
assert calls[1] == {"id": "call_t", "name": "get_time", "arguments": "{}"}, calls
assert finish == "tool_calls", finish
assert usage is not None and usage.total_tokens == 128, usage

# The tool results go back as tool messages.
r = client.chat.completions.create(
    model="default",
    messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_w", "content": "sunny"},
    ],
)
assert r.choices[0].message.content

# Errors arrive as the SDK's own exceptions.
try:
    client.chat.completions.create(model="nope/nothing", messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("an unknown model must fail")
except openai.NotFoundError as e:
    assert e.body["code"] == "model_not_found", e.body
try:
    client.chat.completions.create(model="default", messages=[])
    raise AssertionError("no messages must fail")
except openai.BadRequestError as e:
    assert "messages" in str(e), e
bad = openai.OpenAI(base_url=base, api_key="sp_wrong", max_retries=0)
try:
    bad.models.list()
    raise AssertionError("a wrong key must fail")
except openai.AuthenticationError:
    pass

# A stream that breaks after its first tokens ends with an error, never silently.
try:
    for _ in client.chat.completions.create(model="default", messages=[{"role": "user", "content": "cut please"}], stream=True):
        pass
    raise AssertionError("a cut stream must raise")
except openai.APIError as e:
    assert "broke off" in str(e) or "truncat" in str(e).lower(), e

print("ok  openai python client")
sys.exit(0)
