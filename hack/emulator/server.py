#!/usr/bin/env python3
"""AWS API Gateway (REST v1) emulator: moto's server with this project's extension.

    $(hack/emulator/setup-venv.sh) hack/emulator/server.py --host 127.0.0.1 --port 4566

Serves the API Gateway REST API (point an SDK's endpoint URL at http://HOST:PORT, any
region and dummy credentials), moto's STS (AssumeRole gives keys of other accounts) and, on
the same port, the admin API under /_emulator/ (see emulator_app.py). --port 0 picks a free
port; --port-file writes the bound port once the server accepts connections. SIGTERM or
SIGINT stops it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4566, help="port to bind; 0 picks a free one")
    parser.add_argument("--port-file", help="write the bound port here once serving")
    parser.add_argument(
        "--log-requests", action="store_true", help="log every request to stderr (werkzeug)"
    )
    args = parser.parse_args(argv)

    # moto reads these at import time.
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")
    os.environ.setdefault("MOTO_PORT", str(args.port))

    try:
        import moto
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server
    except ImportError as e:
        print(
            f"server.py: cannot import moto/werkzeug ({e}). Run it with the venv's python: "
            '"$(hack/emulator/setup-venv.sh)" hack/emulator/server.py',
            file=sys.stderr,
        )
        return 2

    import apigw_ext
    from emulator_app import EmulatorApp

    apigw_ext.install()
    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    inner = DomainDispatcherApplication(create_backend_app)
    def configure(faults) -> None:
        apigw_ext.configure(apigw_ext.Behaviour(
            ignore_paths=faults.ignore_paths, normalise=faults.normalise,
            put_integration_keeps_responses=faults.put_integration_keeps_responses,
            strict_response_patch=faults.strict_response_patch,
        ))

    import deploy_ext

    app = EmulatorApp(inner, moto_version=getattr(moto, "__version__", "?"), configure=configure,
                      served=deploy_ext.served)
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    server.daemon_threads = True
    host, port = server.server_address[:2]

    def stop(signum: int, frame: object) -> None:
        # shutdown() waits for serve_forever to return, so call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(
        f"apigw-emulator (moto {getattr(moto, '__version__', '?')}) serving on "
        f"http://{host}:{port} (admin: http://{host}:{port}/_emulator/), pid {os.getpid()}",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        app.close()  # the neighbour fault's thread
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
