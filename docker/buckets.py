"""Create the stack's buckets on MinIO if they do not exist (service minio-init of docker-compose.yaml).

    python docker/buckets.py BUCKET [BUCKET ...]

Endpoint and credentials come from the environment: S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY. boto3 is in the image (the `s3` extra) for MLflow's artifact store.
"""

from __future__ import annotations

import os
import sys
import time


def main(buckets: list[str]) -> int:
    import boto3
    from botocore.exceptions import ClientError, EndpointConnectionError

    s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT_URL"])
    for _ in range(30):  # MinIO reports healthy a moment before it takes requests
        try:
            existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
            break
        except EndpointConnectionError:
            time.sleep(2)
    else:
        print(f"error: no S3 endpoint answers at {os.environ['S3_ENDPOINT_URL']}", file=sys.stderr)
        return 1
    for bucket in buckets:
        if bucket in existing:
            print(f"bucket {bucket}: exists")
            continue
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        print(f"bucket {bucket}: created")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
