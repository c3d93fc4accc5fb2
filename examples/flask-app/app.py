"""A Flask app with Capsule lifecycle hooks.

The app serves on :8080. Capsule calls its hooks on :9000 — POST /capsule/v1/{ready,run,suspend,
resume,terminate} — and this app records each call (with the run payload) so /hooks shows them in order.
`ready` answers 503 until the app has loaded, then 200: Capsule snapshots the app only once it is ready,
so every MicroVM of this image starts with it already serving.
"""
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from flask import Flask, jsonify, render_template

app = Flask(__name__)
started_at = time.time()
hooks = []  # (name, payload) in the order Capsule called them
loaded = threading.Event()


@app.get("/")
def index():
    return render_template("index.html", greeting=os.environ.get("GREETING", "Hello"), hostname=socket.gethostname(), uptime=round(time.time() - started_at, 1))


@app.get("/hooks")
def hook_calls():
    return jsonify([{"hook": name, "payload": payload} for name, payload in hooks])


class Hooks(BaseHTTPRequestHandler):
    def do_POST(self):
        name = self.path.rsplit("/", 1)[-1]
        payload = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        if name == "ready" and not loaded.is_set():
            self.send_response(503)  # not yet: Capsule asks again
        else:
            hooks.append((name, payload))
            self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    threading.Thread(target=ThreadingHTTPServer(("127.0.0.1", 9000), Hooks).serve_forever, daemon=True).start()
    threading.Timer(0.5, loaded.set).start()
    app.run(host="0.0.0.0", port=8080)
