#!/usr/bin/env node
// Bundles the tsc output (run `tsc -p .` first; `npm run build` does both)
// into dist/bundle/, which bin/sparkler starts from: loading a few files
// instead of 100+ ES modules saves tens of ms of start-up.
//   sparkler.mjs             the CLI (dist/src/cli/main.js), with chunks:
//   builder-<hash>.mjs       the VM builder, imported lazily after listen()
//   chunk-<hash>.mjs         code shared by the two
//   vcpu_worker.mjs, …       one self-contained bundle per worker module
//                            (WORKER_MODULES in src/vmm/worker_url.ts)
//   *.mjs.map                source maps onto dist/src/**/*.js, which the
//                            logger reads for --show-log-origin / module
// koffi (native) stays external and is resolved from node_modules.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');
const SRC = path.join(DIST, 'src');
const OUT = path.join(DIST, 'bundle');
// Built beside it, then swapped in: a sparkler starting meanwhile sees either
// the old bundle, none (and starts from dist/src/), or the new one, never half.
const TMP = path.join(DIST, `bundle.tmp-${process.pid}`);

const main = path.join(SRC, 'cli', 'main.js');
if (!fs.existsSync(main)) {
  process.stderr.write('scripts/bundle.mjs: dist/src/cli/main.js missing: run `tsc -p .` first\n');
  process.exit(2);
}
const { WORKER_MODULES } = await import(pathToFileURL(path.join(SRC, 'vmm', 'worker_url.js')).href);
const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

// Source maps should lead to the tsc output, the files the unbundled program
// runs (so a log line's origin reads the same either way): esbuild would
// otherwise follow tsc's own maps on to the .ts sources.
const noInputSourceMaps = {
  name: 'no-input-source-maps',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(DIST + path.sep)) return undefined;
      const text = await fs.promises.readFile(args.path, 'utf8');
      return { contents: text.replace(/^\/\/# sourceMappingURL=.*$/m, ''), loader: 'js' };
    });
  },
};

const common = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir: TMP,
  outExtension: { '.js': '.mjs' },
  external: ['koffi'],
  define: { __SPARKLER_BUNDLE__: 'true', __SPARKLER_VERSION__: JSON.stringify(version) },
  sourcemap: 'linked',
  // Keep class and function names: error names and logs may print them.
  keepNames: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [noInputSourceMaps],
  metafile: true,
};

fs.rmSync(TMP, { recursive: true, force: true });
try {
  // The CLI: code splitting keeps the dynamic import('./builder.js') a chunk of
  // its own, not parsed before the API socket listens.
  const cli = await build({ ...common, entryPoints: { sparkler: main }, splitting: true, entryNames: '[name]', chunkNames: '[name]-[hash]' });

  // Workers: each its own self-contained bundle, named as workerUrl() expects.
  const workers = await Promise.all(
    WORKER_MODULES.map((m) => {
      const name = m.slice(m.lastIndexOf('/') + 1);
      const entry = path.join(SRC, 'vmm', `${m}.js`);
      if (!fs.existsSync(entry)) throw new Error(`worker module ${m}: ${path.relative(ROOT, entry)} missing`);
      return build({ ...common, entryPoints: { [name]: entry }, entryNames: '[name]' });
    }),
  );

  // A `new URL('./x.js', import.meta.url)` left in the bundle would point at a
  // file that is not there: workers must go through workerUrl().
  for (const result of [cli, ...workers]) {
    for (const out of Object.keys(result.metafile.outputs)) {
      if (!out.endsWith('.mjs')) continue;
      const text = fs.readFileSync(path.join(ROOT, out), 'utf8');
      const m = /new URL\(\s*["'`]\.{1,2}\/[^"'`]*\.js["'`]\s*,\s*import\.meta\.url\s*\)/.exec(text);
      if (m) throw new Error(`${out}: layout-dependent ${m[0]} in the bundle`);
    }
  }
} catch (e) {
  fs.rmSync(TMP, { recursive: true, force: true });
  process.stderr.write(`scripts/bundle.mjs: ${e instanceof Error ? e.message : e}\n`);
  process.exit(1);
}

const old = path.join(DIST, `bundle.old-${process.pid}`);
if (fs.existsSync(OUT)) fs.renameSync(OUT, old);
fs.renameSync(TMP, OUT);
fs.rmSync(old, { recursive: true, force: true });

const files = fs.readdirSync(OUT).filter((f) => f.endsWith('.mjs'));
const kib = (f) => (fs.statSync(path.join(OUT, f)).size / 1024).toFixed(0);
if (process.argv.includes('--verbose')) {
  process.stderr.write(`dist/bundle: ${files.map((f) => `${f} (${kib(f)} KiB)`).join(', ')}\n`);
}
