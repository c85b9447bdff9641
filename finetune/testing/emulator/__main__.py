"""``python -m finetune.testing.emulator serve``: run the Azure ML emulator as a local HTTPS server and proxy."""

from __future__ import annotations

import argparse
import json
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finetune.testing.emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the emulator on 127.0.0.1 over HTTPS (and as an HTTPS proxy)")
    serve.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    serve.add_argument("--state-dir", default=None, help="persist state here; reloaded on restart")
    serve.add_argument("--acceleration", type=float, default=10_000.0, help="simulated seconds per wall second")
    serve.add_argument("--latency", type=float, default=0.0, help="added seconds per request")
    serve.add_argument("--env-file", default=None, help="also write 'export K=V' lines for the client here")
    args = parser.parse_args(argv)

    from .server import EmulatorServer

    server = EmulatorServer(state_dir=args.state_dir, port=args.port, acceleration=args.acceleration,
                            latency=args.latency)
    info = server.describe()
    if args.env_file:
        with open(args.env_file, "w") as fh:
            fh.writelines(f"export {k}={json.dumps(v)}\n" for k, v in info["env"].items())
    print(json.dumps(info), flush=True)

    def _stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
