"""A stand-in model-service for the docker_host tests, baked into tiny images with one behaviour per tag.

Speaks the model-service contract (GET /health, GET /ready, POST /predict on $PORT) with the standard
library only, so it runs on the bare python base image. BEHAVIOUR (build arg) selects:
  healthy      – all endpoints answer 200 and report MODEL_VERSION
  never_ready  – /health 200 but /ready 503 forever, like a model that cannot load
  crash        – exits with code 3 at start-up
  load_failed  – /health 200, /ready 503 {"status": "failed", "error": …} like the real service whose model
                 cannot be unpickled (a terminal state: waiting cannot fix it)
"""

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ["MODEL_VERSION"]
BEHAVIOUR = os.environ["BEHAVIOUR"]
PORT = int(os.environ.get("PORT", "8080"))
HOST = os.environ.get("HOST", "127.0.0.1")


class Handler(BaseHTTPRequestHandler):
    def _reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self._reply(200, {"status": "ok", "version": VERSION})
        elif self.path == "/ready":
            if BEHAVIOUR == "never_ready":
                self._reply(503, {"status": "loading"})
            elif BEHAVIOUR == "load_failed":
                self._reply(503, {"status": "failed", "error": "model.joblib: invalid load key, 'x'"})
            else:
                self._reply(200, {"status": "ready", "version": VERSION})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/predict":
            self._reply(404, {"error": "not found"})
            return
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        rows = request.get("rows", [])
        self._reply(200, {"version": VERSION, "predictions": [0.0 for _ in rows]})

    def log_message(self, format, *args):
        print(f"{VERSION} {self.command} {self.path}", flush=True)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if BEHAVIOUR == "crash":
        print(f"{VERSION}: model file is corrupt, giving up", flush=True)
        sys.exit(3)
    if BEHAVIOUR == "never_ready":
        print(f"{VERSION}: cannot load model weights, staying unready", flush=True)
    print(f"{VERSION} listening on {HOST}:{PORT} as uid {os.getuid()}", flush=True)
    ThreadingHTTPServer((HOST, PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
