/** tests/helpers/openapi.ts on known-good and known-bad bodies. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  findOperation,
  OpenApiValidationError,
  toJsonSchema,
  validateDefinition,
  validateRequest,
  validateResponse,
} from '../helpers/openapi.js';

/** Asserts that fn throws an OpenApiValidationError whose message matches every pattern. */
function rejects(fn: () => void, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OpenApiValidationError, `expected OpenApiValidationError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

describe('openapi helper: paths', () => {
  it('matches concrete paths against templates', () => {
    const m = findOperation('put', '/drives/rootfs');
    assert.equal(m.template, '/drives/{drive_id}');
    assert.deepEqual(m.params, { drive_id: 'rootfs' });
    assert.equal(m.operation.operationId, 'putGuestDriveByID');
    assert.equal(findOperation('GET', '/balloon/statistics?x=1').template, '/balloon/statistics');
    assert.equal(findOperation('GET', '/').template, '/');
  });

  it('rejects unknown paths and methods, readably', () => {
    rejects(() => findOperation('GET', '/nope'), /GET \/nope: no path of the spec matches/);
    rejects(() => findOperation('GET', '/drives/a/b'), /no path of the spec matches/);
    rejects(() => validateRequest('DELETE', '/version', undefined), /no DELETE on \/version \(only GET\)/);
  });
});

describe('openapi helper: requests', () => {
  it('accepts valid bodies', () => {
    validateRequest('PUT', '/boot-source', { kernel_image_path: '/vmlinux', boot_args: 'console=ttyS0' });
    validateRequest('PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 1024, smt: false, cpu_template: 'None', huge_pages: '2M' });
    validateRequest('PUT', '/drives/rootfs', { drive_id: 'rootfs', is_root_device: true, path_on_host: '/r', is_read_only: false });
    validateRequest('PUT', '/actions', '{"action_type": "InstanceStart"}');
    validateRequest('PUT', '/mmds', { anything: { goes: [1, 2] } });
    // Extra properties are allowed where the spec does not close the object.
    validateRequest('PUT', '/vsock', { guest_cid: 3, uds_path: '/v', something_new: 1 });
  });

  it('rejects MachineConfiguration with vcpu_count "two"', () => {
    rejects(() => validateRequest('PUT', '/machine-config', { vcpu_count: 'two', mem_size_mib: 128 }), /MachineConfiguration/, /\/vcpu_count: must be integer/);
  });

  it('rejects out-of-range numbers, bad enums, missing required fields', () => {
    rejects(() => validateRequest('PUT', '/machine-config', { vcpu_count: 33, mem_size_mib: 128 }), /\/vcpu_count: must be <= 32/);
    rejects(() => validateRequest('PUT', '/actions', { action_type: 'Reboot' }), /allowed values: "FlushMetrics", "InstanceStart", "SendCtrlAltDel"/);
    rejects(() => validateRequest('PUT', '/boot-source', { boot_args: 'x' }), /must have required property 'kernel_image_path'/);
    rejects(() => validateRequest('PUT', '/vsock', { guest_cid: 2, uds_path: '/v' }), /\/guest_cid: must be >= 3/);
  });

  it('follows $refs into nested definitions', () => {
    const drive = { drive_id: 'd', is_root_device: false, path_on_host: '/d', is_read_only: true };
    validateRequest('PUT', '/drives/d', { ...drive, rate_limiter: { bandwidth: { size: 1, refill_time: 1 } } });
    rejects(() => validateRequest('PUT', '/drives/d', { ...drive, rate_limiter: { bandwidth: { size: -1, refill_time: 1 } } }), /\/rate_limiter\/bandwidth\/size: must be >= 0/);
    rejects(() => validateRequest('PUT', '/cpu-config', { cpuid_modifiers: [{ leaf: '0', subleaf: '0', flags: 2 ** 40, modifiers: [] }] }), /flags: must be <= 2147483647/);
  });

  it('handles body presence: required, optional, none', () => {
    rejects(() => validateRequest('PUT', '/actions', undefined), /body is required/);
    validateRequest('PATCH', '/balloon/hinting/start', undefined); // body optional
    validateRequest('PATCH', '/balloon/hinting/stop', undefined); // no body parameter
    rejects(() => validateRequest('PATCH', '/balloon/hinting/stop', {}), /takes no body/);
    rejects(() => validateRequest('PUT', '/actions', '{"action_type": '), /not JSON/);
  });

  it('forbids readOnly properties in requests, allows them in responses', () => {
    rejects(() => validateDefinition('Error', { fault_message: 'x' }, 'request'), /\/fault_message: must not be present/);
    validateDefinition('Error', { fault_message: 'x' }, 'response');
  });
});

describe('openapi helper: responses', () => {
  it('accepts good bodies for listed statuses', () => {
    validateResponse('GET', '/', 200, { app_name: 'Firecracker', id: 'anonymous-instance', state: 'Not started', vmm_version: '1.0.0' });
    validateResponse('GET', '/machine-config', 200, '{"vcpu_count":1,"mem_size_mib":128,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}');
    validateResponse('PUT', '/boot-source', 204, undefined);
    validateResponse('PUT', '/boot-source', 204, '');
    validateResponse('GET', '/mmds', 200, { a: 1 });
  });

  it('rejects bad bodies', () => {
    rejects(() => validateResponse('GET', '/', 200, { app_name: 'Firecracker', id: 'x', state: 'Booting', vmm_version: '1' }), /\/state: must be equal to one of the allowed values/);
    rejects(() => validateResponse('GET', '/version', 200, {}), /FirecrackerVersion/, /firecracker_version/);
    rejects(() => validateResponse('GET', '/version', 200, undefined), /expected a FirecrackerVersion body, got none/);
    rejects(() => validateResponse('PUT', '/boot-source', 204, { x: 1 }), /no body for 204/);
  });

  it('uses the default response (the Error {fault_message}) for statuses not listed', () => {
    validateResponse('PUT', '/boot-source', 400, { fault_message: 'bad kernel path' });
    validateResponse('PUT', '/entropy', 400, { fault_message: 'not listed: default' });
    validateResponse('GET', '/version', 500, '{"fault_message":"internal"}');
    rejects(() => validateResponse('GET', '/version', 500, { fault_message: 42 }), /Error/, /\/fault_message: must be string/);
  });

  it('nullableOptional lets optional properties be null (as in GET /vm/config), not required ones', () => {
    const config = { balloon: null, drives: [], 'boot-source': { kernel_image_path: '/k', initrd_path: null }, 'machine-config': { vcpu_count: 1, mem_size_mib: 128 } };
    rejects(() => validateResponse('GET', '/vm/config', 200, config), /\/balloon: must be object/, /\/boot-source\/initrd_path: must be string/);
    validateResponse('GET', '/vm/config', 200, config, { nullableOptional: true });
    const noKernel = { 'boot-source': { kernel_image_path: null } };
    rejects(() => validateResponse('GET', '/vm/config', 200, noKernel, { nullableOptional: true }), /\/boot-source\/kernel_image_path: must be string/);
  });
});

describe('openapi helper: Swagger → JSON Schema', () => {
  it('drops x- extensions and Swagger-only keywords, rewrites refs, converts boolean exclusives', () => {
    const s = toJsonSchema(
      {
        type: 'object',
        'x-internal': true,
        example: { a: 1 },
        properties: {
          a: { type: 'integer', format: 'int64', minimum: 0, exclusiveMinimum: true },
          b: { $ref: '#/definitions/TokenBucket', description: 'ignored sibling' },
        },
      },
      'request',
    );
    assert.deepEqual(s, {
      type: 'object',
      properties: {
        a: { type: 'integer', exclusiveMinimum: 0 },
        b: { $ref: 'firecracker-request.json#/definitions/TokenBucket' },
      },
    });
  });
});
