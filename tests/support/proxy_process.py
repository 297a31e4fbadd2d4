"""What the integration tests share: a demo proxy process (`xks-proxy demo --setup-only`, then
`serve`) with short timeouts, signing as KMS signs (botocore), a fake XKS server for xks-load's
checks, and a base test class with one proxy per class. Every server runs on 127.0.0.1 with
ports picked free, and every wait is bounded.

Test files call run(globals()) with argv: PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
import uuid

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

BINARY = None
LOAD_BINARY = None
FAULT_MODULE = None
STARTUP_SECONDS = 20
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def measure_rss_under_asan():
    """Under AddressSanitizer, freed memory waits in a quarantine (256 MiB by default) before it
    is reused, so RSS would measure ASan rather than the proxy: tests that bound RSS keep the
    proxies they start on a small quarantine. Release builds ignore this."""
    os.environ["ASAN_OPTIONS"] = ":".join(
        filter(None, [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=4",
                      "thread_local_quarantine_size_kb=64"]))


def rss_bytes(pid):
    """Resident memory of a process (root reads it even when the process is not dumpable)."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(data):
    return base64.b64encode(data).decode()


def metadata(operation="Encrypt"):
    return {"awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
            "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1",
            "kmsOperation": operation, "kmsRequestId": str(uuid.uuid4())}


def also_serve(*keys):
    """An edit_config for ProxyProcess: the demo key store lists these keys too."""
    def edit(config):
        return config.replace("keys = [", "keys = [%s, " % ", ".join('"%s"' % k for k in keys), 1)
    return edit


