import fs from 'node:fs';

/**
 * `<db>.server.json`: where the server that holds a database file listens. DuckDB lets one
 * process open a file read-write and no other process open it at all meanwhile (not even
 * read-only), so a CLI command run beside `datavisor serve` cannot read the file: it asks the
 * server instead, and this file, next to the database, is how it finds it. `serve` writes it once
 * it listens and removes it when it exits; one left by a killed server names a process that is gone.
 */
export interface ServerFile {
  url: string;
  pid: number;
  /** The database the server opened, as it resolved it. */
  db: string;
}

export function serverFilePath(dbPath: string): string {
  return `${dbPath}.server.json`;
}

/** Written under a temporary name and renamed, so a reader never sees half of it. */
export function writeServerFile(dbPath: string, url: string): void {
  const file = serverFilePath(dbPath);
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, `${JSON.stringify({ url, pid: process.pid, db: dbPath } satisfies ServerFile)}\n`);
  fs.renameSync(temp, file);
}

/** Removes the file if it is still this process's (a later server may have replaced it). */
export function removeServerFile(dbPath: string): void {
  if (readServerFile(dbPath)?.pid === process.pid) fs.rmSync(serverFilePath(dbPath), { force: true });
}

/** The announcement of a server that is still running, or null (none, unreadable, or its process is gone). */
export function liveServer(dbPath: string): ServerFile | null {
  const found = readServerFile(dbPath);
  return found && isRunning(found.pid) ? found : null;
}

function readServerFile(dbPath: string): ServerFile | null {
  try {
    const parsed = JSON.parse(fs.readFileSync(serverFilePath(dbPath), 'utf8')) as Partial<ServerFile>;
    return typeof parsed.url === 'string' && Number.isInteger(parsed.pid) && parsed.db === dbPath ? (parsed as ServerFile) : null;
  } catch {
    // Missing, or torn by a crash mid-write (the rename makes that unlikely): no server to ask.
    return null;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
