#!/usr/bin/python3
"""Prints a wrk Lua script that replays one botocore-signed XKS Encrypt request (SigV4 allows
replay for five minutes, which bounds how long a run may last).

Usage: sign_request.py HOST:PORT ACCESS_KEY_ID SECRET_FILE PLAINTEXT_BYTES
"""
import base64
import json
import os
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

host, access_key_id, secret_file, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
secret = open(secret_file).read().strip()
path = "/example/kms/xks/v1/keys/foo/encrypt"
body = json.dumps({
    "requestMetadata": {"awsPrincipalArn": "arn:aws:iam::123456789012:user/bench",
                        "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1",
                        "kmsOperation": "Encrypt", "kmsRequestId": "bench"},
    "plaintext": base64.b64encode(os.urandom(size)).decode(),
    "encryptionAlgorithm": "AES_GCM"}, separators=(",", ":"))
request = AWSRequest(method="POST", url="https://" + host + path, data=body.encode(),
                     headers={"Host": host})
SigV4Auth(Credentials(access_key_id, secret), "kms-xks-proxy", "us-east-1").add_auth(request)
print('wrk.method = "POST"')
print("wrk.path = %s" % json.dumps(path))
print("wrk.body = %s" % json.dumps(body))
for name, value in request.headers.items():
    print("wrk.headers[%s] = %s" % (json.dumps(name), json.dumps(value)))
print('wrk.headers["Content-Type"] = "application/json"')
