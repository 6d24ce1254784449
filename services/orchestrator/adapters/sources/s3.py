"""A bucket (and key prefix) of any S3-compatible store as a source, through boto3: objects
listed page by page, each one's change token its ETag; an object's ``ragmesh-acl`` tag
(principals separated by spaces) gives its access list when it is read. Credentials come
from boto3's usual chain — the environment (``AWS_ACCESS_KEY_ID`` ...) or a mounted file
(``AWS_SHARED_CREDENTIALS_FILE``) — never from the sources file."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ragmesh.vocabulary.access import AccessError, access_list
from services.orchestrator.core.sources.acl import selected
from services.orchestrator.core.sources.model import (
    ListingFailed,
    ReadFailed,
    SourceDocument,
    SourceEntry,
    SourceSpec,
)

ACL_TAG = "ragmesh-acl"
#: Objects larger than this are reported, not read.
MAX_OBJECT_BYTES = 256 * 1024 * 1024


class S3Reader:
    """Lists and reads the objects under a prefix."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=spec.endpoint_url or None,
            region_name=spec.region or None,
            config=Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}),
        )

    async def listing(self) -> list[SourceEntry]:
        return await asyncio.to_thread(self._list)

    def _list(self) -> list[SourceEntry]:
        entries = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.spec.bucket, Prefix=self.spec.prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = str(item["Key"])
                    relative = key[len(self.spec.prefix) :].lstrip("/")
                    if relative and not key.endswith("/") and selected(relative, self.spec.include, self.spec.exclude):
                        location = f"s3://{self.spec.bucket}/{key}"
                        entries.append(SourceEntry(relative, str(item.get("ETag", "")).strip('"'), location))
        except (ClientError, BotoCoreError) as error:
            raise ListingFailed(f"s3://{self.spec.bucket}/{self.spec.prefix}: {error}") from None
        return entries

    async def read(self, entry: SourceEntry) -> SourceDocument:
        return await asyncio.to_thread(self._read, entry)

    def _read(self, entry: SourceEntry) -> SourceDocument:
        key = entry.location.removeprefix(f"s3://{self.spec.bucket}/")
        try:
            head = self.client.head_object(Bucket=self.spec.bucket, Key=key)
            if int(head.get("ContentLength", 0)) > MAX_OBJECT_BYTES:
                raise ReadFailed(f"larger than {MAX_OBJECT_BYTES // (1024 * 1024)} MiB")
            body = self.client.get_object(Bucket=self.spec.bucket, Key=key)["Body"].read()
            tags = self.client.get_object_tagging(Bucket=self.spec.bucket, Key=key).get("TagSet", [])
        except (ClientError, BotoCoreError) as error:
            raise ReadFailed(f"s3: {error}") from None
        value = next((str(t["Value"]) for t in tags if t.get("Key") == ACL_TAG), None)
        try:
            access = access_list(value.split()) if value is not None else None
        except AccessError as error:
            raise ReadFailed(f"tag {ACL_TAG}: {error}") from None
        return SourceDocument(entry, content=body, file_name=key.rsplit("/", 1)[-1], access=access)
