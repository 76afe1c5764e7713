/**
 * Shared pieces of bench/devices: what the outer script (bench/devices.ts)
 * asks the in-lab runner (bench/devices_lab.ts) to do, the records it writes
 * back, and the parsing of the guest's result lines (guest/init.sh,
 * `sparkler.cmd=devbench`, and bench/guests/randread.c).
 */
import type { GuestRamVma, MachineInfo } from './boot_shared.js';

export type Vmm = 'sparkler' | 'qemu';

export interface DevLabParams {
  kernel: string;
  /** The prepared initramfs followed by the archive holding /bin/randread. */
  initrd: string;
  /** The same randread, run on the lab's host as the TCP sink (guest → host) and sender (host → guest). */
  randread: string;
  /** The sparkler guest's command line (sparkler.cmd=devbench …); QEMU gets it with reboot=t and sparkler's own additions. */
  cmdline: string;
  qemuCmdline: string;
  qemuMachine: string;
  /** sparkler's drive io_engine (absent in results of earlier versions: Sync). */
  ioEngine?: 'Sync' | 'Async';
  /** Extra V8 flags for sparkler (SPARKLER_V8_FLAGS, diagnostics), if any. */
  v8Flags?: string;
  /** Boot only this VMM (--only: hunting a rare failure); absent: both, alternating. */
  only?: Vmm;
  memMib: number;
  vcpus: number;
  /** Timed runs per VMM (alternating) and untimed warm-up runs of each first. */
  runs: number;
  warmups: number;
  /** Size of the scratch disk image (MiB); dd reads [0, ddMib) and writes [ddMib, 2·ddMib). */
  imageMib: number;
  ddMib: number;
  /** dd block size (KiB); optional in results of earlier versions (1024). */
  ddBsKiB?: number;
  randSeconds: number;
  /** MiB the guest sends to the host over TCP; 0: no network part. */
  netMib: number;
  /**
   * MiB the lab host sends to the guest's sink on recvPort once the guest says "netbench recv-ready"
   * (0: not measured); needs the network part. Optional in results of earlier versions (not measured).
   */
  netRecvMib?: number;
  recvPort?: number;
  tap: string;
  hostIp: string;
  guestIp: string;
  guestMac: string;
  port: number;
  /** bin/sparkler of a private snapshot (sparklerDir), which the lab runner copies into the lab's own /tmp first. */
  sparklerBin: string;
  sparklerDir?: string;
  qemu: string;
  /** Per-run limit (s). */
  runTimeoutS: number;
  /** Writable scratch directory (inside --rw) for configs and logs. */
  workDir: string;
}

/** One boot of one VMM: everything the guest and the host-side sink reported. */
export interface DevRunRecord {
  vmm: Vmm;
  iter: number;
  warmup: boolean;
  argv: string[];
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** spawn -> exit, ms (boot + benchmarks + reboot). */
  wallMs: number | null;
  blk: {
    /** The guest's /sys view of the disk (features bits, max_segments, max_hw_sectors_kb). */
    info: string | null;
    /** The timed (second) pass of each dd: the VMM's code is warm. */
    seqRead: DdResult | null;
    seqWrite: DdResult | null;
    /**
     * The same dd's first pass, the guest's first reads (writes) of the run: sparkler's JIT is still
     * optimizing its I/O path. Absent in results of earlier versions (one pass only).
     */
    seqReadCold?: DdResult | null;
    seqWriteCold?: DdResult | null;
    rand: { ops: number; bs: number; seconds: number; iops: number } | null;
    /** Requests the guest's block layer completed during each timed dd and their mean size (from /sys/block/vda/stat). */
    seqReadReqs: { count: number; meanKiB: number } | null;
    seqWriteReqs: { count: number; meanKiB: number } | null;
  };
  net: {
    info: string | null;
    /** Host-side sink: bytes and seconds from the first byte to EOF (the lab host's clock). */
    sink: { bytes: number; seconds: number; acceptToEofS: number } | null;
    /** The guest's own view: connect to the peer's close (guest clock). */
    send: { bytes: number; seconds: number } | null;
    sinkOutput: string;
    /**
     * Host → guest (absent in results of earlier versions): the guest's sink, first byte to EOF on the
     * guest's clock, and the lab host's sender, connect to the guest's close on the host's clock.
     */
    recv?: { bytes: number; seconds: number; acceptToEofS: number } | null;
    recvSend?: { bytes: number; seconds: number } | null;
    recvSendOutput?: string;
  };
  /** The VMM's guest RAM mapping (smaps) sampled after the block tests: touched KiB, of which in transparent huge pages. */
  guestRam?: GuestRamVma | null;
  /**
   * sparkler only: its block device's metrics summed over the run (--metrics-path): requests, bytes and the
   * time spent in the host read/write syscalls (read_agg/write_agg sum_us), kicks (queue_event_count).
   * Writes happen only in the two dd write passes, so writeUs/writeCount is the device's host time per dd
   * request (averaged over the cold and the warm pass).
   */
  vmmBlock?: { readCount: number; readBytes: number; readUs: number; writeCount: number; writeBytes: number; writeUs: number; queueEvents: number } | null;
  errors: string[];
  consoleTail: string;
  stderrTail: string;
}

