/**
 * Validates API request and response bodies against Firecracker's published
 * API (../shared/ref/firecracker-api.yaml beside the project root, Swagger 2.0).
 *
 *   validateRequest('PUT', '/drives/rootfs', body);          // throws OpenApiValidationError
 *   validateResponse('GET', '/machine-config', 200, body);   // body: parsed JSON or the raw text
 *
 * The yaml is loaded once; its definitions are converted to JSON Schema
 * (draft-07, which Swagger 2.0's schemas are a subset of, give or take) and
 * checked with ajv:
 * - `$ref: '#/definitions/X'` points into the converted definitions (siblings
 *   of a `$ref` are ignored, as JSON Reference says);
 * - `x-*` extensions, `example`, `xml`, `externalDocs`, `discriminator` are dropped;
 * - `format` is dropped (Swagger's int32/int64/... are not JSON Schema
 *   formats; the yaml even puts a regex there), except that `int32` bounds
 *   the integer to 32 bits;
 * - `readOnly` properties may appear in responses but not in requests;
 * - no `additionalProperties` means any extra property is allowed (as in
 *   both Swagger 2.0 and JSON Schema), unless the yaml says otherwise;
 * - draft-04 style boolean `exclusiveMinimum`/`exclusiveMaximum` become numbers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { projectRoot } from './sparkler_run.js';

/** The API spec: `../shared/ref/firecracker-api.yaml` from the project root. */
export const specPath: string = path.join(projectRoot, '..', 'shared', 'ref', 'firecracker-api.yaml');

// ------------------------------------------------------------------ the spec

/** A Swagger 2.0 schema object (loosely typed: it is JSON from the yaml). */
export type SwaggerSchema = { [key: string]: unknown };

export interface SwaggerParameter {
  name: string;
  in: 'body' | 'path' | 'query' | 'header' | 'formData';
  required?: boolean;
  schema?: SwaggerSchema;
  type?: string;
}

export interface SwaggerOperation {
  operationId?: string;
  parameters?: SwaggerParameter[];
  responses: { [status: string]: { description?: string; schema?: SwaggerSchema } };
}

export interface SwaggerSpec {
  swagger: string;
  paths: { [template: string]: { [method: string]: SwaggerOperation } };
  definitions: { [name: string]: SwaggerSchema };
}

let spec: SwaggerSpec | undefined;

