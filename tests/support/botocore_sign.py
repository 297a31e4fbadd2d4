#!/usr/bin/python3
"""Signs random XKS requests with botocore's SigV4Auth, an independent SigV4 implementation.

Prints one request a line as space-separated hex fields:
  access_key_id secret region method path body amz_date authorization [name value]...
where the name/value pairs are every header botocore signed or added, in request order.
Usage: botocore_sign.py COUNT SEED
"""
import datetime
import random
import sys
from base64 import b64encode

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
SECRET_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
KEY_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
PREFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
REGIONS = ["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1", "il-central-1"]
HOSTS = ["xks.example.com", "127.0.0.1", "xks-proxy.internal.example.org", "[::1]"]


class FixedClock(datetime.datetime):
    now_value = None

    @classmethod
    def utcnow(cls):
        return cls.now_value


def word(rng, chars, low, high):
    return "".join(rng.choice(chars) for _ in range(rng.randint(low, high)))


def random_body(rng, operation):
    metadata = {"kmsRequestId": word(rng, "0123456789abcdef-", 8, 36),
                "kmsOperation": rng.choice(["Encrypt", "Decrypt", "GenerateDataKey",
                                            "DescribeKey", "CreateKey", "ReEncrypt"])}
    if rng.random() < 0.8:
        metadata["awsPrincipalArn"] = "arn:aws:iam::123456789012:user/" + word(
            rng, PREFIX_CHARS, 1, 40)
    if rng.random() < 0.3:
        metadata["kmsViaService"] = "ebs"
    parts = ['"requestMetadata":{' + ",".join(
        '"%s":"%s"' % kv for kv in metadata.items()) + "}"]
    if operation in ("encrypt", "decrypt"):
        parts.append('"plaintext":"%s"' % b64encode(rng.randbytes(rng.randint(0, 300))).decode())
        if rng.random() < 0.5:
            parts.append('"additionalAuthenticatedData":"%s"' % b64encode(
                rng.randbytes(rng.randint(0, 64))).decode())
        parts.append('"encryptionAlgorithm":"AES_GCM"')
    if rng.random() < 0.2:
        parts.append('"note":"caf\u00e9 \u2603"')  # non-ASCII bytes in the body
    separator = rng.choice([",", ", ", ",\n  "])
    return ("{" + separator.join(parts) + "}").encode("utf-8")


def main():
    count, seed = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    botocore.auth.datetime.datetime = FixedClock
    for _ in range(count):
        access_key_id = word(rng, BASE32, 20, 30)
        secret = word(rng, SECRET_CHARS, 43, 64)
        region = rng.choice(REGIONS)
        operation = rng.choice(["metadata", "encrypt", "decrypt", "health"])
        prefix = "/" + word(rng, PREFIX_CHARS, 1, 40) if rng.random() < 0.8 else ""
        if operation == "health":
            path = prefix + "/kms/xks/v1/health"
        else:
            # "." and ".." are dot segments: botocore (like every HTTP client) normalises them
            # away, so they cannot name a key; the proxy verifies the raw path as sent.
            key_id = word(rng, KEY_ID_CHARS, 1, 128)
            while key_id in (".", ".."):
                key_id = word(rng, KEY_ID_CHARS, 1, 128)
            path = "%s/kms/xks/v1/keys/%s/%s" % (prefix, key_id, operation)
        host = rng.choice(HOSTS)
        if rng.random() < 0.5:
            host += ":%d" % rng.randint(1, 65535)
        FixedClock.now_value = datetime.datetime(2020, 1, 1) + datetime.timedelta(
            seconds=rng.randint(0, 10 * 365 * 86400))

        headers = {}
        if rng.random() < 0.5:
            headers["Content-Type"] = "application/json"
        if rng.random() < 0.3:
            headers["X-Custom-Trace"] = "  a  " + word(rng, "bc \t", 0, 12) + "  z "
        if rng.random() < 0.3:
            headers["Host"] = host
        request = AWSRequest(method="POST", url="https://" + host + path,
                             data=random_body(rng, operation), headers=headers)
        signer = SigV4Auth(Credentials(access_key_id, secret), "kms-xks-proxy", region)
        signer.add_auth(request)

        pairs = list(request.headers.items())
        if "host" not in {name.lower() for name, _ in pairs}:
            pairs.append(("Host", signer.headers_to_sign(request)["host"]))
        fields = [access_key_id, secret, region, "POST", path, request.body,
                  request.headers["X-Amz-Date"], request.headers["Authorization"]]
        for name, value in pairs:
            fields += [name, value]
        print(" ".join((f if isinstance(f, bytes) else f.encode("utf-8")).hex() for f in fields))


if __name__ == "__main__":
    main()
