/**
 * Just enough ELF64 (little-endian) reading for guest assembly: whether a
 * binary is static (it will run in an initramfs without a libc), and a kernel
 * module's .modinfo strings (its `depends=`), so no kmod tools are needed.
 */

const PT_INTERP = 3;

function header(buf: Uint8Array): DataView {
  const magic = buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46;
  if (!magic || buf.length < 64) throw new Error('not an ELF file');
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error('not a 64-bit little-endian ELF file');
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** True when the executable asks for no program interpreter (no dynamic loader). */
export function isStaticElf(buf: Uint8Array): boolean {
  const v = header(buf);
  const phoff = Number(v.getBigUint64(0x20, true));
  const phentsize = v.getUint16(0x36, true);
  const phnum = v.getUint16(0x38, true);
  for (let i = 0; i < phnum; i++) {
    if (v.getUint32(phoff + i * phentsize, true) === PT_INTERP) return false;
  }
  return true;
}

/** The bytes of the named section, or undefined. */
export function elfSection(buf: Uint8Array, name: string): Uint8Array | undefined {
  const v = header(buf);
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  const shnum = v.getUint16(0x3c, true);
  const shstrndx = v.getUint16(0x3e, true);
  const sec = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      name: v.getUint32(at, true),
      offset: Number(v.getBigUint64(at + 0x18, true)),
      size: Number(v.getBigUint64(at + 0x20, true)),
    };
  };
  const strtab = sec(shstrndx);
  const want = new TextEncoder().encode(name + '\0');
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    const at = strtab.offset + s.name;
    if (buf.subarray(at, at + want.length).every((b, j) => b === want[j])) {
      return buf.subarray(s.offset, s.offset + s.size);
    }
  }
  return undefined;
}

/** A kernel module's .modinfo as key → values (keys such as alias repeat). */
export function modinfo(ko: Uint8Array): Map<string, string[]> {
  const sec = elfSection(ko, '.modinfo');
  const out = new Map<string, string[]>();
  if (!sec) return out;
  for (const s of new TextDecoder().decode(sec).split('\0')) {
    const eq = s.indexOf('=');
    if (eq <= 0) continue;
    const k = s.slice(0, eq);
    out.set(k, [...(out.get(k) ?? []), s.slice(eq + 1)]);
  }
  return out;
}
