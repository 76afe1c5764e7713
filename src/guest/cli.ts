/**
 * sparkler-guest: prepares the Linux guest (kernel + initramfs) that the
 * tests and the demo boot.
 *
 *   sparkler-guest prepare [--out DIR]   build or reuse a guest; prints its directory
 *   sparkler-guest path                  prints the latest prepared guest's directory
 */

import { findPreparedGuest, prepareGuest } from './assets.js';

const USAGE = `usage: sparkler-guest prepare [--out DIR]
       sparkler-guest path
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help') {
    process.stdout.write(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === 'prepare') {
    let outDir: string | undefined;
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === '--out' && rest[i + 1] !== undefined) outDir = rest[++i];
      else if (rest[i].startsWith('--out=')) outDir = rest[i].slice('--out='.length);
      else return usageError(`unexpected argument: ${rest[i]}`);
    }
    const guest = await prepareGuest({ outDir });
    process.stdout.write(guest.dir + '\n');
    return 0;
  }
  if (cmd === 'path') {
    if (rest.length) return usageError(`unexpected argument: ${rest[0]}`);
    const guest = findPreparedGuest();
    if (!guest) {
      process.stderr.write('sparkler-guest: no prepared guest; run `sparkler-guest prepare`\n');
      return 1;
    }
    process.stdout.write(guest.dir + '\n');
    return 0;
  }
  return usageError(`unknown command: ${cmd}`);
}

function usageError(msg: string): number {
  process.stderr.write(`sparkler-guest: ${msg}\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    process.stderr.write(`sparkler-guest: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
