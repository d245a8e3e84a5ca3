"""``python -m local`` (``make local``): run the local stack until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import sys

from local.stack import from_environment, wait_forever


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    stack = from_environment()
    try:
        stack.start()
        print(stack.banner(), flush=True)
        wait_forever()
    except _Stop:
        print("\nstopping...", flush=True)
    finally:
        stack.stop()
        print("stopped; no process left behind", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
