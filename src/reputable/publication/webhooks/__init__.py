"""Webhooks: listing events POSTed, signed, to operators' endpoints through a durable queue.

``detect`` turns what changed in the store (listings that appeared or ended, removal
requests made or decided) into events and queues one delivery per matching endpoint, in the
same transaction that moves its own bookmarks, so an event is queued exactly once whatever
stops the process. ``deliver`` POSTs each queued body with an HMAC-SHA256 signature over
timestamp and body, retries with exponential backoff and marks it delivered after a 2xx
answer. Delivery is at least once: a POST cut off by a crash is sent again, with the same
``X-Reputable-Delivery`` id, which a receiver uses to drop the repeat.
"""
