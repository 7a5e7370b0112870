#!/usr/bin/env python3
"""Remote build contexts for the tests: git over smart HTTP and plain files.

    serve-remote.py --root DIR [--port N] [--port-file FILE]
                    [--token-file FILE] [--log FILE]

Listens on 127.0.0.1 only (port 0, the default, picks a free one; it is
printed on stdout and written to --port-file) and serves from DIR:

    /git/<repo>.git/...      git smart HTTP (clone, fetch --depth=1, ls-remote)
                             of DIR/git/<repo>.git, through `git http-backend`
    /private/<repo>.git/...  the same for DIR/private, only with the header
                             `Authorization: Basic base64("x-access-token:" TOKEN)`
                             (what BuildKit sends for the GIT_AUTH_TOKEN secret),
                             TOKEN being the bytes of --token-file; else 401
    /files/<name>            static files of DIR/files (tarballs)

Each request is logged as one line to --log (default stderr): method, path,
status, and whether an Authorization header came (never its value).
Standard library only; `git http-backend` runs as a CGI program per request.
"""

import argparse
import base64
import hmac
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

# A repo path below a root: names of letters, digits, . _ - only, the first
# segment ending in .git, nothing that climbs out (no `..` segment).
REPO_PATH = re.compile(r"^/[A-Za-z0-9_][A-Za-z0-9._-]*\.git(/[A-Za-z0-9._/-]*)?$")
FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
# Request headers passed to the CGI program as HTTP_*: git http-backend reads
# Content-Encoding (gzip request bodies) and Git-Protocol (protocol v2).
CGI_HEADERS = ("Content-Encoding", "Git-Protocol", "Accept", "User-Agent")


class Config:
    root = ""
    token = None  # bytes, or None: /private answers 401 to everyone
    log = sys.stderr
    log_lock = threading.Lock()


def log_line(text):
    with Config.log_lock:
        Config.log.write(text + "\n")
        Config.log.flush()


def expected_auth(token):
    return base64.b64encode(b"x-access-token:" + token).decode("ascii")


def authorized(header):
    """The Authorization header carries the token (scheme case-insensitive)."""
    if Config.token is None or not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    return hmac.compare_digest(value.strip().encode("ascii", "replace"),
                               expected_auth(Config.token).encode("ascii"))


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "nixfe-remote/1"
    # One request per connection (HTTP/1.0): every response ends by closing.
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass  # our own line per request instead, see log_request

    def log_request(self, code="-", size="-"):
        auth = "auth" if self.headers.get("Authorization") else "no-auth"
        log_line("%s %s %s %s %s" % (
            time.strftime("%Y-%m-%dT%H:%M:%S"), self.command, self.path,
            getattr(code, "value", code), auth))

    def do_GET(self):
        self.route()

    def do_HEAD(self):
        self.route()

    def do_POST(self):
        self.route()

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        top, _, rest = path.lstrip("/").partition("/")
        rest = "/" + rest
        if top == "git" and REPO_PATH.match(rest) and ".." not in rest.split("/"):
            return self.git(os.path.join(Config.root, "git"), rest, url.query)
        if top == "private" and REPO_PATH.match(rest) and ".." not in rest.split("/"):
            if not authorized(self.headers.get("Authorization")):
                return self.plain(401, "authentication required\n",
                                  [("WWW-Authenticate", 'Basic realm="private"')])
            return self.git(os.path.join(Config.root, "private"), rest, url.query)
        if top == "files" and FILE_NAME.match(rest[1:]) and self.command in ("GET", "HEAD"):
            return self.file(os.path.join(Config.root, "files", rest[1:]))
        return self.plain(404, "not found\n")

    def plain(self, status, text, headers=()):
        body = text.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def file(self, path):
        try:
            f = open(path, "rb")
        except OSError:
            return self.plain(404, "not found\n")
        with f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command != "HEAD":
                shutil.copyfileobj(f, self.wfile)

    def body(self):
        """The request body, de-chunked (git sends large bodies chunked)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)  # the CRLF after each chunk
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def git(self, project_root, path_info, query):
        data = self.body() if self.command == "POST" else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": project_root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.0",
            "SERVER_SOFTWARE": self.server_version,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(data)),
            # No user config or system config can change what is served.
            "HOME": project_root,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        for name in CGI_HEADERS:
            value = self.headers.get(name)
            if value is not None:
                env["HTTP_" + name.upper().replace("-", "_")] = value
        proc = subprocess.run(["git", "http-backend"], input=data, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = proc.stdout
        head, sep, payload = out.partition(b"\r\n\r\n")
        if not sep:
            head, sep, payload = out.partition(b"\n\n")
        if not sep:
            err = proc.stderr.decode(errors="replace").strip()
            log_line("git http-backend %s: exit %d, no CGI headers: %s" % (path_info, proc.returncode, err))
            return self.plain(500, "git http-backend failed\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            name, value = name.strip(), value.strip()
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value))
        if proc.returncode != 0 or status >= 500:
            err = " | ".join(proc.stderr.decode(errors="replace").split("\n")).strip(" |")
            log_line("git http-backend %s: exit %d: %s" % (path_info, proc.returncode, err))
        self.send_response(status)
        for k, v in headers:
            if k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, help="the folder with git/, private/, files/")
    ap.add_argument("--port", type=int, default=0, help="0 (default): a free port")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--token-file", help="the token /private wants (its bytes as they are)")
    ap.add_argument("--log", help="one line per request (default: stderr)")
    args = ap.parse_args()

    Config.root = os.path.abspath(args.root)
    if args.token_file:
        with open(args.token_file, "rb") as f:
            Config.token = f.read()
        if not Config.token:
            ap.error("the token file is empty")
    if args.log:
        Config.log = open(args.log, "a", buffering=1)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    log_line("listening on 127.0.0.1:%d, root %s" % (port, Config.root))
    print(port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
