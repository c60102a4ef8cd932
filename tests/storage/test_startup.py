"""The startup check: Studio.open says what to do when the bucket is missing or S3 refuses the credentials."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

from core.errors import StorageError
from core.studio import Studio
from tests.conftest import make_settings
from tests.ports import listening_port
from tests.storage.conftest import FAKE_KEY, FAKE_SECRET, REGION

ROOT_KEY, ROOT_SECRET = "AKIAROOTSTUDIOTEST00", "root-secret-for-the-moto-admin-0000000"


@pytest.fixture(scope="module")
def authed_s3():
    """moto's S3 server as a process that checks credentials (IAM users with policies), on 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = "7"  # the set-up calls below run before authentication starts
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{listening_port(proc, timeout=30)}"
    except BaseException:
        proc.kill()
        raise
    kw = dict(endpoint_url=endpoint, aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET, region_name=REGION)
    iam, s3 = boto3.client("iam", **kw), boto3.client("s3", **kw)
    s3.create_bucket(Bucket="studio-auth")
    users = {}
    for name, actions in (("writer", ["s3:*"]), ("reader", ["s3:ListBucket", "s3:GetObject"])):
        iam.create_user(UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
        users[name] = (key["AccessKeyId"], key["SecretAccessKey"])
    yield endpoint, users
    proc.terminate()
    proc.wait(10)


def open_with(tmp_path, endpoint, key, secret, bucket="studio-auth"):
    env = {"STUDIO_STORAGE_URL": f"s3://{bucket}/studio", "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": endpoint}
    return Studio.open(settings=make_settings(tmp_path / "home", env), start_runner=False)


def test_valid_credentials_open_the_studio(tmp_path, authed_s3):
    endpoint, users = authed_s3
    studio = open_with(tmp_path, endpoint, *users["writer"])
    try:
        assert studio.ctx.store.is_s3 and studio.ctx.store.signs_urls
        studio.ctx.store.write("u/portraits/c/j.png", b"png")
        assert studio.ctx.store.read("u/portraits/c/j.png") == b"png"
        key, secret = users["writer"]
        root = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                            region_name=REGION)
        listed = [o["Key"] for o in root.list_objects_v2(Bucket="studio-auth").get("Contents", [])]
        assert listed == ["studio/u/portraits/c/j.png"]  # the check's probe object was removed
    finally:
        studio.close()


@pytest.mark.parametrize("case, expected", [
    ("unknown key", "refused the credentials for bucket 'studio-auth' (InvalidAccessKeyId)"),
    ("wrong secret", "refused the credentials for bucket 'studio-auth' (SignatureDoesNotMatch)"),
    ("read-only key", "accepted the credentials but refused to write objects"),
])
def test_refused_credentials_say_what_to_fix(tmp_path, authed_s3, case, expected):
    endpoint, users = authed_s3
    key, secret = {"unknown key": ("AKIAUNKNOWNSTUDIO000", "an-unknown-secret-0000000000000000000000"),
                   "wrong secret": (users["writer"][0], "a-wrong-secret-00000000000000000000000000"),
                   "read-only key": users["reader"]}[case]
    with pytest.raises(StorageError) as err:
        open_with(tmp_path, endpoint, key, secret)
    message = err.value.message
    assert expected in message and ("AWS_ACCESS_KEY_ID" in message or "s3:PutObject" in message)
    assert secret not in message and key not in message


def test_missing_bucket_says_create_it(tmp_path, moto):
    env = {"STUDIO_STORAGE_URL": "s3://no-such-bucket-here/x", "AWS_ACCESS_KEY_ID": FAKE_KEY,
           "AWS_SECRET_ACCESS_KEY": FAKE_SECRET, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": moto.endpoint}
    with pytest.raises(StorageError) as err:
        Studio.open(settings=make_settings(tmp_path / "home", env), start_runner=False)
    message = err.value.message
    assert "bucket 'no-such-bucket-here' does not exist" in message and "aws s3 mb" in message
    assert "STUDIO_STORAGE_URL" in message and FAKE_SECRET not in message and FAKE_KEY not in message


def test_unreachable_endpoint_says_so(tmp_path, refused_url):
    env = {"STUDIO_STORAGE_URL": "s3://some-bucket/x", "AWS_ACCESS_KEY_ID": FAKE_KEY, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
           "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": refused_url,
           "STUDIO_STORAGE_RETRY_BASE": "0.01"}
    with pytest.raises(StorageError, match="cannot reach the S3 endpoint http://127.0.0.1:.*AWS_ENDPOINT_URL"):
        Studio.open(settings=make_settings(tmp_path / "home", env), start_runner=False)
