// A real S3-wire-protocol server (s3rver) in a process of its own, for tests and bench/s3.mjs:
//   node --openssl-legacy-provider tests/helpers/s3rver-main.mjs <directory> [bucket …]
// Prints {"port":N} once listening on 127.0.0.1, and exits when its stdin closes (its parent died).
// Why a process: s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only
// offers with the legacy provider, a flag the test process itself cannot turn on; and a server
// of its own keeps its CPU off the event loop being measured.
import S3rver from 's3rver';

const [directory, ...buckets] = process.argv.slice(2);
if (!directory) {
  process.stderr.write('usage: s3rver-main.mjs <directory> [bucket …]\n');
  process.exit(2);
}
const server = new S3rver({
  port: 0,
  address: '127.0.0.1',
  directory,
  silent: true,
  configureBuckets: buckets.map((name) => ({ name })),
});
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
const stop = () => server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
