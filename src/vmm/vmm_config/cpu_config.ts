/**
 * The `cpu-config` section / `PUT /cpu-config` body (yaml: CpuConfig), a
 * custom CPU template. Validated exactly; CPU templates come later.
 */
import { Fields, U32_MAX, expectString, fail } from './validate.js';

export const CPUID_REGISTERS = ['eax', 'ebx', 'ecx', 'edx'] as const;
export type CpuidRegister = (typeof CPUID_REGISTERS)[number];

export interface CpuidRegisterModifier {
  register: CpuidRegister;
  bitmap: string;
}
export interface CpuidLeafModifier {
  leaf: string;
  subleaf: string;
  flags: number;
  modifiers: CpuidRegisterModifier[];
}
export interface MsrModifier {
  addr: string;
  bitmap: string;
}
export interface ArmRegisterModifier {
  addr: string;
  bitmap: string;
}
export interface VcpuFeatures {
  index: number;
  bitmap: string;
}
export interface CpuConfig {
  kvm_capabilities: string[];
  cpuid_modifiers: CpuidLeafModifier[];
  msr_modifiers: MsrModifier[];
  reg_modifiers: ArmRegisterModifier[];
  vcpu_features: VcpuFeatures[];
}

const FIELDS = ['kvm_capabilities', 'cpuid_modifiers', 'msr_modifiers', 'reg_modifiers', 'vcpu_features'] as const;

/** A number written as 0x hex, 0b binary or decimal, fitting in `bits` bits. */
function numberString(bits: number) {
  return (v: unknown, at: string): string => {
    const s = expectString(v, at);
    const m = /^(0x[0-9a-fA-F]+|0b[01]+|[0-9]+)$/.exec(s);
    if (!m) fail(at, `${JSON.stringify(s)} is not a number (use 0x hex, 0b binary or decimal)`);
    if (BigInt(s) >= 1n << BigInt(bits)) fail(at, `${s} does not fit in ${bits} bits`);
    return s;
  };
}

/**
 * A register bitmap as Firecracker parses it: optional "0b", then at most
 * `bits` of '0' (clear), '1' (set) or 'x' (keep); '_' separators ignored.
 */
function bitmapString(bits: number) {
  return (v: unknown, at: string): string => {
    const s = expectString(v, at);
    const body = (s.startsWith('0b') ? s.slice(2) : s).replaceAll('_', '');
    const bad = /[^01x]/.exec(body);
    if (bad) fail(at, `invalid bitmap ${JSON.stringify(s)}: unknown character ${JSON.stringify(bad[0])}`);
    if (body.length > bits) fail(at, `invalid bitmap ${JSON.stringify(s)}: longer than ${bits} bits`);
    return s;
  };
}

/** "121" adds a KVM capability to check, "!121" removes it. */
function kvmCapability(v: unknown, at: string): string {
  const s = expectString(v, at);
  const n = s.startsWith('!') ? s.slice(1) : s;
  if (!/^[0-9]+$/.test(n) || Number(n) > U32_MAX) {
    fail(at, `invalid KVM capability ${JSON.stringify(s)} (expected a u32 number, optionally prefixed by '!')`);
  }
  return s;
}

function cpuidRegisterModifier(v: unknown, at: string): CpuidRegisterModifier {
  const f = Fields.of(v, at, ['register', 'bitmap']);
  return {
    register: f.enumOf('register', CPUID_REGISTERS),
    bitmap: bitmapString(32)(f.str('bitmap'), f.path('bitmap')),
  };
}

function cpuidLeafModifier(v: unknown, at: string): CpuidLeafModifier {
  const f = Fields.of(v, at, ['leaf', 'subleaf', 'flags', 'modifiers']);
  return {
    leaf: numberString(32)(f.str('leaf'), f.path('leaf')),
    subleaf: numberString(32)(f.str('subleaf'), f.path('subleaf')),
    flags: f.int('flags', { min: 0, max: U32_MAX }),
    modifiers: f.array('modifiers', cpuidRegisterModifier),
  };
}

function addrBitmap(addrBits: number, bitmapBits: number) {
  return (v: unknown, at: string): { addr: string; bitmap: string } => {
    const f = Fields.of(v, at, ['addr', 'bitmap']);
    return {
      addr: numberString(addrBits)(f.str('addr'), f.path('addr')),
      bitmap: bitmapString(bitmapBits)(f.str('bitmap'), f.path('bitmap')),
    };
  };
}

function vcpuFeatures(v: unknown, at: string): VcpuFeatures {
  const f = Fields.of(v, at, ['index', 'bitmap']);
  return {
    index: f.int('index', { min: 0, max: 0x7fff_ffff }),
    bitmap: bitmapString(32)(f.str('bitmap'), f.path('bitmap')),
  };
}

export function validateCpuConfig(input: unknown, at = 'cpu-config'): CpuConfig {
  const f = Fields.of(input, at, FIELDS);
  return {
    kvm_capabilities: f.defArray('kvm_capabilities', kvmCapability),
    cpuid_modifiers: f.defArray('cpuid_modifiers', cpuidLeafModifier),
    msr_modifiers: f.defArray('msr_modifiers', addrBitmap(32, 64)),
    reg_modifiers: f.defArray('reg_modifiers', addrBitmap(64, 128)),
    vcpu_features: f.defArray('vcpu_features', vcpuFeatures),
  };
}
