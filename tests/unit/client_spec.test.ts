/**
 * The client against the API spec (../shared/ref/firecracker-api.yaml):
 * - its endpoint table covers every path+method of the yaml, no more, with
 *   the yaml's operationIds, and each row is a Client method that really
 *   sends that method+path with a body the spec accepts;
 * - the field table of its types (DEFINITION_FIELDS, which the compiler
 *   holds to the interfaces) matches every definition's properties and
 *   `required`, and its enum arrays match the yaml's enums.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Client,
  CLIENT_METHOD_BY_ROUTE,
  DEFINITION_ENUMS,
  DEFINITION_FIELDS,
  ENDPOINTS,
  FREE_FORM_DEFINITIONS,
  type EndpointName,
} from '../../src/index.js';
import { startFakeApi, type FakeApi } from '../helpers/fake_api_server.js';
import { findOperation, loadSpec, specRoutes, validateRequest, type SwaggerSchema } from '../helpers/openapi.js';

const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

describe('client endpoints vs the spec', () => {
  it('the endpoint table covers every path+method of the yaml exactly', () => {
    const spec = sorted(specRoutes().map(([m, p]) => `${m} ${p}`));
    const ours = sorted(Object.values(ENDPOINTS).map((e) => `${e.method} ${e.path}`));
    assert.deepEqual(ours, spec);
    assert.equal(Object.keys(CLIENT_METHOD_BY_ROUTE).length, spec.length, 'two client methods for one route');
  });

  it("each row carries the yaml's operationId and whether 2xx has a body", () => {
    for (const [name, e] of Object.entries(ENDPOINTS)) {
      const op = loadSpec().paths[e.path]![e.method.toLowerCase()]!;
      assert.equal(e.operationId, op.operationId, `${name}`);
      const ok = Object.entries(op.responses).filter(([s]) => s.startsWith('2'));
      assert.equal(ok.length, 1, `${name}: one 2xx response`);
      assert.equal(e.returnsBody, ok[0]![1].schema !== undefined, `${name}: returnsBody`);
    }
  });

  it('each row is a method of Client', () => {
    for (const name of Object.keys(ENDPOINTS)) {
      assert.equal(typeof (Client.prototype as unknown as Record<string, unknown>)[name], 'function', `Client.${name}`);
    }
  });

  describe('each client method sends its route, with a body the spec accepts', () => {
    let api: FakeApi;
    before(async () => {
      api = await startFakeApi((req) => (req.method === 'GET' ? { status: 200, body: {} } : undefined));
    });
    after(() => api.close());

    const limiter = { bandwidth: { size: 1000, refill_time: 100 }, ops: { size: 10, refill_time: 100, one_time_burst: 5 } };
    // A call per endpoint; the Record type makes the compiler demand one for every row.
    const calls: Record<EndpointName, (c: Client) => Promise<unknown>> = {
      describeInstance: (c) => c.describeInstance(),
      createSyncAction: (c) => c.createSyncAction({ action_type: 'InstanceStart' }),
      getBalloon: (c) => c.getBalloon(),
      putBalloon: (c) => c.putBalloon({ amount_mib: 64, deflate_on_oom: true, stats_polling_interval_s: 1 }),
      patchBalloon: (c) => c.patchBalloon({ amount_mib: 32 }),
      getBalloonStats: (c) => c.getBalloonStats(),
      patchBalloonStats: (c) => c.patchBalloonStats({ stats_polling_interval_s: 5 }),
      startBalloonHinting: (c) => c.startBalloonHinting({ acknowledge_on_stop: true }),
      getBalloonHintingStatus: (c) => c.getBalloonHintingStatus(),
      stopBalloonHinting: (c) => c.stopBalloonHinting(),
      putBootSource: (c) => c.putBootSource({ kernel_image_path: '/k', boot_args: 'console=ttyS0' }),
      putCpuConfig: (c) =>
        c.putCpuConfig({
          kvm_capabilities: ['!121'],
          cpuid_modifiers: [{ leaf: '0x1', subleaf: '0x0', flags: 0, modifiers: [{ register: 'ecx', bitmap: '0bx0xxxxxxxxxxxxxxxxxxxxxxxxxxxxx' }] }],
          msr_modifiers: [{ addr: '0x10a', bitmap: '0b1' }],
        }),
      putDrive: (c) => c.putDrive({ drive_id: 'root fs', path_on_host: '/r.ext4', is_root_device: true, is_read_only: false, rate_limiter: limiter }),
      patchDrive: (c) => c.patchDrive({ drive_id: 'root fs', path_on_host: '/r2.ext4' }),
      putPmem: (c) => c.putPmem({ id: 'pm0', path_on_host: '/p.img', read_only: true }),
      patchPmem: (c) => c.patchPmem({ id: 'pm0', rate_limiter: limiter }),
      putLogger: (c) => c.putLogger({ log_path: '/l.log', level: 'Debug', show_level: true }),
      putMetrics: (c) => c.putMetrics({ metrics_path: '/m.json', properties: { a: 'b' } }),
      getMachineConfig: (c) => c.getMachineConfig(),
      putMachineConfig: (c) => c.putMachineConfig({ vcpu_count: 2, mem_size_mib: 256, smt: false, huge_pages: 'None' }),
      patchMachineConfig: (c) => c.patchMachineConfig({ vcpu_count: 1, mem_size_mib: 128 }),
      getMmds: (c) => c.getMmds(),
      putMmds: (c) => c.putMmds({ latest: { 'meta-data': { 'instance-id': 'i-1' } } }),
      patchMmds: (c) => c.patchMmds({ latest: null }),
      putMmdsConfig: (c) => c.putMmdsConfig({ network_interfaces: ['eth0'], version: 'V2' }),
      putEntropy: (c) => c.putEntropy(),
      putSerial: (c) => c.putSerial({ serial_out_path: '/s.log' }),
      getMemoryHotplug: (c) => c.getMemoryHotplug(),
      putMemoryHotplug: (c) => c.putMemoryHotplug({ total_size_mib: 1024 }),
      patchMemoryHotplug: (c) => c.patchMemoryHotplug({ requested_size_mib: 512 }),
      putNetworkInterface: (c) => c.putNetworkInterface({ iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '06:00:00:00:00:01' }),
      patchNetworkInterface: (c) => c.patchNetworkInterface({ iface_id: 'eth0', rx_rate_limiter: limiter }),
      createSnapshot: (c) => c.createSnapshot({ mem_file_path: '/mem', snapshot_path: '/snap', snapshot_type: 'Full' }),
      loadSnapshot: (c) =>
        c.loadSnapshot({ snapshot_path: '/snap', mem_backend: { backend_type: 'File', backend_path: '/mem' }, resume_vm: true }),
      getVersion: (c) => c.getVersion(),
      patchVm: (c) => c.patchVm({ state: 'Paused' }),
      getVmConfig: (c) => c.getVmConfig(),
      putVsock: (c) => c.putVsock({ guest_cid: 3, uds_path: '/v.sock' }),
    };

    for (const [name, call] of Object.entries(calls) as [EndpointName, (c: Client) => Promise<unknown>][]) {
      it(name, async () => {
        const before = api.requests.length;
        await call(new Client({ socketPath: api.socketPath }));
        assert.equal(api.requests.length, before + 1, 'one request');
        const req = api.requests.at(-1)!;
        const ep = ENDPOINTS[name];
        assert.equal(req.method, ep.method);
        assert.equal(findOperation(req.method, req.url).template, ep.path, `${req.method} ${req.url}`);
        validateRequest(req.method, req.url, req.body === '' ? undefined : JSON.parse(req.body));
      });
    }

    it('conveniences send their route and body', async () => {
      const c = new Client({ socketPath: api.socketPath });
      const expect = async (call: Promise<unknown>, route: string, body: unknown): Promise<void> => {
        await call;
        const req = api.requests.at(-1)!;
        assert.equal(`${req.method} ${req.url}`, route);
        assert.deepEqual(JSON.parse(req.body), body);
        validateRequest(req.method, req.url, req.body);
      };
      await expect(c.startInstance(), 'PUT /actions', { action_type: 'InstanceStart' });
      await expect(c.sendCtrlAltDel(), 'PUT /actions', { action_type: 'SendCtrlAltDel' });
      await expect(c.flushMetrics(), 'PUT /actions', { action_type: 'FlushMetrics' });
      await expect(c.pause(), 'PATCH /vm', { state: 'Paused' });
      await expect(c.resume(), 'PATCH /vm', { state: 'Resumed' });
    });
  });
});

describe('client types vs the spec definitions', () => {
  const defs = loadSpec().definitions;
  const fieldTables = DEFINITION_FIELDS as unknown as Record<string, Record<string, string>>;

  it('every definition is modelled: an interface, a free-form object or an enum', () => {
    const modelled = new Set([...Object.keys(fieldTables), ...FREE_FORM_DEFINITIONS, ...Object.keys(DEFINITION_ENUMS).filter((k) => !k.includes('.'))]);
    assert.deepEqual(sorted(modelled), sorted(Object.keys(defs)));
  });

  for (const [name, table] of Object.entries(fieldTables)) {
    it(`${name}: same fields, same required ones`, () => {
      const def = defs[name];
      assert.ok(def, `no definition ${name} in the spec`);
      const props = (def.properties ?? {}) as Record<string, SwaggerSchema>;
      assert.deepEqual(sorted(Object.keys(table)), sorted(Object.keys(props)), 'field names');
      const required = new Set((def.required as string[] | undefined) ?? []);
      for (const [field, presence] of Object.entries(table)) {
        assert.equal(presence, required.has(field) ? 'required' : 'optional', `${name}.${field}`);
      }
    });
  }

  it('free-form definitions are objects with any properties', () => {
    for (const name of FREE_FORM_DEFINITIONS) {
      assert.equal(defs[name]!.type, 'object');
      assert.equal(defs[name]!.properties, undefined);
      assert.equal(defs[name]!.additionalProperties, true);
    }
  });

  it('every enum of the spec has its array, with the same values', () => {
    const found: Record<string, unknown[]> = {};
    for (const [name, def] of Object.entries(defs)) {
      if (Array.isArray(def.enum)) found[name] = def.enum;
      for (const [field, prop] of Object.entries((def.properties ?? {}) as Record<string, SwaggerSchema>)) {
        if (Array.isArray(prop.enum)) found[`${name}.${field}`] = prop.enum;
      }
    }
    assert.deepEqual(sorted(Object.keys(DEFINITION_ENUMS)), sorted(Object.keys(found)), 'enum locations');
    for (const [where, values] of Object.entries(found)) {
      assert.deepEqual(sorted(DEFINITION_ENUMS[where]!), sorted(values.map(String)), where);
    }
  });
});
