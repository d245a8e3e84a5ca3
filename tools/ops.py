"""The operator's command line (``make ops``): replay, dead-letter inspection and redrive, and causal traces.

    python -m tools.ops replay --handler order.user-replica --from-timestamp 2026-11-27T10:00:00Z
    python -m tools.ops replay --handler audit.trail-order --from-offsets 0:0,3:120
    python -m tools.ops dlq list [--handler inventory.order-reservations]
    python -m tools.ops dlq redrive --handler inventory.order-reservations
    python -m tools.ops dlq redrive --handler order.relay        (an outbox relay's failed batches)
    python -m tools.ops dlq discard --handler inventory.order-reservations --message-id <id>
    python -m tools.ops trace <orderId|correlationId> [--mermaid trace.mmd]   (locally, with the waterfall)
    python -m tools.ops tail order-events [--follow] [--key o_123]
    python -m tools.ops produce order-events envelope.json       (validated against the catalog first)

Against the local stack by default (ports from SHOPSTREAM_LOCAL_*_PORT); with ``--env dev`` (and
AWS credentials) against that environment: handlers are then invoked as Lambda functions,
Kafka is reached with IAM auth (KAFKA_BOOTSTRAP_SERVERS), queues and tables by their names.
Replay and redrive are safe to repeat: every handler keeps a state guard (a version, a fact per event, a
write-once record), so an event it already applied changes nothing. The commands are local/ops.py's functions.
"""

from __future__ import annotations

import argparse
import sys

from local.ops import Target, dlq_discard, dlq_list, dlq_redrive, produce, replay, tail, trace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ops", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--env", default="local", help="local (default), dev, staging or prod")
    sub = parser.add_subparsers(dest="command", required=True)
    p_replay = sub.add_parser("replay", help="re-consume a topic into one handler")
    p_replay.add_argument("--handler", required=True, help="service.handler, e.g. order.user-replica")
    start = p_replay.add_mutually_exclusive_group()
    start.add_argument("--from-timestamp", help="ISO-8601, e.g. 2026-11-27T10:00:00Z")
    start.add_argument("--from-offsets", help="partition:offset,... (others from the beginning)")
    p_dlq = sub.add_parser("dlq", help="dead-letter queues")
    dlq_sub = p_dlq.add_subparsers(dest="action", required=True)
    p_list = dlq_sub.add_parser("list")
    p_list.add_argument("--handler")
    p_redrive = dlq_sub.add_parser("redrive")
    p_redrive.add_argument("--handler", required=True, help="service.handler, or service.relay")
    p_redrive.add_argument("--message-id", action="append", help="only this message (repeatable)")
    p_discard = dlq_sub.add_parser("discard")
    p_discard.add_argument("--handler", required=True, help="service.handler, or service.relay")
    p_discard.add_argument("--message-id", action="append", required=True, help="the message to delete (repeatable)")
    p_trace = sub.add_parser("trace", help="the causal chain of an order or a correlation id, and (locally) the "
                                           "order's trace as a waterfall")
    p_trace.add_argument("correlation_id", metavar="orderId|correlationId")
    p_trace.add_argument("--mermaid", help="also write a Mermaid sequence diagram to this file")
    p_tail = sub.add_parser("tail", help="print a topic's records, decoded")
    p_tail.add_argument("topic")
    p_tail.add_argument("--follow", action="store_true", help="keep waiting for new records (Ctrl-C stops)")
    p_tail.add_argument("--key", help="only records with this key")
    p_produce = sub.add_parser("produce", help="send envelopes from a JSON file, validated against the catalog")
    p_produce.add_argument("topic")
    p_produce.add_argument("file")
    args = parser.parse_args(argv)
    target = Target(args.env)
    if args.command == "replay":
        return replay(target, args.handler, from_timestamp=args.from_timestamp, from_offsets=args.from_offsets)
    if args.command == "dlq":
        if args.action == "list":
            return dlq_list(target, args.handler)
        if args.action == "discard":
            return dlq_discard(target, args.handler, set(args.message_id))
        return dlq_redrive(target, args.handler, only=set(args.message_id) if args.message_id else None)
    if args.command == "tail":
        return tail(target, args.topic, follow=args.follow, key=args.key)
    if args.command == "produce":
        return produce(target, args.topic, args.file)
    return trace(target, args.correlation_id, args.mermaid)


if __name__ == "__main__":
    sys.exit(main())
