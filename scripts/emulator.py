"""Emulated AWS for the test suite: moto's server on 127.0.0.1, one request at a time.

moto checks a transaction's conditions and applies its writes without a lock, so two
concurrent requests can both pass a condition that only one may pass. Real DynamoDB
is atomic; serving requests one at a time gives the emulator the same guarantee.

Usage: python scripts/emulator.py PORT_FILE
Binds a free port, writes it to PORT_FILE, serves until stopped, and stops by itself
when the process that started it is gone.
"""

import os
import sys
import threading
import time

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


def stop_with_parent(parent: int) -> None:
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(0)


def main() -> None:
    port_file = sys.argv[1]
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=MotoRequestHandler)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_port))
    os.replace(tmp, port_file)
    threading.Thread(target=stop_with_parent, args=(os.getppid(),), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
