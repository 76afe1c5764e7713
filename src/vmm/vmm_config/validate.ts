/**
 * A small typed reader for JSON objects, shared by every section validator.
 *
 * Hand-written rather than schema-driven so each failure names the exact
 * field, the expected type and what was found, in one line, and so the null
 * rules can follow Firecracker's serde model field by field:
 *  - `opt*` readers are Firecracker's `Option<T>` fields: absent or `null`
 *    both mean "not set";
 *  - `def*` readers are `#[serde(default)]` fields: absent takes the default,
 *    but an explicit `null` is a type error (serde rejects it too);
 *  - plain readers are required fields.
 * Every object rejects unknown fields (Firecracker's `deny_unknown_fields`).
 */
import * as fs from 'node:fs';

import { ConfigError } from './errors.js';

/** Joins a location prefix and a key: `machine-config` + `smt` → `machine-config.smt`. */
export function joinPath(at: string, key: string | number): string {
  if (typeof key === 'number') return `${at}[${key}]`;
  return at === '' ? key : `${at}.${key}`;
}

/** `at: message`, or just `message` when there is no location (an API body root). */
export function fail(at: string, message: string): never {
  throw new ConfigError(at === '' ? message : `${at}: ${message}`);
}

/** What a JSON value is, for "expected X, got Y" messages. Strings are quoted, cut short. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string': {
      const s = v.length > 40 ? `${v.slice(0, 40)}…` : v;
      return `string ${JSON.stringify(s)}`;
    }
    case 'number':
      return Number.isInteger(v) ? `integer ${v}` : `number ${v}`;
    case 'boolean':
      return `boolean ${v}`;
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}

function typeError(at: string, expected: string, got: unknown): never {
  fail(at, `expected ${expected}, got ${describeValue(got)}`);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface IntRange {
  min?: number;
  max?: number;
}

/** Unsigned integer limits of the Rust types Firecracker deserializes into. */
export const U8_MAX = 0xff;
export const U16_MAX = 0xffff;
export const U32_MAX = 0xffff_ffff;
/**
 * u64 fields are held as JS numbers; values past 2^53 would silently lose
 * precision, so they are refused rather than rounded.
 */
export const U64_SAFE_MAX = Number.MAX_SAFE_INTEGER;

/** Checks a standalone value is an integer within range (used for array items too). */
export function expectInt(v: unknown, at: string, range: IntRange = {}): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) typeError(at, 'an integer', v);
  const { min, max } = range;
  if ((min !== undefined && v < min) || (max !== undefined && v > max)) {
    const bounds =
      min !== undefined && max !== undefined ? `${min}..${max}` : min !== undefined ? `>= ${min}` : `<= ${max}`;
    fail(at, `${v} is out of range (${bounds})`);
  }
  return v;
}

export function expectString(v: unknown, at: string): string {
  if (typeof v !== 'string') typeError(at, 'a string', v);
  return v;
}

export function expectBool(v: unknown, at: string): boolean {
  if (typeof v !== 'boolean') typeError(at, 'a boolean', v);
  return v;
}

export function expectEnum<T extends string>(v: unknown, at: string, values: readonly T[]): T {
  if (typeof v !== 'string') typeError(at, `one of ${values.join(', ')}`, v);
  if (!(values as readonly string[]).includes(v)) {
    fail(at, `invalid value ${JSON.stringify(v)} (expected one of: ${values.join(', ')})`);
  }
  return v as T;
}

export function expectArray(v: unknown, at: string): unknown[] {
  if (!Array.isArray(v)) typeError(at, 'an array', v);
  return v;
}

/** Reads the fields of one JSON object; see the module comment for the null rules. */
export class Fields {
  private constructor(
    readonly at: string,
    private readonly obj: Record<string, unknown>,
  ) {}

  /** Checks `input` is an object whose keys are all in `known`. */
  static of(input: unknown, at: string, known: readonly string[]): Fields {
    if (!isPlainObject(input)) typeError(at, 'an object', input);
    for (const key of Object.keys(input)) {
      if (!known.includes(key)) {
        const expected = known.length > 0 ? known.join(', ') : 'none';
        fail(at, `unknown field ${JSON.stringify(key)} (expected one of: ${expected})`);
      }
    }
    return new Fields(at, input);
  }

  path(key: string): string {
    return joinPath(this.at, key);
  }

  /** True when the key is present with a non-null value. */
  isSet(key: string): boolean {
    const v = this.obj[key];
    return v !== undefined && v !== null;
  }

