/**
 * virtio-net and virtio-vsock with Debian's cloud kernel (tests/lab/net_vsock.sh
 * runs inside the emulated-KVM lab on hosts without vmx/svm):
 *  - net: the guest configures eth0 on a TAP with link-local addresses and
 *    pings the host; the host pings the guest and reaches it over TCP; the
 *    guest's MAC is the configured one; its reboot ends the VMM with status 0.
 *  - vsock: the host connects to a guest listener through the VMM's Unix
 *    socket (`CONNECT 5000` / `OK <port>`), and the guest connects to CID 2,
 *    which the VMM forwards to the host's listener on `<uds_path>_6000`; both
 *    exchange a line and its echo. The guest's vsock client/server is
 *    tests/guests/vsock_tool.c, built here with `gcc -static` and added to the
 *    prepared initramfs as a second, concatenated archive (the cached
 *    initramfs itself stays untouched).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { before, test } from 'node:test';
import { prepareGuest } from '../../src/guest/assets.js';
import { buildCpio } from '../../src/guest/cpio.js';
import { freshDir, hostRunsLinuxGuests, runWithLinuxKvm } from '../helpers/lab.js';
import { projectRoot, requireKvm } from '../helpers/sparkler_run.js';

const GUEST_MAC = '06:00:ac:10:00:02';

let dir = '';
let labLog = '';

/** Builds tests/guests/vsock_tool.c as a static Linux executable. */
function buildVsockTool(outDir: string): Buffer {
  const src = path.join(projectRoot, 'tests', 'guests', 'vsock_tool.c');
  const out = path.join(outDir, 'vsock-tool');
  try {
    execFileSync('gcc', ['-static', '-O2', '-s', '-Wall', '-Wextra', '-Werror', '-o', out, src], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { code?: string; stderr?: Buffer; message: string };
    throw new Error(err.code === 'ENOENT'
      ? 'gcc not found: the vsock test builds its guest tool with gcc (Debian: apt-get install gcc libc6-dev)'
      : `building ${src} with gcc -static failed (a static glibc comes with Debian's libc6-dev):\n${err.stderr?.toString() ?? err.message}`);
  }
  return fs.readFileSync(out);
}

/** The prepared initramfs followed by a gzipped newc archive holding /bin/vsock-tool: Linux unpacks both. */
function vsockInitrd(initramfs: string, tool: Buffer, outDir: string): string {
  const extra = gzipSync(buildCpio([{ type: 'file', path: 'bin/vsock-tool', data: tool, mode: 0o755 }]), { level: 9 });
  const file = path.join(outDir, 'initramfs-vsock.cpio.gz');
  fs.writeFileSync(file, Buffer.concat([fs.readFileSync(initramfs), extra]));
  return file;
}

function read(...parts: string[]): string {
  const p = path.join(dir, ...parts);
  return fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : '';
}

/** Everything a failing assertion should show about one scenario. */
function report(scenario: 'net' | 'vsock'): string {
  const files = scenario === 'net'
    ? ['errors.txt', 'setup.txt', 'host_ping.txt', 'host_nc.txt', 'tap.txt', 'exit.txt', 'console.txt', 'vmm.log']
    : ['errors.txt', 'host_connect.txt', 'host_listener.log', 'sockets.txt', 'exit.txt', 'console.txt', 'vmm.log'];
  const parts = [`${labLog}`, `scenario ${scenario} in ${path.join(dir, scenario)}`];
  for (const f of files) {
    const text = read(scenario, f).trimEnd();
    parts.push(`--- ${f} ---\n${text === '' ? '(missing or empty)' : text.slice(-4000)}`);
  }
  return parts.join('\n');
}

before(async () => {
  requireKvm();
  // In the lab the script runs as root; directly on a host it creates a TAP there, which needs root too.
  if (hostRunsLinuxGuests() && process.getuid?.() !== 0) {
    throw new Error('the virtio-net test creates a TAP (spktap0) on this host and needs root (CAP_NET_ADMIN)');
  }
  if (!fs.existsSync('/dev/net/tun') && hostRunsLinuxGuests()) throw new Error('/dev/net/tun is missing: the virtio-net test needs the TUN/TAP driver');
  const guest = await prepareGuest({ log: () => undefined });
  dir = freshDir('net-vsock');
  const initrd = vsockInitrd(guest.initramfs, buildVsockTool(dir), dir);
  const script = path.join(projectRoot, 'tests', 'lab', 'net_vsock.sh');
  const peer = path.join(projectRoot, 'dist', 'tests', 'lab', 'vsock_peer.js');
  assert.ok(fs.existsSync(peer), `${peer} is missing: run \`npx tsc -p .\` first`);
  const r = await runWithLinuxKvm(['bash', script, dir, guest.kernel, guest.initramfs, initrd, process.execPath], dir, 900_000);
  labLog = `lab exit ${r.code} after ${r.durationMs} ms${r.stderr.trim() ? `\n--- lab stderr ---\n${r.stderr.slice(-2000)}` : ''}`;
});

// ---- virtio-net ----

test('net: the VM starts with a network interface on the TAP and the guest sees the configured MAC', () => {
  assert.equal(read('net', 'errors.txt').includes('could not set up the TAP'), false, report('net'));
  assert.match(read('net', 'console.txt'), /SPARKLER-GUEST-UP/, `the guest did not reach init\n${report('net')}`);
  assert.match(read('net', 'console.txt'), new RegExp(`^eth0-mac=${GUEST_MAC}\\r?$`, 'mi'), `eth0 is missing or has another MAC than ${GUEST_MAC}\n${report('net')}`);
  assert.doesNotMatch(read('net', 'console.txt'), /^net-setup=failed/m, `the guest could not configure eth0\n${report('net')}`);
});

test('net: the guest pings the host over virtio-net (3 of 3 replies)', () => {
  assert.match(read('net', 'console.txt'), /^ping-ok received=3\r?$/m, `the guest's ping of 169.254.100.1 did not get 3 replies\n${report('net')}`);
});

test('net: the host pings the guest through the TAP (3 of 3 replies) and reaches it over TCP', () => {
  const ping = read('net', 'host_ping.txt');
  assert.match(ping, /3 packets transmitted, 3 packets received/, `the host's ping of 169.254.100.2 did not get 3 replies\n${report('net')}`);
  assert.match(ping, /^rc=0$/m, report('net'));
  assert.match(read('net', 'console.txt'), /^net-host-said=net-done\r?$/m, `the guest did not receive the host's TCP message on port 7000\n${report('net')}`);
});

test('net: the guest reboots and the VMM exits with status 0', () => {
  assert.match(read('net', 'console.txt'), /SPARKLER-GUEST-REBOOT/, report('net'));
  assert.equal(read('net', 'exit.txt').trim(), '0', `VMM exit status\n${report('net')}`);
  assert.equal(read('net', 'errors.txt'), '', report('net'));
});

// ---- virtio-vsock ----

test('vsock: the concatenated initramfs puts /bin/vsock-tool into the guest', () => {
  assert.match(read('vsock', 'console.txt'), /SPARKLER-GUEST-UP/, `the guest did not reach init\n${report('vsock')}`);
  assert.match(read('vsock', 'console.txt'), /^vsock-tool-ls=\/bin\/vsock-tool\r?$/m, report('vsock'));
});

test('vsock: host-initiated: CONNECT 5000 through the UDS reaches the guest listener, which echoes', () => {
  const hc = read('vsock', 'host_connect.txt');
  assert.match(hc, /^host-connect ok .*ok_line="OK \d+" reply=echo:hello-from-host after_ms=\d+$/m, `the host's connection to guest port 5000 failed\n${report('vsock')}`);
  assert.match(read('vsock', 'console.txt'), /^vsock-listen got=hello-from-host peer_cid=2\r?$/m, `the guest listener did not see the host's line from CID 2\n${report('vsock')}`);
  assert.match(read('vsock', 'console.txt'), /^vsock-listen-exit=0\r?$/m, report('vsock'));
});

test('vsock: guest-initiated: a connection to CID 2 port 6000 reaches the host listener on <uds_path>_6000', () => {
  assert.match(read('vsock', 'host_listener.log'), / line=hello-from-guest$/m, `the host listener did not receive the guest's line\n${report('vsock')}`);
  assert.match(read('vsock', 'console.txt'), /^vsock-connect reply=echo:hello-from-guest\r?$/m, `the guest did not get the host listener's reply\n${report('vsock')}`);
});

test('vsock: the guest reboots and the VMM exits with status 0', () => {
  assert.match(read('vsock', 'console.txt'), /SPARKLER-GUEST-REBOOT/, report('vsock'));
  assert.equal(read('vsock', 'exit.txt').trim(), '0', `VMM exit status\n${report('vsock')}`);
  assert.equal(read('vsock', 'errors.txt'), '', report('vsock'));
});
