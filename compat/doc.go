// Package compat is signet's compatibility matrix (issue 4). TestMatrix runs one scenario
// with each real S3 client, holding dummy credentials, through signet (in process, behind
// httptest) to a versitygw that verifies every signature. The package has no code of its
// own: everything is in its tests.
//
// # Scenario
//
// Each client gets its own versitygw and signet, which routes the glob "compat-*" to it,
// and runs these steps, each a subtest:
//
//   - mb: create the bucket through signet;
//   - put small: 100,000 bytes under a key with a space;
//   - put 100MiB: with the client's own default multipart threshold and part size;
//   - get 100MiB: download and compare SHA-256;
//   - copy: server-side copy of the small object;
//   - list prefix: exactly the two keys under "docs/", not the copy under "copies/";
//   - presign get: the client's own presigner, pointed at signet; the URL is fetched with
//     plain net/http through signet;
//   - delete: the object is gone upstream, HEAD through signet is 404, and the client's
//     listing no longer shows it.
//
// Every upload and the copy are checked by the SHA-256 of the file in versitygw's data
// directory, with no S3 layer between, so aws-chunked framing leaking into an object
// shows. The test files come from a seeded ChaCha8 stream and are written to disk, not
// held in memory. A recorder in front of signet keeps the shape of every request as the
// client sent it; a failing step logs its requests, and the test logs the matrix below.
//
// # Matrix
//
// Measured with the clients below (✓ passes, ✗ fails, n/a not offered by the client):
//
//	| client        | mb | put small | put 100MiB | get 100MiB | copy | list prefix | presign get      | delete | single PUT sends | 100 MiB upload |
//	|---------------|:--:|:---------:|:----------:|:----------:|:----:|:-----------:|:----------------:|:------:|------------------|----------------|
//	| aws-cli       | ✓  | ✓         | ✓          | ✓          | ✓    | ✓           | ✓ (SigV4)        | ✓      | hex SHA-256, Content-MD5, Expect: 100-continue | multipart, 13 parts of 8 MiB: hex SHA-256, Content-MD5, Expect: 100-continue |
//	| boto3         | ✓  | ✓         | ✓          | ✓          | ✓    | ✓           | ✓ (SigV2, SigV4) | ✓      | hex SHA-256, Content-MD5, Expect: 100-continue | multipart, 13 parts of 8 MiB: hex SHA-256, Content-MD5, Expect: 100-continue |
//	| rclone        | ✓  | ✓         | ✓          | ✓          | ✓    | ✓           | ✓ (SigV4)        | ✓      | `UNSIGNED-PAYLOAD`, Content-MD5 | single PUT (cutoff 200 MiB): `UNSIGNED-PAYLOAD`, Content-MD5, Expect: 100-Continue |
//	| s3cmd         | ✓  | ✓         | ✓          | ✓          | ✓    | ✓           | ✓ (SigV2)        | ✓      | hex SHA-256 | multipart, 7 parts of 15 MiB: hex SHA-256 |
//	| aws-sdk-go-v2 | ✓  | ✓         | ✓          | ✓          | ✓    | ✓           | ✓ (SigV4)        | ✓      | hex SHA-256 | multipart, 20 parts of 5 MiB: hex SHA-256, Expect: 100-continue |
//	| minio-go      | ✓  | ✓         | ✓          | ✓          | ✓    | ✓           | ✓ (SigV4)        | ✓      | `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, aws-chunked | multipart, 7 parts of 16 MiB: `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, aws-chunked |
//	| aws-sdk-js-v3 | ✓  | ✓         | ✓          | ✓          | ✓    | ✓           | ✓ (SigV4)        | ✓      | `STREAMING-UNSIGNED-PAYLOAD-TRAILER`, aws-chunked, trailer x-amz-checksum-crc32, Transfer-Encoding: chunked, no Content-Length | multipart, 20 parts of 5 MiB: hex SHA-256, x-amz-checksum-crc32, Expect: 100-continue |
//
// Clients: awscli 2.9.19, python3-boto3 1.26.27 (botocore 1.29.27), rclone 1.60.1 and
// s3cmd 2.3.0 from Debian 12; aws-sdk-go-v2 service/s3 1.114.10 and minio-go 7.4.1 from
// go.mod; @aws-sdk/client-s3 and lib-storage 3.1175.0 and s3-request-presigner 3.1169.0
// from npm, on Node 20. Every client signs its requests with SigV4 and the dummy key;
// signet strips that and signs again with the account's key.
//
// # How each client is driven
//
//   - Programs run by their Debian paths (/usr/bin/aws, /usr/bin/python3, /usr/bin/rclone,
//     /usr/bin/s3cmd) with an environment built from nothing: PATH, HOME (a fresh
//     directory) and the client's own settings. Machines may have other copies earlier on
//     PATH (pyenv) and CA-bundle variables that break rclone.
//   - Retries are off wherever the client allows it (AWS_MAX_ATTEMPTS=1, rclone --retries 1
//     --low-level-retries 1, RetryMaxAttempts, MaxRetries, maxAttempts), so that a retry
//     cannot hide a failure. s3cmd has no such setting.
//   - boto3 and the JavaScript SDK run small scripts in testdata, one operation per run.
//     boto3 presigns twice: its default, SigV2 on a custom endpoint, and s3v4. The
//     JavaScript SDK puts the small file with PutObjectCommand and a Node stream body, the
//     aws-chunked, Transfer-Encoding: chunked case, and the large one with lib-storage's
//     Upload. Its script is copied to a temporary directory and run with NODE_PATH; ES
//     modules ignore NODE_PATH, so it loads the SDK with createRequire.
//   - aws-sdk-go-v2 uploads over 5 MiB as a multipart upload of 5 MiB parts, one at a time:
//     the upload manager's defaults, without the manager, which go.mod does not include.
//   - rclone's 100 MiB upload is a single PUT: its default upload cutoff is 200 MiB. `rclone
//     link` presigns SigV4 GET URLs for s3 remotes. s3cmd signurl always signs with SigV2.
//
// # Installing the clients
//
// Tests fail, never skip, when a client is missing, and say how to install it. .ci/run
// installs the Debian packages (apt-get install -y --no-install-recommends awscli rclone
// s3cmd python3-boto3) and `make tools` the npm packages into $SIGNET_TOOLS/node
// (SIGNET_NODE_MODULES overrides the node_modules directory). When they are missing or at
// other versions, the test runs npm install itself.
//
// # Running
//
// go test ./compat/ -v prints the matrix. The clients run in parallel, two at a time on
// two cores; the whole matrix takes about 25 s on an idle two-core machine.
package compat