/** The parsed yaml (read once). */
export function loadSpec(): SwaggerSpec {
  if (!spec) {
    let text: string;
    try {
      text = fs.readFileSync(specPath, 'utf8');
    } catch (e) {
      throw new Error(`cannot read the API spec ${specPath}: ${(e as Error).message} (it comes from shared/ref/ beside the project)`);
    }
    const doc = parseYaml(text) as SwaggerSpec;
    if (doc?.swagger !== '2.0' || !doc.paths || !doc.definitions) throw new Error(`${specPath} is not a Swagger 2.0 document`);
    spec = doc;
  }
  return spec;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'] as const;

/** Every operation of the spec as `[METHOD, template]`, e.g. `['PUT', '/drives/{drive_id}']`. */
export function specRoutes(): [string, string][] {
  const out: [string, string][] = [];
  for (const [template, item] of Object.entries(loadSpec().paths)) {
    for (const m of HTTP_METHODS) if (item[m]) out.push([m.toUpperCase(), template]);
  }
  return out;
}

export interface MatchedOperation {
  method: string;
  /** The yaml's template, e.g. `/drives/{drive_id}`. */
  template: string;
  /** The path parameters, e.g. `{ drive_id: 'rootfs' }`. */
  params: Record<string, string>;
  operation: SwaggerOperation;
}

/** Finds the operation for a concrete method and path (query string ignored); throws if none. */
export function findOperation(method: string, urlPath: string): MatchedOperation {
  const m = method.toLowerCase();
  const p = urlPath.split('?')[0]!;
  const paths = loadSpec().paths;
  // Literal templates win over templated ones.
  const templates = Object.keys(paths).sort((a, b) => Number(a.includes('{')) - Number(b.includes('{')));
  for (const template of templates) {
    const params = matchTemplate(template, p);
    if (!params) continue;
    const operation = paths[template]![m];
    if (!operation) {
      const allowed = HTTP_METHODS.filter((x) => paths[template]![x]).map((x) => x.toUpperCase());
      throw new OpenApiValidationError(`${method.toUpperCase()} ${p}: the spec has no ${method.toUpperCase()} on ${template} (only ${allowed.join(', ')})`, []);
    }
    return { method: m.toUpperCase(), template, params, operation };
  }
  throw new OpenApiValidationError(`${method.toUpperCase()} ${p}: no path of the spec matches`, []);
}

function matchTemplate(template: string, p: string): Record<string, string> | undefined {
  const names: string[] = [];
  const re = template
    .split(/(\{[^}]+\})/)
    .map((part) => {
      const param = /^\{([^}]+)\}$/.exec(part);
      if (param) {
        names.push(param[1]!);
        return '([^/]+)';
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  const m = new RegExp(`^${re}$`).exec(p);
  if (!m) return undefined;
  return Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
}

// ------------------------------------------------------------------ Swagger → JSON Schema

/**
 * How to read the schemas: for a request (readOnly properties forbidden), for
 * a response, or for a response where an optional property may also be
 * `null` (Firecracker itself answers GET /vm/config with `"balloon": null`
 * and the like, which the yaml does not allow).
 */
export type Direction = 'request' | 'response' | 'response-nullable';

const ROOT_ID: Record<Direction, string> = {
  request: 'firecracker-request.json',
  response: 'firecracker-response.json',
  'response-nullable': 'firecracker-response-nullable.json',
};

/** Swagger-only keywords that JSON Schema does not know (dropped). */
const DROPPED = new Set(['example', 'xml', 'externalDocs', 'discriminator', 'format']);
const SUB_SCHEMA = new Set(['items', 'additionalProperties', 'not']);
const SUB_SCHEMA_LISTS = new Set(['allOf', 'anyOf', 'oneOf']);

/**
 * Converts one Swagger 2.0 schema to JSON Schema draft-07. `$ref`s to
 * `#/definitions/X` point into the root schema of that direction (see
 * `ROOT_ID`); `readOnly` properties are forbidden in requests; with
 * 'response-nullable', properties not `required` may be null.
 */
export function toJsonSchema(s: SwaggerSchema, direction: Direction): SwaggerSchema {
  if (typeof s.$ref === 'string') {
    const m = /^#\/definitions\/(.+)$/.exec(s.$ref);
    if (!m) throw new Error(`unsupported $ref ${s.$ref}`);
    return { $ref: `${ROOT_ID[direction]}#/definitions/${m[1]}` };
  }
  const out: SwaggerSchema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('x-') || DROPPED.has(k)) continue;
    if (k === 'properties') {
      const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
      out.properties = Object.fromEntries(
        Object.entries(v as Record<string, SwaggerSchema>).map(([name, sub]) => {
          if (direction === 'request' && sub.readOnly === true) return [name, false];
          const converted = toJsonSchema(sub, direction);
          const nullable = direction === 'response-nullable' && !required.has(name);
          return [name, nullable ? { anyOf: [{ type: 'null' }, converted] } : converted];
        }),
      );
    } else if (SUB_SCHEMA.has(k) && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      out[k] = toJsonSchema(v as SwaggerSchema, direction);
    } else if (SUB_SCHEMA_LISTS.has(k) && Array.isArray(v)) {
      out[k] = (v as SwaggerSchema[]).map((sub) => toJsonSchema(sub, direction));
    } else if ((k === 'exclusiveMinimum' || k === 'exclusiveMaximum') && typeof v === 'boolean') {
      const bound = k === 'exclusiveMinimum' ? 'minimum' : 'maximum';
      if (v && typeof s[bound] === 'number') out[k] = s[bound];
    } else if (k === 'required' && Array.isArray(v) && direction === 'request') {
      const props = (s.properties ?? {}) as Record<string, SwaggerSchema>;
      out.required = (v as string[]).filter((name) => props[name]?.readOnly !== true);
    } else {
      out[k] = v;
    }
  }
  // Booleans of draft-04 style moved their bound into exclusive*: drop the inclusive one.
  if (s.exclusiveMinimum === true && typeof s.minimum === 'number') delete out.minimum;
  if (s.exclusiveMaximum === true && typeof s.maximum === 'number') delete out.maximum;
  if (s.format === 'int32' && s.type === 'integer') {
    out.minimum ??= -(2 ** 31);
    out.maximum ??= 2 ** 31 - 1;
  }
  return out;
}

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

function validator(key: string, schema: SwaggerSchema, direction: Direction): ValidateFunction {
  let v = compiled.get(key);
  if (!v) {
    if (!ajv) {
      ajv = new Ajv({ allErrors: true, strict: true });
      const defs = loadSpec().definitions;
      for (const d of Object.keys(ROOT_ID) as Direction[]) {
        ajv.addSchema({
          $id: ROOT_ID[d],
          definitions: Object.fromEntries(Object.entries(defs).map(([n, s]) => [n, toJsonSchema(s, d)])),
        });
      }
    }
    v = ajv.compile(toJsonSchema(schema, direction));
    compiled.set(key, v);
  }
  return v;
}

