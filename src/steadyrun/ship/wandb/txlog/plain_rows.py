"""A history record's items read straight from protobuf's wire format, for speed.

Why: `steadyrun doctor` and `steadyrun import` stream W&B runs of a million rows, and
walking a history record's items through wandb's protobuf classes costs about a
microsecond per item in Python: most of the time of either command. A plain history
record (every item one key under 128 bytes with a `value_json` under 128 bytes, which is
what `wandb.log` of numbers writes) is read here with one regex instead.

The guarantee: `plain_items` returns items only when every item's key and value lengths
match their length bytes exactly, and every `value_json` tag (0x82 0x01) in the whole
record belongs to a matched item. Anything else (a nested key such as a media value's, a
long key or value, the typed encoding, a step varint that happens to hold those two
bytes) returns None, and the caller parses the record with protobuf: the same result,
slower. tests/test_doctor.py checks the two paths agree on real W&B runs.
"""

from __future__ import annotations

import re

# A HistoryItem: 0x0a len | 0x12 klen key | 0x82 0x01 vlen value. JSON text and keys hold
# no control byte, so the greedy text stops at the next item's tag (0x0a) or the step's
# (0x12); the length bytes are then checked.
ITEM = re.compile(rb"\n[\x00-\x7f]\x12([\x00-\x7f][^\x00-\x1f]*)\x82\x01([\x00-\x7f][^\x00-\x1f]*)")
VALUE_TAG = b"\x82\x01"


def plain_items(payload: bytes) -> list[tuple[bytes, bytes]] | None:
    """[(length byte + key, length byte + value JSON)] of a plain history record, or
    None: then parse it with protobuf."""
    items = ITEM.findall(payload)
    if not items or payload.count(VALUE_TAG) != len(items):
        return None
    for key, value in items:
        if key[0] != len(key) - 1 or value[0] != len(value) - 1:
            return None
    return items


# The keys alone (a regex with one group is about three times faster than ITEM): what
# a row of a known shape needs. A value's text cannot hold a 0x0a, so no key is
# matched inside one; the caller still counts the value tags against the keys.
KEYS = re.compile(rb"\n[\x00-\x7f]\x12([\x00-\x7f][^\x00-\x1f]*)\x82\x01")

# A history record's head: `num` (field 1, a varint) if any, then field 2's tag and its
# length varint, which may itself hold the bytes 0x82 0x01 (a length of 130).
HISTORY_HEAD = re.compile(rb"(?:\x08[\x80-\xff]{0,9}[\x00-\x7f])?\x12[\x80-\xff]{0,4}[\x00-\x7f]")

# The items with the value's length byte in a group of its own, so the values' texts
# come out bare (joined into one JSON array without copying each; importer/batch.py).
# Only the last value's text can run on past its length (into the record's next field):
# every other one ends at the next item's tag, 0x0a. A shorter text would need a
# control byte inside JSON text, which JSON forbids. So a caller checks the last value's
# length byte, counts the value tags against the items, and checks the keys' length
# bytes once per distinct tuple of keys.
ITEM_BARE = re.compile(
    rb"\n[\x00-\x7f]\x12([\x00-\x7f][^\x00-\x1f]*)\x82\x01([\x00-\x7f])([^\x00-\x1f]*)")
