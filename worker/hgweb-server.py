# One long-lived hgweb for every Mercurial repository under a root (argv[1]), run by the worker
# (worker/http/hgweb-server.ts) and sent only the wire-protocol requests it has vetted. It
# listens on 127.0.0.1, on a port the kernel picks, and prints "listening <port>" once it does.
# Push is disabled here as well as refused by the worker before a request ever comes here.
# It exits when its stdin closes: the worker holds the other end, so even a SIGKILLed worker
# takes it along.
import os
import signal
import sys
import threading

from mercurial import demandimport

demandimport.enable()

from mercurial import ui as uimod  # noqa: E402
from mercurial.hgweb import hgweb_mod, server  # noqa: E402

# at most this many requests at once (the worker sends one or two; anything else on loopback waits
# in the listen backlog), and no socket operation waits longer than IO_TIMEOUT_S
MAX_REQUESTS = 16
IO_TIMEOUT_S = 600
# repositories kept open between requests
MAX_OPEN_REPOS = 64

repos_root = os.path.realpath(os.fsencode(sys.argv[1]))

baseui = uimod.ui.load()
for section, name, value in [
    (b'web', b'allow-push', b''),
    (b'web', b'allow_push', b''),
    (b'web', b'allow-archive', b''),
    (b'web', b'push_ssl', b'false'),
    (b'web', b'address', b'127.0.0.1'),
    (b'web', b'port', b'0'),
    (b'web', b'accesslog', os.devnull.encode()),
]:
    baseui.setconfig(section, name, value, b'switchyard')

open_repos = {}
open_repos_lock = threading.Lock()


def not_found(respond):
    respond('404 Not Found', [('Content-Type', 'text/plain; charset=utf-8')])
    return [b'No such repository.\n']


def hgweb_for(path):
    """The hgweb of the repository at path, kept open while the repository stays the same one."""
    try:
        stat = os.stat(os.path.join(path, b'.hg'))
    except OSError:
        return None
    key = (path, stat.st_dev, stat.st_ino)
    with open_repos_lock:
        app = open_repos.get(key)
        if app is None:
            if len(open_repos) >= MAX_OPEN_REPOS:
                open_repos.clear()
            app = open_repos[key] = hgweb_mod.hgweb(path, baseui=baseui)
        return app


def application(env, respond):
    # /<repo>: the repository relative to the root, as the worker named it
    name = env['PATH_INFO'].encode('latin-1').strip(b'/')
    path = os.path.realpath(os.path.join(repos_root, name))
    if not name or not path.startswith(repos_root + b'/'):
        return not_found(respond)
    app = hgweb_for(path)
    if app is None:
        return not_found(respond)
    # as the CGI bridge ran it: the repository at /<repo>, the command only in the query
    env['SCRIPT_NAME'] = '/' + name.decode('latin-1')
    env['PATH_INFO'] = '/'
    return app(env, respond)


class BoundedServer(server.MercurialHTTPServer):
    slots = threading.BoundedSemaphore(MAX_REQUESTS)

    def process_request(self, request, client_address):
        if not self.slots.acquire(timeout=IO_TIMEOUT_S):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class Handler(server._httprequesthandler):
    timeout = IO_TIMEOUT_S


def exit_when_orphaned():
    while sys.stdin.buffer.read(65536):
        pass
    if os.getpgid(0) == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(0)


threading.Thread(target=exit_when_orphaned, daemon=True).start()
httpd = BoundedServer(baseui, application, ('127.0.0.1', 0), Handler)
sys.stdout.write('listening %d\n' % httpd.port)
sys.stdout.flush()
httpd.serve_forever()
