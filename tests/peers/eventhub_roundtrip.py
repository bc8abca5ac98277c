"""The Python azure-eventhub SDK against the ledger's test broker.

Reads the emulator-form connection string from AOAI_TEST_EVENTHUB_CONNECTION_STRING
(UseDevelopmentEmulator=true: plain AMQP, the pure-Python transport), then:

  send   KEY COUNT PARTITION   a batch of COUNT events with partition key KEY,
                               and COUNT events to partition PARTITION
  read   EXPECTED              every partition from the start until EXPECTED
                               events are read in all

and prints one JSON document on stdout: the hub's and partitions' properties
and what was read. AOAI_TEST_PY_DEBUG=1 logs every frame to stderr. The Rust test (crates/ledger-eh-broker/tests/python_sdk.rs)
checks it against what the broker holds.
"""

import json
import os
import signal
import socket
import sys
import threading
import time

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub._pyamqp import _transport

# Not the broker's business, but it fails the connect at random: pyamqp reads
# every TCP option and writes it back, and on loopback (MTU 65536) Linux
# reports an MSS of 32768 yet refuses to set more than 32767 (EINVAL). The
# peer leaves that one option alone. (Anyone running azure-eventhub against
# a local emulator on Linux meets the same retries.)
_tcp_defaults = _transport._AbstractTransport._get_tcp_socket_defaults


def _without_maxseg(self, sock):
    options = _tcp_defaults(self, sock)
    options.pop(getattr(socket, "TCP_MAXSEG", None), None)
    return options


_transport._AbstractTransport._get_tcp_socket_defaults = _without_maxseg

CONNECTION = os.environ["AOAI_TEST_EVENTHUB_CONNECTION_STRING"]
TRACE = bool(os.environ.get("AOAI_TEST_PY_DEBUG"))

if os.environ.get("AOAI_TEST_PY_DEBUG"):
    import logging

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)


def properties(client):
    hub = client.get_eventhub_properties()
    parts = {}
    for pid in hub["partition_ids"]:
        p = client.get_partition_properties(pid)
        parts[pid] = {
            "beginning_sequence_number": p["beginning_sequence_number"],
            "last_enqueued_sequence_number": p["last_enqueued_sequence_number"],
            "last_enqueued_offset": str(p["last_enqueued_offset"]),
            "is_empty": p["is_empty"],
        }
    return {"name": hub["eventhub_name"], "partition_ids": hub["partition_ids"], "partitions": parts}


def send(key, count, partition):
    producer = EventHubProducerClient.from_connection_string(CONNECTION, logging_enable=TRACE)
    with producer:
        batch = producer.create_batch(partition_key=key)
        for i in range(count):
            event = EventData(f"python keyed {i}")
            event.properties = {"n": i, "from": "python"}
            batch.add(event)
        producer.send_batch(batch)
        batch = producer.create_batch(partition_id=partition)
        for i in range(count):
            batch.add(EventData(f"python direct {i}"))
        producer.send_batch(batch)
        return properties(producer)


def read(expected):
    consumer = EventHubConsumerClient.from_connection_string(
        CONNECTION, consumer_group="$Default", logging_enable=TRACE
    )
    events = []
    lock = threading.Lock()
    done = threading.Event()

    def on_event(context, event):
        if event is None:
            return
        with lock:
            events.append(
                {
                    "partition": context.partition_id,
                    "sequence_number": event.sequence_number,
                    "offset": str(event.offset),
                    "partition_key": event.partition_key.decode() if isinstance(event.partition_key, bytes) else event.partition_key,
                    "enqueued_ms": int(event.enqueued_time.timestamp() * 1000),
                    "body": event.body_as_str(),
                    "properties": {
                        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                        for k, v in (event.properties or {}).items()
                    },
                }
            )
            if len(events) >= expected:
                done.set()

    worker = threading.Thread(
        target=lambda: consumer.receive(on_event=on_event, starting_position="-1", max_wait_time=1),
        daemon=True,
    )
    worker.start()
    done.wait(timeout=60)
    props = properties(consumer)
    consumer.close()
    worker.join(timeout=30)
    return {"properties": props, "events": sorted(events, key=lambda e: (e["partition"], e["sequence_number"]))}


def main():
    # A hung client fails the test instead of holding it.
    signal.alarm(120)
    mode = sys.argv[1]
    started = time.time()
    if mode == "send":
        out = {"properties": send(sys.argv[2], int(sys.argv[3]), sys.argv[4])}
    elif mode == "read":
        out = read(int(sys.argv[2]))
    else:
        raise SystemExit(f"unknown mode {mode}")
    out["seconds"] = round(time.time() - started, 3)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
