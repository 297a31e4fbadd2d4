#!/usr/bin/python3
"""The four XKS APIs through the real binary: answers, every error the proxy produces, forward
compatibility, and requests signed by an independent signer (botocore, curl --aws-sigv4); on
SoftHSM and again on NSS softoken, a second PKCS#11 implementation.

Usage: xks_api_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import base64
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from proxy_process import *  # noqa: E402,F401,F403  (the process, signing, fakes)
import proxy_process  # noqa: E402


class XksApiTest(proxy_process.SharedProxyTest):
    ekm_vendor = "SoftHSM project"  # the token's manufacturer

    def test_health_status(self):
        status, body = self.proxy.call("health", {"requestMetadata": {
            "kmsRequestId": "1", "kmsOperation": "KmsHealthCheck"}})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["xksProxyFleetSize"], 2)
        self.assertEqual(body["ekmVendor"], self.ekm_vendor)
        self.assertEqual(len(body["ekmFleetDetails"]), 1)
        self.assertEqual(body["ekmFleetDetails"][0]["healthStatus"], "ACTIVE")

    def test_key_metadata(self):
        self.check_key_metadata()

    def test_an_in_process_module_is_called_inline(self):
        with open(os.path.join(self.proxy.dir, "serve.log")) as f:
            log = f.read()
        self.assertRegex(log, r"HSM \S+: 8 sessions, calls inline on the I/O threads for HTTP/1\.1 "
                         r"and on \d+ HSM threads for HTTP/2")

    def test_encrypt_decrypt_round_trip_with_aad_and_cdiv(self):
        self.check_round_trip_with_aad_and_cdiv()

    def test_every_error_the_proxy_produces(self):
        encrypt = {"requestMetadata": metadata(), "plaintext": "AAAA",
                   "encryptionAlgorithm": "AES_GCM"}
        self.expect_error(self.proxy.call("keys/foo/encrypt", {}), 400, "ValidationException")
        self.expect_error(self.proxy.call("keys/foo/encrypt", b"{not json"), 400,
                          "ValidationException")
        self.expect_error(self.proxy.call("keys/missing/encrypt", encrypt), 404,
                          "KeyNotFoundException")
        self.expect_error(self.proxy.call("keys/foo/encrypt", encrypt, prefix="/example/invalid"),
                          404, "InvalidUriPathException")
        # Outside its own key store's prefix a credential learns nothing of what exists there.
        self.expect_error(self.proxy.call("keys/foo/encrypt", encrypt, prefix="/other"), 401,
                          "AuthenticationFailedException")
        self.expect_error(self.proxy.call("keys/foo/encrypt", encrypt, secret="x" * 44), 401,
                          "AuthenticationFailedException")
        self.expect_error(self.proxy.call("keys/decrypt_only_key/encrypt", encrypt), 400,
                          "InvalidKeyUsageException")
        cdiv = dict(encrypt, ciphertextDataIntegrityValueAlgorithm="SHA_256")
        self.expect_error(self.proxy.call("keys/encrypt_only_key/encrypt", cdiv), 400,
                          "InvalidKeyUsageException")
        status, body = self.proxy.call("keys/foo/metadata", {"requestMetadata": metadata()},
                                       method="GET")
        self.assertEqual(status, 405, body)

    def test_forward_compatible_requests_are_accepted(self):
        status, body = self.proxy.call("keys/foo/encrypt", {
            "requestMetadata": dict(metadata("BulkEncryptOfTheFuture"), newField="x"),
            "plaintext": "AAAA", "encryptionAlgorithm": "AES_GCM", "futureOption": [1, 2]})
        self.assertEqual(status, 200, body)

    def test_curl_signs_and_sends_over_http_1_1_and_http_2(self):
        body = json.dumps({"requestMetadata": metadata(), "plaintext": "SGVsbG8=",
                           "encryptionAlgorithm": "AES_GCM"})
        for protocol, version in (("--http1.1", "1.1"), ("--http2", "2")):
            results = self.curl(protocol, body, urls=3)  # three requests, one connection
            self.assertEqual(len(results), 3)
            for got_version, status, answer in results:
                self.assertEqual((got_version, status), (version, 200), answer)
                self.assertEqual(answer.count("\n"), 0)  # compact, one line
                self.assertEqual(len(base64.b64decode(json.loads(answer)["ciphertext"])), 5)



class XksApiOnNssSoftokenTest(XksApiTest):
    """Every test above, the proxy serving from NSS softoken (vendor profile nss)."""

    ekm_vendor = "Mozilla Foundation"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-nss-api-test-")
        nss = NssSoftoken(os.path.join(cls.tmp, "nss"))
        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"),
                                 edit_config=nss.serve_instead_of_softhsm)

if __name__ == "__main__":
    proxy_process.run(globals())
