"""`python -m amc_learning_client write-scanner-weights PATH --url URL`: one cron line.

Replaces the scanner's points file at PATH with its model's live learned table, or leaves
it as it was and says why (`LearningClient.write_scanner_weights`). The token comes from
AMC_LEARNING_TOKEN, the engine's public keys (to check the signature here) from
AMC_LEARNING_PUBLIC_KEYS, comma-separated. Exit status: 0 when the file holds the live
table (written now, or already), 1 when it was left as it was for another reason, 2 for a
wrong command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from amc_learning_client.client import LearningClient


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m amc_learning_client", description=__doc__.split("\n")[0],
        epilog="e.g. */15 * * * * cd ~/workspace && python3 -m amc_learning_client "
               "write-scanner-weights data/scanner_weights.json --url http://engine:8080")
    parser.add_argument("command", choices=["write-scanner-weights"])
    parser.add_argument("path", help="the scanner's scanner_weights.json")
    parser.add_argument("--url", required=True, help="the engine's HTTP API")
    parser.add_argument("--model", default="amc-scanner 3.3.1",
                        help="the scanner's model, \"name version\" (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for the engine (default: %(default)s)")
    args = parser.parse_args(argv)
    token = os.environ.get("AMC_LEARNING_TOKEN", "")
    if not token:
        print("AMC_LEARNING_TOKEN is empty: the engine's API needs a token with the read "
              "scope", file=sys.stderr)
        return 2
    keys = [k for k in os.environ.get("AMC_LEARNING_PUBLIC_KEYS", "").split(",") if k.strip()]
    client = LearningClient(args.url, token, public_keys=keys)
    try:
        done = client.write_scanner_weights(args.path, model=args.model, timeout=args.timeout)
    finally:
        client.close(timeout=1.0)
    print(f"{args.path}: {done.reason}" + (f" (version {done.version})" if done.version
                                          else ""))
    return 0 if done.written or done.reason.startswith("already holds") else 1


if __name__ == "__main__":
    sys.exit(main())
