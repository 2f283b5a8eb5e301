"""One S3 operation with boto3, as an application would call it, for compat/matrix_test.go.

Usage: boto3_client.py ENDPOINT OP ARGS...
  mb BUCKET | put BUCKET KEY FILE | get BUCKET KEY FILE | list BUCKET PREFIX
  copy BUCKET SRC_KEY DST_KEY | delete BUCKET KEY | presign BUCKET KEY

Credentials and region come from the environment (AWS_ACCESS_KEY_ID, ...). put and get use
boto3's managed transfers with their defaults (multipart above 8 MiB, 8 MiB parts). list
prints the keys as a JSON array; presign prints {"<variant>": url}, one URL from boto3's
default presigner (SigV2 on a custom endpoint) and one with signature_version="s3v4".
"""
import json
import sys

import boto3
from botocore.config import Config


def client(endpoint, **config):
    return boto3.client("s3", endpoint_url=endpoint, config=Config(**config))


def main(endpoint, op, *args):
    s3 = client(endpoint)
    if op == "mb":
        (bucket,) = args
        s3.create_bucket(Bucket=bucket)
    elif op == "put":
        bucket, key, path = args
        s3.upload_file(path, bucket, key)
    elif op == "get":
        bucket, key, path = args
        s3.download_file(bucket, key, path)
    elif op == "list":
        bucket, prefix = args
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        print(json.dumps(keys))
    elif op == "copy":
        bucket, src, dst = args
        s3.copy_object(Bucket=bucket, Key=dst, CopySource={"Bucket": bucket, "Key": src})
    elif op == "delete":
        bucket, key = args
        s3.delete_object(Bucket=bucket, Key=key)
    elif op == "presign":
        bucket, key = args
        params = {"Bucket": bucket, "Key": key}
        urls = {
            "default": s3.generate_presigned_url("get_object", Params=params, ExpiresIn=300),
            "s3v4": client(endpoint, signature_version="s3v4").generate_presigned_url(
                "get_object", Params=params, ExpiresIn=300
            ),
        }
        print(json.dumps(urls))
    else:
        sys.exit("unknown operation " + op)


if __name__ == "__main__":
    main(*sys.argv[1:])
