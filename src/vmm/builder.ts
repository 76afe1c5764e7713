/**
 * Builder: a validated machine description → a configured, ready-to-run Vmm.
 * Order matters: KVM objects, guest RAM, kernel and initrd, the command line,
 * devices, ACPI tables, boot parameters, then the vCPUs' initial state.
 */
import fs from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { MAP_PRIVATE, O_RDONLY, PROT_READ } from '../generated/libc.js';
import * as libc from '../sys/libc.js';
import { Kvm } from '../kvm/kvm.js';
import { Cmdline, loadKernel, type KernelLoadResult } from '../loader/index.js';
import type { GuestMemory } from '../memory/guest_memory.js';
import { writeAcpiTables } from './arch/x86_64/acpi.js';
import { buildPvhStartInfo, buildZeroPage, e820Map, initrdAddress, type InitrdPlacement } from './arch/x86_64/boot_params.js';
import { vcpuCpuid } from './arch/x86_64/cpuid.js';
import { setupLint } from './arch/x86_64/interrupts.js';
import {
  CMDLINE_MAX_SIZE, CMDLINE_START, COM1_IRQ, I8042_IRQ, KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR, SIZES, ZERO_PAGE_START,
} from './arch/x86_64/layout.js';
import { setupFpu, setupMsrs, setupRegs, setupSregs, type BootEntry } from './arch/x86_64/regs.js';
import { EventFdTrigger } from './devices/irq.js';
import { I8042 } from './devices/legacy/i8042/i8042.js';
import { SerialConsole } from './devices/legacy/serial/console.js';
import { Serial } from './devices/legacy/serial/serial.js';
import { consoleSink, type DevicesSpec } from './device_manager.js';
import { createGuestMemory, registerGuestMemory, unmapGuestMemory } from './vstate/memory.js';
import { installKickHandler, Vcpu } from './vstate/vcpu.js';
import { Vmm, type VmmLog } from './vmm.js';
import { VirtioDeviceManager, type BlockDeviceConfig, type NetDeviceConfig } from './devices/virtio/manager.js';
import type { RateLimiterConfig } from './rate_limiter/index.js';

/** What the builder needs, already validated (see vmm_config/). */
export interface MachineSpec {
  kernelImagePath: string;
  initrdPath?: string | undefined;
  bootArgs: string;
  vcpuCount: number;
  memSizeMib: number;
  smt: boolean;
  /** Add Firecracker's boot timer device (--boot-timer). */
  bootTimer: boolean;
  /** Block devices, in guest order (/dev/vda first). */
  drives?: BlockDeviceConfig[];
  /** The root drive: `root=` on the command line, as Firecracker sets it. */
  rootDevice?: { partuuid: string | null; readOnly: boolean } | undefined;
  /** A virtio-rng device (PUT /entropy). */
  entropy?: { rateLimiter: RateLimiterConfig | null } | undefined;
  /** Network interfaces, in guest order (eth0 first). */
  nets?: NetDeviceConfig[];
  /** A virtio-vsock device (PUT /vsock). */
  vsock?: { guestCid: number; udsPath: string } | undefined;
  /** Process start, CLOCK_MONOTONIC µs, and process CPU µs at start (for the boot timer). */
  startTimeUs: bigint;
  startCpuUs: number;
}

export class BuildError extends Error {
  override name = 'BuildError';
}

/**
 * A read-only, private mapping of a file (kernel, initrd): the loader copies
 * from page-cache pages straight into guest RAM, and no copy of the image
 * stays on the VMM's heap once the VM is built.
 */
function mapFile(path: string, what: string): { bytes: Uint8Array; unmap: () => void } {
  let fd: number;
  try {
    fd = libc.open(path, O_RDONLY);
  } catch (e) {
    throw new BuildError(`cannot read the ${what} ${path}: ${(e as Error).message}`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) throw new BuildError(`the ${what} ${path} is empty`);
    const addr = libc.mmap(size, PROT_READ, MAP_PRIVATE, fd, 0);
    return { bytes: new Uint8Array(libc.view(addr, size)), unmap: () => libc.munmap(addr, size) };
  } finally {
    libc.close(fd);
  }
}

function loadInitrd(mem: GuestMemory, memSize: number, path: string, kernel: KernelLoadResult): InitrdPlacement {
  const file = mapFile(path, 'initrd');
  try {
    const addr = initrdAddress(memSize, file.bytes.byteLength, kernel.initrdAddrMax, kernel.kernelEnd);
    mem.write(addr, file.bytes);
    return { addr, size: file.bytes.byteLength };
  } finally {
    file.unmap();
  }
}

function writeBootParams(mem: GuestMemory, memSize: number, kernel: KernelLoadResult, cmdline: Uint8Array, initrd: InitrdPlacement | undefined, rsdpAddr: number): BootEntry {
  const e820 = e820Map(memSize);
  if (kernel.pvhEntry !== undefined) {
    const pvh = buildPvhStartInfo({ cmdlineAddr: CMDLINE_START, ...(initrd ? { initrd } : {}), e820, rsdpAddr });
    mem.write(pvh.startInfoAddr, pvh.startInfo);
    mem.write(pvh.memmapAddr, pvh.memmap);
    if (pvh.modlist && pvh.modlistAddr !== undefined) mem.write(pvh.modlistAddr, pvh.modlist);
    return { kind: 'pvh', rip: kernel.pvhEntry };
  }
  const zeroPage = buildZeroPage({
    ...(kernel.setupHeader ? { setupHeader: kernel.setupHeader } : {}),
    cmdlineAddr: CMDLINE_START,
    cmdlineSize: cmdline.byteLength,
    ...(initrd ? { initrd } : {}),
    e820,
    rsdpAddr,
  });
  mem.write(ZERO_PAGE_START, zeroPage);
  return { kind: 'linux64', rip: kernel.entry64 };
}