export interface DdResult { bytes: number; seconds: number; rc: number }

export interface DevLabResults {
  params: DevLabParams;
  machine: MachineInfo;
  startedAt: string;
  finishedAt: string | null;
  setup: string[];
  records: DevRunRecord[];
}

/**
 * Parses `blkbench seqread bs=1048576 64+0 records in 64+0 records out time seconds=0.5 rc=0`
 * (dd's own report, then randread's timing of it: busybox's dd prints no time); `seqread-cold`
 * and `seqwrite-cold` are the first passes.
 */
export function parseDd(console: string, what: 'seqread' | 'seqwrite' | 'seqread-cold' | 'seqwrite-cold'): DdResult | null {
  const line = new RegExp(`^blkbench ${what} bs=(\\d+)(.*)$`, 'm').exec(console);
  if (!line) return null;
  const out = /(\d+)\+\d+ records out/.exec(line[2]!);
  const t = /time seconds=([\d.]+) rc=(\d+)/.exec(line[2]!);
  if (!out || !t) return null;
  return { rc: Number(t[2]), bytes: Number(out[1]) * Number(line[1]), seconds: Number(t[1]) };
}

export function parseGuest(console: string): Pick<DevRunRecord, 'blk'> & {
  send: DevRunRecord['net']['send'];
  recv: NonNullable<DevRunRecord['net']['recv']> | null;
  netInfo: string | null;
} {
  const r = /^blkbench randread ops=(\d+) bs=(\d+) seconds=([\d.]+) iops=([\d.]+)/m.exec(console);
  const s = /^netbench netsend bytes=(\d+) seconds=([\d.]+)/m.exec(console);
  // The guest's sink, relayed line by line by guest/init.sh.
  const recvLine = /^netbench recv (netsink bytes=.*)$/m.exec(console);
  // /sys/block/<dev>/stat: read I/Os, read merges, read sectors, read ticks, write I/Os, write merges, write sectors, …
  const stat = (n: number): number[] | null => {
    const m = new RegExp(`^blkbench stat${n} ([\\d ]+?)\\s*$`, 'm').exec(console);
    return m ? m[1]!.trim().split(/\s+/).map(Number) : null;
  };
  const reqs = (a: number[] | null, b: number[] | null, ios: number, sectors: number): { count: number; meanKiB: number } | null => {
    if (!a || !b || a.length < 7 || b.length < 7) return null;
    const count = b[ios]! - a[ios]!;
    return count > 0 ? { count, meanKiB: ((b[sectors]! - a[sectors]!) * 512) / 1024 / count } : null;
  };
  // With first passes, stat2..3 frame the timed write (the cold write is between stat1 and stat2);
  // a guest/init.sh of one pass each has no stat3 and its write is between stat1 and stat2.
  const [s0, s1, s2, s3] = [stat(0), stat(1), stat(2), stat(3)];
  return {
    blk: {
      info: /^blkbench (vda-features=.*?)\r?$/m.exec(console)?.[1] ?? null,
      seqReadReqs: reqs(s0, s1, 0, 2),
      seqWriteReqs: s3 ? reqs(s2, s3, 4, 6) : reqs(s1, s2, 4, 6),
      seqRead: parseDd(console, 'seqread'),
      seqWrite: parseDd(console, 'seqwrite'),
      seqReadCold: parseDd(console, 'seqread-cold'),
      seqWriteCold: parseDd(console, 'seqwrite-cold'),
      rand: r ? { ops: Number(r[1]), bs: Number(r[2]), seconds: Number(r[3]), iops: Number(r[4]) } : null,
    },
    send: s ? { bytes: Number(s[1]), seconds: Number(s[2]) } : null,
    recv: recvLine ? parseSink(recvLine[1]!) : null,
    netInfo: /^netbench (eth0-features=.*?)\r?$/m.exec(console)?.[1] ?? null,
  };
}

/** randread sink's result line (`netsink bytes=N seconds=S accept_to_eof=T`), on either side. */
export function parseSink(out: string): DevRunRecord['net']['sink'] {
  const m = /netsink bytes=(\d+) seconds=([\d.]+) accept_to_eof=([\d.]+)/.exec(out);
  return m ? { bytes: Number(m[1]), seconds: Number(m[2]), acceptToEofS: Number(m[3]) } : null;
}

/** randread send's result line (`netsend bytes=N seconds=S`), on either side. */
export function parseSend(out: string): DevRunRecord['net']['send'] {
  const m = /netsend bytes=(\d+) seconds=([\d.]+)/.exec(out);
  return m ? { bytes: Number(m[1]), seconds: Number(m[2]) } : null;
}

/** The guest's error lines worth showing (randread's "<mode> error=…", dd failures, setup failures). */
export function guestErrors(console: string): string[] {
  return console.split(/\r?\n/).filter((l) => /^(blkbench|netbench) .*(error=|rc=[1-9]|setup=failed|timeout|can't)/.test(l) || /sparkler-init: (unknown|insmod)/.test(l));
}
