"""The official `stripe` Python package as an independent check of Stonepot's webhook
signatures, both ways:

(a) a `Stripe-Signature` the package generates is accepted by Stonepot's webhook (and a
    tampered body or a stale timestamp under it is refused), and
(b) a header Stonepot's `sign` produced verifies with `stripe.Webhook.construct_event`.

Usage (the Rust test sets these): STONEPOT_URL, WEBHOOK_SECRET, EVENT_BODY (a signed
checkout.session.completed event for an open order) and OUR_SIGNATURE (Stonepot's
header for EVENT_BODY).
"""
import json
import os
import time
import urllib.error
import urllib.request

import stripe

url = os.environ["STONEPOT_URL"] + "/webhooks/stripe"
secret = os.environ["WEBHOOK_SECRET"]
body = os.environ["EVENT_BODY"]
ours = os.environ["OUR_SIGNATURE"]


def generate(payload, timestamp=None):
    # Public since stripe 7; older versions only have the private helper.
    gen = getattr(stripe.WebhookSignature, "generate_signature_header", None)
    if gen is not None:
        return gen(payload, secret, timestamp=timestamp)
    t = int(time.time()) if timestamp is None else timestamp
    sig = stripe.WebhookSignature._compute_signature("%d.%s" % (t, payload), secret)
    return "t=%d,v1=%s" % (t, sig)


def post(payload, header):
    req = urllib.request.Request(
        url,
        data=payload.encode("utf-8"),
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# (b) first: our header verifies with the official package (and only for this body).
event = stripe.Webhook.construct_event(body, ours, secret)
assert event["id"] == json.loads(body)["id"], event
assert event["type"] == "checkout.session.completed", event
try:
    stripe.Webhook.construct_event(body + " ", ours, secret)
    raise AssertionError("a changed body must not verify")
except stripe.SignatureVerificationError:
    pass

# (a) refusals under the package's headers: a tampered body, a stale timestamp.
status, answer = post(body.replace('"paid"', '"paix"'), generate(body))
assert status == 400 and answer["error"]["code"] == "signature_mismatch", (status, answer)
stale = generate(body, timestamp=int(time.time()) - 301)
status, answer = post(body, stale)
assert status == 400 and answer["error"]["code"] == "signature_expired", (status, answer)

# (a) the package's header is accepted and pays the order.
status, answer = post(body, generate(body))
assert status == 200, (status, answer)
assert answer["outcome"] == "paid", answer

print("ok  stripe python signatures (stripe %s)" % stripe.VERSION)