// ------------------------------------------------------------------ validation

export class OpenApiValidationError extends Error {
  constructor(
    message: string,
    readonly errors: ErrorObject[],
  ) {
    super(message);
    this.name = 'OpenApiValidationError';
  }
}

/**
 * Checks a request body for `method path` against the operation's body
 * parameter. `body`: a parsed JSON value, a JSON string, or undefined for no
 * body (allowed only when the spec's body parameter is not required, or the
 * operation has none).
 */
export function validateRequest(method: string, urlPath: string, body: unknown): void {
  const op = findOperation(method, urlPath);
  const what = `${op.method} ${urlPath} request`;
  const param = op.operation.parameters?.find((p) => p.in === 'body');
  const value = fromText(body, what);
  if (!param) {
    if (value !== undefined) throw new OpenApiValidationError(`${what}: the spec's ${op.template} takes no body, got ${show(value)}`, []);
    return;
  }
  if (value === undefined) {
    if (param.required) throw new OpenApiValidationError(`${what}: the body is required (${schemaName(param.schema!)})`, []);
    return;
  }
  check(`request ${op.method} ${op.template}`, param.schema!, 'request', value, what);
}

export interface ResponseOptions {
  /** Let properties that are not `required` be null (as Firecracker's GET /vm/config has them). Default false. */
  nullableOptional?: boolean;
}

/**
 * Checks a response of `method path` with `status` against the spec: the
 * schema listed for that status, else the `default` one. A status with no
 * schema (204) must come with no body. `body`: parsed JSON, the raw text,
 * or undefined/'' for none.
 */
export function validateResponse(method: string, urlPath: string, status: number, body: unknown, options: ResponseOptions = {}): void {
  const op = findOperation(method, urlPath);
  const what = `${op.method} ${urlPath} response ${status}`;
  const key = String(status) in op.operation.responses ? String(status) : 'default';
  const response = op.operation.responses[key];
  if (!response) {
    const listed = Object.keys(op.operation.responses).join(', ');
    throw new OpenApiValidationError(`${what}: status ${status} is not listed for ${op.method} ${op.template} (listed: ${listed}) and there is no default`, []);
  }
  const value = fromText(body, what);
  if (!response.schema) {
    if (value !== undefined) throw new OpenApiValidationError(`${what}: the spec gives no body for ${key}, got ${show(value)}`, []);
    return;
  }
  if (value === undefined) throw new OpenApiValidationError(`${what}: expected a ${schemaName(response.schema)} body, got none`, []);
  const direction: Direction = options.nullableOptional ? 'response-nullable' : 'response';
  check(`${direction} ${op.method} ${op.template} ${key}`, response.schema, direction, value, what);
}

/** Checks a value against `definitions[name]` (as a response, unless direction says otherwise). */
export function validateDefinition(name: string, value: unknown, direction: Direction = 'response'): void {
  if (!(name in loadSpec().definitions)) throw new Error(`the spec has no definition ${name}`);
  check(`def ${direction} ${name}`, { $ref: `#/definitions/${name}` }, direction, value, `${direction} value`);
}

function check(key: string, schema: SwaggerSchema, direction: Direction, value: unknown, what: string): void {
  const v = validator(key, schema, direction);
  if (v(value)) return;
  const errors = v.errors ?? [];
  const lines = errors.map((e) => `  - ${e.instancePath || '(body)'}: ${describe(e)}`);
  throw new OpenApiValidationError(`${what} does not match ${schemaName(schema)}:\n${lines.join('\n')}\n  body: ${show(value)}`, errors);
}

function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'enum':
      return `${e.message}: ${(p.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')}`;
    case 'additionalProperties':
      return `unknown property ${JSON.stringify(p.additionalProperty)}`;
    case 'false schema':
      return 'must not be present (readOnly: responses only)';
    default:
      return e.message ?? e.keyword;
  }
}

function fromText(body: unknown, what: string): unknown {
  if (typeof body !== 'string') return body;
  if (body.trim() === '') return undefined;
  try {
    return JSON.parse(body);
  } catch (e) {
    throw new OpenApiValidationError(`${what}: the body is not JSON (${(e as Error).message}): ${body.slice(0, 200)}`, []);
  }
}

function schemaName(s: SwaggerSchema): string {
  return typeof s.$ref === 'string' ? s.$ref.replace('#/definitions/', '') : 'the inline schema';
}

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 300 ? `${text.slice(0, 300)}...` : text;
}
