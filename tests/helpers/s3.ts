import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { tempDir } from './env.js';
import { DEMO } from './fixtures.js';

/** s3rver's only credentials. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3TestServer {
  endpoint: string;
  /** Standard AWS variables that point DataVisor (through loadSettings) at this server. */
  env: Record<string, string>;
  /** A plain SDK client for seeding and checking. */
  client: S3Client;
  stop(): Promise<void>;
}

/** Starts s3rver (tests/helpers/s3rver-main.mjs) on 127.0.0.1 with the given buckets. */
export async function startS3Server(buckets: string[] = ['datasets']): Promise<S3TestServer> {
  const dir = tempDir('dv-s3rver-');
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', path.join(import.meta.dirname, 's3rver-main.mjs'), dir, ...buckets],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const port = await firstLine(child).then((l) => (JSON.parse(l) as { port: number }).port);
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    },
    client,
    async stop() {
      client.destroy();
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin?.end();
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (l) => {
      lines.close();
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`s3rver exited with code ${code} before listening`)));
  });
}

export async function putFile(client: S3Client, bucket: string, key: string, file: string, contentType?: string): Promise<void> {
  await client.send(new PutObjectCommand({
    Bucket: bucket, Key: key, Body: fs.createReadStream(file), ContentLength: fs.statSync(file).size, ContentType: contentType,
  }));
}

export async function deleteObject(client: S3Client, bucket: string, key: string): Promise<void> {
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/**
 * Uploads the demo dataset (tests/helpers/fixtures.ts: its JSON and its 128 JPEGs) under `prefix`, in
 * the layout of COCO's own downloads: `<prefix>/annotations/instances_train2017.json` and
 * `<prefix>/train2017/<file>.jpg`, 8 uploads at a time.
 */
export async function seedDemo(client: S3Client, bucket: string, prefix: string, options: { skipImages?: string[] } = {}): Promise<void> {
  await putFile(client, bucket, `${prefix}/annotations/instances_train2017.json`, DEMO.annotations, 'application/json');
  const names = fs.readdirSync(DEMO.images).filter((n) => !options.skipImages?.includes(n));
  for (let i = 0; i < names.length; i += 8) {
    await Promise.all(names.slice(i, i + 8).map((n) => putFile(client, bucket, `${prefix}/train2017/${n}`, path.join(DEMO.images, n), 'image/jpeg')));
  }
}
