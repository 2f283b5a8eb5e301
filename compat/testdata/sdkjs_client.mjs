// One S3 operation with the AWS SDK for JavaScript v3, as an application would call it, for
// compat/matrix_test.go, which copies this file to a temporary directory and runs it with
// NODE_PATH set to the node_modules that hold @aws-sdk/*.
//
// Usage: node sdkjs_client.mjs OP ARGS...  (endpoint in S3_ENDPOINT, credentials and
// region from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)
//   mb BUCKET | put BUCKET KEY FILE | get BUCKET KEY FILE | list BUCKET PREFIX
//   copy BUCKET SRC_KEY DST_KEY | delete BUCKET KEY | presign BUCKET KEY
//
// put sends a file of at most 5 MiB with PutObjectCommand and a Node stream body (the SDK
// frames it as aws-chunked with a CRC32 trailer), and a larger one with lib-storage's
// Upload and its defaults (5 MiB parts, 4 at a time).
import { createRequire } from "node:module";
import fs from "node:fs";
import { pipeline } from "node:stream/promises";

// ES modules ignore NODE_PATH; require does not.
const require = createRequire(import.meta.url);
const {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, ListObjectsV2Command,
  CopyObjectCommand, DeleteObjectCommand,
} = require("@aws-sdk/client-s3");
const { Upload } = require("@aws-sdk/lib-storage");
const { getSignedUrl } = require("@aws-sdk/s3-request-presigner");

const s3 = new S3Client({ endpoint: process.env.S3_ENDPOINT, forcePathStyle: true, maxAttempts: 1 });
const [op, ...args] = process.argv.slice(2);

switch (op) {
  case "mb": {
    const [bucket] = args;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    break;
  }
  case "put": {
    const [bucket, key, file] = args;
    const body = fs.createReadStream(file);
    if (fs.statSync(file).size <= 5 << 20) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    } else {
      await new Upload({ client: s3, params: { Bucket: bucket, Key: key, Body: body } }).done();
    }
    break;
  }
  case "get": {
    const [bucket, key, file] = args;
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    await pipeline(out.Body, fs.createWriteStream(file));
    break;
  }
  case "list": {
    const [bucket, prefix] = args;
    const keys = [];
    let token;
    do {
      const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of out.Contents ?? []) keys.push(o.Key);
      token = out.NextContinuationToken;
    } while (token);
    console.log(JSON.stringify(keys));
    break;
  }
  case "copy": {
    const [bucket, src, dst] = args;
    // CopySource is sent as given: the key must be URL-encoded by the caller.
    const source = `${bucket}/${src.split("/").map(encodeURIComponent).join("/")}`;
    await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: dst, CopySource: source }));
    break;
  }
  case "delete": {
    const [bucket, key] = args;
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    break;
  }
  case "presign": {
    const [bucket, key] = args;
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 300 });
    console.log(JSON.stringify({ "": url }));
    break;
  }
  default:
    console.error(`unknown operation ${op}`);
    process.exit(2);
}