class ProxyProcess:
    """`xks-proxy demo --setup-only` state, a config with short timeouts, `xks-proxy serve`."""

    def __init__(self, state_dir, mtls=False, fault_control=None, backends=1, fault_dir=None,
                 before_serve=None, server_settings="", open_files=None, edit_config=None,
                 wait_for="/readyz", environment=None, mounted_config=False, vendors=None):
        self.dir = state_dir
        self.port, self.admin_port = free_port(), free_port()
        setup = [BINARY, "demo", "--setup-only", "--state-dir", state_dir,
                 "--port", str(self.port), "--admin-port", str(self.admin_port),
                 "--backends", str(backends)]
        if mtls:
            setup.append("--mtls")
        if vendors:
            setup += ["--vendors", vendors]  # e.g. "softhsm,nss": a mixed fleet
        if fault_dir:
            # Each HSM through its own copy of the fault module, steered by backend-K.ctl.
            setup += ["--fault-dir", fault_dir]
        subprocess.run(setup, check=True, stdout=subprocess.DEVNULL, timeout=60)
        if before_serve:
            before_serve(state_dir)  # e.g. change the tokens before the proxy takes stock
        with open(os.path.join(state_dir, "xks-proxy.toml")) as f:
            config = f.read()
        config = config.replace(
            "[server]\n",
            "[log]\nformat = \"json\"\n\n"
            "[server]\nheader_timeout_ms = 700\nidle_timeout_ms = 5000\n"
            "max_body_bytes = 65536\nfleet_size = 2\n" + server_settings)
        if edit_config:
            config = edit_config(config)
        env = dict(os.environ, SOFTHSM2_CONF=os.path.join(state_dir, "softhsm/softhsm2.conf"),
                   **(environment or {}))
        if fault_dir:
            env.update(XKS_FAULT_TARGET=SOFTHSM_MODULE)
            env.pop("XKS_FAULT_CONTROL", None)
        if fault_control:
            # The fault-injecting module in front of SoftHSM, steered by `fault_control`.
            real_module = re.search(r'module = "([^"]+)"', config).group(1)
            config = config.replace(real_module, FAULT_MODULE)
            # It stands for a network HSM, whose calls can block: on HSM threads, as for one
            # (an in-process module's calls run inline on the I/O threads).
            config = re.sub(r"\nsessions = (\d+)\n", r"\nsessions = \1\nworkers = \1\n", config,
                            count=1)
            env.update(XKS_FAULT_TARGET=real_module, XKS_FAULT_CONTROL=fault_control)
        if mounted_config:
            # As Kubernetes mounts a ConfigMap: config/test.toml -> ..data/test.toml, where
            # ..data links to the current version's directory (see publish_config()).
            os.makedirs(os.path.join(state_dir, "config"))
            os.symlink("..data/test.toml", os.path.join(state_dir, "config", "test.toml"))
            self.config = os.path.join(state_dir, "config", "test.toml")
            self.publish_config(config)
        else:
            self.config = os.path.join(state_dir, "test.toml")
            with open(self.config, "w") as f:
                f.write(config)
        with open(os.path.join(state_dir, "secrets/sigv4-access-key-id")) as f:
            self.access_key_id = f.read()
        with open(os.path.join(state_dir, "secrets/sigv4-secret")) as f:
            self.secret = f.read()
        self.ca = os.path.join(state_dir, "tls/ca.pem")
        self.log = open(os.path.join(state_dir, "serve.log"), "w")
        def limit_open_files():
            if open_files:
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.process = subprocess.Popen([BINARY, "serve", "--config", self.config],
                                        stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=limit_open_files)
        deadline = time.time() + STARTUP_SECONDS
        while time.time() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(
                        "http://127.0.0.1:%d%s" % (self.admin_port, wait_for), timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("xks-proxy did not become ready; see " + self.log.name)

    def publish_config(self, text):
        """A new version of a mounted configuration, published as Kubernetes' atomic writer
        does: a new directory, then the ..data symlink renamed over to point at it."""
        mount = os.path.join(self.dir, "config")
        self.config_version = getattr(self, "config_version", 0) + 1
        version = "..v%d" % self.config_version
        os.makedirs(os.path.join(mount, version))
        with open(os.path.join(mount, version, "test.toml"), "w") as f:
            f.write(text)
        os.symlink(version, os.path.join(mount, "..data_tmp"))
        os.rename(os.path.join(mount, "..data_tmp"), os.path.join(mount, "..data"))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def scrape(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port,
                                    timeout=10) as response:
            return response.read().decode()

    def metric(self, series):
        """The value of one series in /metrics, None when absent."""
        match = re.search("^" + re.escape(series) + r" (\S+)$", self.scrape(), re.MULTILINE)
        return float(match.group(1)) if match else None

    def tls_context(self, client_cert=None):
        context = ssl.create_default_context(cafile=self.ca)
        if client_cert:
            context.load_cert_chain(*client_cert)
        return context

    def signed(self, method, path, body, secret=None, region="us-east-1", extra_headers=None):
        """Headers for a request signed by botocore as KMS signs (host;x-amz-date)."""
        request = AWSRequest(method=method, url="https://localhost:%d%s" % (self.port, path),
                             data=body, headers=dict(extra_headers or {}))
        SigV4Auth(Credentials(self.access_key_id, secret or self.secret), "kms-xks-proxy",
                  region).add_auth(request)
        headers = dict(request.headers.items())
        headers["Host"] = "localhost:%d" % self.port
        headers["Content-Type"] = "application/json"
        return headers

    def call(self, operation_path, payload, method="POST", secret=None, connection=None,
             prefix="/example"):
        path = prefix + "/kms/xks/v1/" + operation_path
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        own = connection is None
        if own:
            connection = http.client.HTTPSConnection("localhost", self.port, timeout=10,
                                                     context=self.tls_context())
        connection.request(method, path, body=body, headers=self.signed(method, path, body, secret))
        response = connection.getresponse()
        data = response.read()
        if own:
            connection.close()
        return response.status, json.loads(data) if data else None


class NssSoftoken:
    """NSS softoken, a second PKCS#11 implementation, set up from nothing: a database made by
    certutil with a password, holding the demo's keys made through PKCS#11 by `xks-proxy keys
    create` (with the module's init_reserved parameters)."""

    MODULE = "/usr/lib/x86_64-linux-gnu/libsoftokn3.so"
    TOKEN = "NSS Certificate DB"
    KEYS = (("foo", "encrypt,decrypt"), ("xks-health", "encrypt,decrypt"),
            ("encrypt_only_key", "encrypt"), ("decrypt_only_key", "decrypt"),
            ("impotent_key", "none"))

    def __init__(self, directory):
        database = os.path.join(directory, "nssdb")
        os.makedirs(database)
        self.password = os.path.join(directory, "nss-password")
        with open(self.password, "w") as f:
            f.write("nss-db-password-%d\n" % os.getpid())
        os.chmod(self.password, 0o600)
        subprocess.run(["certutil", "-N", "-d", "sql:" + database, "-f", self.password],
                       check=True, capture_output=True, timeout=60)
        self.init_reserved = ("configdir='sql:%s' certPrefix='' keyPrefix='' "
                              "secmod='secmod.db' flags=" % database)
        self.token_options = ["--module", self.MODULE, "--init-reserved", self.init_reserved,
                              "--token-label", self.TOKEN, "--pin-file", self.password]
        for label, usage in self.KEYS:
            subprocess.run([BINARY, "keys", "create", "--label", label, "--usage", usage] +
                           self.token_options, check=True, capture_output=True, timeout=60)

    def serve_instead_of_softhsm(self, config):
        """The demo configuration with its [hsm] table on this token (for ProxyProcess's
        edit_config)."""
        table = ('[hsm]\nmodule = "%s"\ninit_reserved = "%s"\nvendor_profile = "nss"\n'
                 'token_label = "%s"\npin_file = "%s"\nhealth_key = "xks-health"\n\n'
                 % (self.MODULE, self.init_reserved, self.TOKEN, self.password))
        return re.sub(r"\[hsm\]\n(?:[^\[\n].*\n|\n)*", table, config, count=1)


class FakeXksServer:
    """An HTTPS server with the demo's certificate that answers Encrypt plausibly, Decrypt with
    the wrong plaintext, and never answers GetKeyMetadata: what xks-load must catch. It answers
    GetHealthStatus rightly but in chunks, closing the connection after each answer."""

    def __init__(self, proxy):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                if self.path.endswith("/metadata"):
                    time.sleep(2)
                    return
                if self.path.endswith("/health"):
                    body = json.dumps({"xksProxyFleetSize": 1, "ekmFleetDetails": [
                        {"id": "fake", "model": "fake", "healthStatus": "ACTIVE"}]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for chunk in (body[:10], body[10:]):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                    self.close_connection = True
                    return
                if self.path.endswith("/encrypt"):
                    answer = {"ciphertext": b64(os.urandom(32)),
                              "initializationVector": b64(os.urandom(12)),
                              "authenticationTag": b64(os.urandom(16))}
                else:
                    answer = {"plaintext": b64(b"not what was sealed, 32 bytes.!!")}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(proxy.dir, "tls/server.pem"),
                                os.path.join(proxy.dir, "tls/server-key.pem"))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class SharedProxyTest(unittest.TestCase):
    """One demo proxy per test class (started in setUpClass), and helpers to talk to it."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-server-test-")
        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"))

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def expect_error(self, result, status, name):
        self.assertEqual(result[0], status, result)
        self.assertEqual(result[1]["errorName"], name, result)

    def audit_lines(self, name="audit.log"):
        time.sleep(0.3)  # the writer thread flushes each batch
        with open(os.path.join(self.proxy.dir, name)) as f:
            return f.read().splitlines()

    def verify_audit(self, *names, live=True):
        """`xks-proxy audit verify` with the demo's key over `names` (oldest first; default the
        live audit.log)."""
        names = names or ("audit.log",)
        return subprocess.run(
            [BINARY, "audit", "verify", "--key-file",
             os.path.join(self.proxy.dir, "secrets/audit-key")] + (["--live"] if live else []) +
            [os.path.join(self.proxy.dir, name) for name in names],
            capture_output=True, text=True, timeout=30)

    def xks_load(self, *arguments, port=None):
        return subprocess.run(
            [LOAD_BINARY, "--port", str(port or self.proxy.port), "--cacert", self.proxy.ca,
             "--access-key-id", self.proxy.access_key_id, "--secret-file",
             os.path.join(self.proxy.dir, "secrets/sigv4-secret")] + list(arguments),
            capture_output=True, text=True, timeout=60)

    def load_result(self, *arguments, expect_exit=0, port=None):
        result_file = os.path.join(self.proxy.dir, "load.json")
        if os.path.exists(result_file):
            os.remove(result_file)
        run = self.xks_load(*arguments, "--json", result_file, port=port)
        self.assertEqual(run.returncode, expect_exit, run.stdout + run.stderr)
        with open(result_file) as f:
            return json.load(f), run.stdout

    def raw_tls_socket(self):
        sock = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=10)
        return self.proxy.tls_context().wrap_socket(sock, server_hostname="localhost")

    def curl(self, protocol, body, urls=1, path="/example/kms/xks/v1/keys/foo/encrypt"):
        """curl --aws-sigv4 sending `body` to `path` `urls` times on one connection; returns
        [(http_version, status, body)]."""
        marker = "\n@@%{http_version} %{http_code}@@\n"
        body_file = os.path.join(self.tmp, "curl-body")
        with open(body_file, "w") as f:
            f.write(body)
        command = ["curl", "--silent", "--show-error", protocol, "--max-time", "10",
                   "--cacert", self.proxy.ca, "--aws-sigv4", "aws:amz:us-east-1:kms-xks-proxy",
                   "--user", self.proxy.access_key_id + ":" + self.proxy.secret,
                   "-H", "Content-Type: application/json", "--data-binary", "@" + body_file,
                   "-w", marker]
        command += ["https://localhost:%d%s" % (self.proxy.port, path)] * urls
        output = subprocess.run(command, capture_output=True, timeout=30, check=True).stdout
        results = []
        for chunk in output.decode().split("@@\n"):
            if "@@" in chunk:
                answer, trailer = chunk.split("\n@@")
                version, status = trailer.split()
                results.append((version, int(status), answer))
        return results

    def check_key_metadata(self):
        """GetKeyMetadata of the demo key foo, checked (also traffic for other tests)."""
        status, body = self.proxy.call("keys/foo/metadata", {"requestMetadata": metadata("CreateKey")})
        self.assertEqual((status, body), (200, {"keySpec": "AES_256",
                                               "keyUsage": ["ENCRYPT", "DECRYPT"],
                                               "keyStatus": "ENABLED"}))

    def check_round_trip_with_aad_and_cdiv(self):
        """Encrypt and decrypt at the spec's largest sizes with CDIV, and a bad tag refused."""
        plaintext, aad = os.urandom(4300), os.urandom(8192)
        status, sealed = self.proxy.call("keys/foo/encrypt", {
            "requestMetadata": metadata(), "plaintext": b64(plaintext),
            "additionalAuthenticatedData": b64(aad), "encryptionAlgorithm": "AES_GCM",
            "ciphertextDataIntegrityValueAlgorithm": "SHA_256"})
        self.assertEqual(status, 200, sealed)
        parts = [base64.b64decode(sealed[k]) for k in
                 ("initializationVector", "ciphertext", "authenticationTag")]
        self.assertEqual(len(parts[0]), 12)
        self.assertEqual(len(parts[1]), 4300)
        self.assertEqual(len(parts[2]), 16)
        # The key's version (format 1, version 1), bound into the AAD and the CDIV.
        self.assertEqual(base64.b64decode(sealed["ciphertextMetadata"]), b"\x01\x00\x01")
        # Spec appendix C, computed independently here.
        self.assertEqual(sealed["ciphertextDataIntegrityValue"],
                         b64(hashlib.sha256(aad + base64.b64decode(sealed["ciphertextMetadata"]) +
                                            b"".join(parts)).digest()))
        decrypt = {"requestMetadata": metadata("Decrypt"), "ciphertext": sealed["ciphertext"],
                   "initializationVector": sealed["initializationVector"],
                   "authenticationTag": sealed["authenticationTag"],
                   "ciphertextMetadata": sealed["ciphertextMetadata"],
                   "additionalAuthenticatedData": b64(aad), "encryptionAlgorithm": "AES_GCM"}
        status, opened = self.proxy.call("keys/foo/decrypt", decrypt)
        self.assertEqual(status, 200, opened)
        self.assertEqual(base64.b64decode(opened["plaintext"]), plaintext)
        decrypt["authenticationTag"] = b64(bytes(16))
        self.expect_error(self.proxy.call("keys/foo/decrypt", decrypt), 400,
                          "InvalidCiphertextException")


def run(test_globals):
    """Takes the three paths from the command line, for this module and the test file's, then
    runs the test file's tests."""
    global BINARY, LOAD_BINARY, FAULT_MODULE
    BINARY, LOAD_BINARY, FAULT_MODULE = sys.argv[1:4]
    test_globals.update(BINARY=BINARY, LOAD_BINARY=LOAD_BINARY, FAULT_MODULE=FAULT_MODULE)
    del sys.argv[1:4]
    unittest.main(module=test_globals["__name__"], verbosity=2)
