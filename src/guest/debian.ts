/**
 * Debian package plumbing for guest assets: resolve, download and unpack
 * packages with apt's ordinary clients. Nothing is installed on the host:
 * `apt-get download` + `dpkg-deb -x` only unpack into a scratch directory.
 */

import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface DebPackage {
  name: string;
  version: string;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { cwd, maxBuffer: 64 << 20, env: { ...process.env, LC_ALL: 'C' } });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(err.stderr ?? '').trim() || err.message}`);
  }
}

/** Refreshes apt's package lists (needed on a fresh machine, or when they went stale). */
export async function aptUpdate(): Promise<void> {
  await run('apt-get', ['update', '-q']);
}

/** The version `apt-get download NAME` would fetch, or undefined if apt knows none. */
export async function candidateVersion(name: string): Promise<string | undefined> {
  const out = await run('apt-cache', ['policy', name]).catch(() => '');
  const m = /^\s*Candidate:\s*(\S+)/m.exec(out);
  return m && m[1] !== '(none)' ? m[1] : undefined;
}

/**
 * The versioned kernel package a meta package (linux-image-cloud-amd64)
 * currently points at, e.g. linux-image-6.1.0-56-cloud-amd64 6.1.192-2.
 */
export async function resolveKernelPackage(meta: string): Promise<DebPackage | undefined> {
  const out = await run('apt-cache', ['depends', meta]).catch(() => '');
  const m = /^\s*Depends:\s*(linux-image-\d\S*)/m.exec(out);
  if (!m) return undefined;
  const version = await candidateVersion(m[1]);
  return version ? { name: m[1], version } : undefined;
}

/** Downloads exactly `pkg` into `dir` and returns the .deb's path. */
export async function downloadDeb(pkg: DebPackage, dir: string): Promise<string> {
  // As root, apt drops to the _apt user to download and warns that it cannot
  // write our private scratch directory; downloading as root is what it falls back to anyway.
  const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
  await run('apt-get', [...sandbox, 'download', '-q', `${pkg.name}=${pkg.version}`], dir);
  const debs = readdirSync(dir).filter((f) => f.startsWith(`${pkg.name}_`) && f.endsWith('.deb'));
  if (debs.length !== 1) throw new Error(`expected one ${pkg.name} .deb in ${dir}, found ${debs.length}`);
  return join(dir, debs[0]);
}

export async function extractDeb(deb: string, dest: string): Promise<void> {
  await run('dpkg-deb', ['-x', deb, dest]);
}