  private required(key: string): unknown {
    const v = this.obj[key];
    if (v === undefined) fail(this.at, `missing required field ${JSON.stringify(key)}`);
    return v;
  }

  /** Value of an Option<T> field, or undefined when absent or null. */
  private optional(key: string): unknown {
    const v = this.obj[key];
    return v === null ? undefined : v;
  }

  /** Value of a #[serde(default)] field: undefined when absent, null is an error. */
  private defaulted(key: string, expected: string): unknown {
    const v = this.obj[key];
    if (v === null) typeError(this.path(key), expected, v);
    return v;
  }

  str(key: string): string {
    return expectString(this.required(key), this.path(key));
  }

  optStr(key: string): string | null {
    const v = this.optional(key);
    return v === undefined ? null : expectString(v, this.path(key));
  }

  /** A required string that must not be empty (ids, paths). */
  nonEmptyStr(key: string): string {
    const s = this.str(key);
    if (s === '') fail(this.path(key), 'must not be empty');
    return s;
  }

  bool(key: string): boolean {
    return expectBool(this.required(key), this.path(key));
  }

  optBool(key: string): boolean | null {
    const v = this.optional(key);
    return v === undefined ? null : expectBool(v, this.path(key));
  }

  defBool(key: string, def: boolean): boolean {
    const v = this.defaulted(key, 'a boolean');
    return v === undefined ? def : expectBool(v, this.path(key));
  }

  int(key: string, range: IntRange): number {
    return expectInt(this.required(key), this.path(key), range);
  }

  optInt(key: string, range: IntRange): number | null {
    const v = this.optional(key);
    return v === undefined ? null : expectInt(v, this.path(key), range);
  }

  defInt(key: string, def: number, range: IntRange): number {
    const v = this.defaulted(key, 'an integer');
    return v === undefined ? def : expectInt(v, this.path(key), range);
  }

  enumOf<T extends string>(key: string, values: readonly T[]): T {
    return expectEnum(this.required(key), this.path(key), values);
  }

  optEnum<T extends string>(key: string, values: readonly T[]): T | null {
    const v = this.optional(key);
    return v === undefined ? null : expectEnum(v, this.path(key), values);
  }

  defEnum<T extends string>(key: string, values: readonly T[], def: T): T {
    const v = this.defaulted(key, `one of ${values.join(', ')}`);
    return v === undefined ? def : expectEnum(v, this.path(key), values);
  }

  /** A required array whose items are each checked by `item`. */
  array<T>(key: string, item: (v: unknown, at: string) => T): T[] {
    const path = this.path(key);
    return expectArray(this.required(key), path).map((v, i) => item(v, joinPath(path, i)));
  }

  /** A #[serde(default)] Vec: absent → []. */
  defArray<T>(key: string, item: (v: unknown, at: string) => T): T[] {
    const v = this.defaulted(key, 'an array');
    if (v === undefined) return [];
    const path = this.path(key);
    return expectArray(v, path).map((x, i) => item(x, joinPath(path, i)));
  }

  /** An Option<Struct> field validated by `nested`. */
  optObject<T>(key: string, nested: (v: unknown, at: string) => T): T | null {
    const v = this.optional(key);
    return v === undefined ? null : nested(v, this.path(key));
  }

  /** The raw value, for fields with bespoke shapes (e.g. string maps). */
  raw(key: string): unknown {
    return this.obj[key];
  }
}

/** `ENOENT: no such file or directory, stat '/x'` → `no such file or directory (ENOENT)`. */
export function ioErrorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const m = /^[A-Z0-9_]+: ([^,]+)/.exec(err.message);
    if (m && code) return `${m[1]} (${code})`;
    return err.message.replace(/\s+/g, ' ');
  }
  return String(err);
}

/**
 * Checks `path` names a readable regular file, as Firecracker does by opening
 * it when the configuration is PUT. stat comes first so a FIFO is refused
 * instead of blocking the open.
 */
export function checkReadableFile(path: string, at: string, what: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (err) {
    fail(at, `the ${what} file cannot be opened: ${JSON.stringify(path)}: ${ioErrorText(err)}`);
  }
  if (!st.isFile()) fail(at, `the ${what} file ${JSON.stringify(path)} is not a regular file`);
  try {
    fs.closeSync(fs.openSync(path, fs.constants.O_RDONLY));
  } catch (err) {
    fail(at, `the ${what} file cannot be opened: ${JSON.stringify(path)}: ${ioErrorText(err)}`);
  }
}
