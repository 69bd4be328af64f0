#!/opt/venv/bin/python
"""Create the stack's buckets (idempotent): the lake, and the backup bucket with versioning on.

Reads LEPTON_S3_ENDPOINT_URL, LEPTON_LAKE_BUCKET, LEPTON_BACKUP_BUCKET and the standard AWS variables."""

import os
import sys
import time

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

endpoint = os.environ["LEPTON_S3_ENDPOINT_URL"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))
for _attempt in range(60):
    try:
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        break
    except EndpointConnectionError:
        time.sleep(1)
else:
    sys.exit(f"lepton-s3-init: no S3 endpoint answering at {endpoint}")
for variable, versioned in (("LEPTON_LAKE_BUCKET", False), ("LEPTON_BACKUP_BUCKET", True)):
    bucket = os.environ[variable]
    if bucket not in existing:
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as error:
            sys.exit(f"lepton-s3-init: cannot create bucket {bucket} ({variable}): {error}")
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    print(f"lepton-s3-init: bucket {bucket} ready{' (versioned)' if versioned else ''}")