/** `threads`: vCPU threads started ahead of time (one per vCPU), to overlap their start-up with the build. */
export function buildMicroVm(spec: MachineSpec, log: VmmLog, threads: Worker[] = []): Vmm {
  const memSize = spec.memSizeMib * SIZES.MiB;

  const kvm = new Kvm();
  kvm.requireExtensions(['IRQCHIP', 'USER_MEMORY', 'SET_TSS_ADDR', 'EXT_CPUID', 'PIT2', 'IRQFD', 'IOEVENTFD', 'IMMEDIATE_EXIT']);
  const maxVcpus = kvm.maxVcpus();
  if (spec.vcpuCount > maxVcpus) throw new BuildError(`vcpu_count ${spec.vcpuCount} exceeds this host's KVM limit of ${maxVcpus}`);
  const vm = kvm.createVm();
  vm.setTssAddress(KVM_TSS_ADDR);
  vm.setIdentityMapAddress(KVM_IDENTITY_MAP_ADDR);
  vm.createIrqchip();
  vm.createPit2();

  const memory = createGuestMemory(memSize);
  try {
    registerGuestMemory(vm, memory.memory);
    const mem = memory.memory;

    const kernelImage = mapFile(spec.kernelImagePath, 'kernel image');
    let kernel: KernelLoadResult;
    try {
      kernel = loadKernel(kernelImage.bytes, mem);
    } finally {
      kernelImage.unmap();
    }
    const initrd = spec.initrdPath ? loadInitrd(mem, memSize, spec.initrdPath, kernel) : undefined;
    const cmdlineBuilder = Cmdline.from(spec.bootArgs, CMDLINE_MAX_SIZE);
    // The microVM has no PCI bus: say so, or the kernel probes for config space and logs "PCI: Fatal".
    if (!/(^| )pci=/.test(spec.bootArgs)) cmdlineBuilder.append('pci=off');
    if (spec.rootDevice) {
      // Firecracker's rule: the root drive is the first block device, named by PARTUUID when given.
      cmdlineBuilder.append(spec.rootDevice.partuuid ? `root=PARTUUID=${spec.rootDevice.partuuid}` : 'root=/dev/vda');
      cmdlineBuilder.append(spec.rootDevice.readOnly ? 'ro' : 'rw');
    }

    // Legacy devices. Their state is shared with the vCPU threads, which emulate them;
    // the main thread keeps these views to feed stdin and type Ctrl-Alt-Del.
    const serialIrq = new EventFdTrigger(vm, COM1_IRQ);
    const kbdIrq = new EventFdTrigger(vm, I8042_IRQ);
    const serial = new Serial(serialIrq, consoleSink(1));
    const i8042 = new I8042(kbdIrq, () => undefined);
    const devices: DevicesSpec = {
      serial: { state: serial.sharedState, irqFd: serialIrq.fd },
      i8042: { state: i8042.sharedState, irqFd: kbdIrq.fd },
      ...(spec.bootTimer ? { bootTimer: { startUs: spec.startTimeUs, startCpuUs: spec.startCpuUs } } : {}),
      consoleFd: 1,
      virtio: [],
    };

    const virtio = new VirtioDeviceManager(vm, log);
    try {
      for (const d of spec.drives ?? []) virtio.addBlock(d);
      for (const n of spec.nets ?? []) virtio.addNet(n);
      if (spec.entropy) virtio.addEntropy(spec.entropy.rateLimiter);
      if (spec.vsock) virtio.addVsock(spec.vsock.guestCid, spec.vsock.udsPath);
    } catch (e) {
      virtio.close();
      throw new BuildError(`cannot set up the virtio devices: ${(e as Error).message}`);
    }
    devices.virtio = virtio.wirings;
    // As Firecracker: kernels built with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES find the devices here;
    // others (Debian's) find them in the DSDT and ignore the parameter.
    for (const d of virtio.acpiDevices()) cmdlineBuilder.append(`virtio_mmio.device=${d.size / 1024}K@0x${d.addr.toString(16)}:${d.gsi}`);

    const cmdline = cmdlineBuilder.toBytes();
    mem.write(CMDLINE_START, cmdline);

    const rsdpAddr = writeAcpiTables(mem, { vcpuCount: spec.vcpuCount, virtioDevices: virtio.acpiDevices(), serial: true, i8042: true });
    const entry = writeBootParams(mem, memSize, kernel, cmdline, initrd, rsdpAddr);

    installKickHandler();
    const supported = kvm.supportedCpuid();
    const vcpus: Vcpu[] = [];
    for (let id = 0; id < spec.vcpuCount; id++) {
      const fd = vm.createVcpu(id);
      fd.setCpuid2(vcpuCpuid(supported, { cpuIndex: id, cpuCount: spec.vcpuCount, smt: spec.smt }));
      setupMsrs(fd);
      setupRegs(fd, entry);
      setupSregs(mem, fd, entry.kind);
      setupFpu(fd);
      setupLint(fd);
      vcpus.push(new Vcpu(fd, devices, log, threads[id]));
    }

    const console = new SerialConsole(serial);
    return new Vmm({ kvm, vm, memory, vcpus, serial, console, i8042, virtio, irqs: [serialIrq, kbdIrq], log });
  } catch (e) {
    unmapGuestMemory(memory);
    vm.close();
    kvm.close();
    throw e;
  }
}
