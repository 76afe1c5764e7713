/**
 * The API's endpoints: one row per path+method of the yaml, naming the
 * Client method that calls it. The Client builds its requests from this
 * table, and tests/unit/client_spec.test.ts checks that it covers the yaml
 * exactly.
 */
import type { HttpMethod } from './transport.js';

export interface Endpoint {
  readonly method: HttpMethod;
  /** The yaml's path template, e.g. `/drives/{drive_id}`. */
  readonly path: string;
  /** The yaml's operationId. */
  readonly operationId: string;
  /** Whether a 2xx answer carries a JSON body (200) rather than none (204). */
  readonly returnsBody: boolean;
}

const get = (path: string, operationId: string): Endpoint => ({ method: 'GET', path, operationId, returnsBody: true });
const put = (path: string, operationId: string): Endpoint => ({ method: 'PUT', path, operationId, returnsBody: false });
const patch = (path: string, operationId: string): Endpoint => ({ method: 'PATCH', path, operationId, returnsBody: false });

/** Client method name → the endpoint it calls. */
export const ENDPOINTS = {
  describeInstance: get('/', 'describeInstance'),
  createSyncAction: put('/actions', 'createSyncAction'),

  getBalloon: get('/balloon', 'describeBalloonConfig'),
  putBalloon: put('/balloon', 'putBalloon'),
  patchBalloon: patch('/balloon', 'patchBalloon'),
  getBalloonStats: get('/balloon/statistics', 'describeBalloonStats'),
  patchBalloonStats: patch('/balloon/statistics', 'patchBalloonStatsInterval'),
  startBalloonHinting: patch('/balloon/hinting/start', 'startBalloonHinting'),
  getBalloonHintingStatus: get('/balloon/hinting/status', 'describeBalloonHinting'),
  stopBalloonHinting: patch('/balloon/hinting/stop', 'stopBalloonHinting'),

  putBootSource: put('/boot-source', 'putGuestBootSource'),
  putCpuConfig: put('/cpu-config', 'putCpuConfiguration'),

  putDrive: put('/drives/{drive_id}', 'putGuestDriveByID'),
  patchDrive: patch('/drives/{drive_id}', 'patchGuestDriveByID'),
  putPmem: put('/pmem/{id}', 'putGuestPmemByID'),
  patchPmem: patch('/pmem/{id}', 'patchGuestPmemByID'),

  putLogger: put('/logger', 'putLogger'),
  putMetrics: put('/metrics', 'putMetrics'),

  getMachineConfig: get('/machine-config', 'getMachineConfiguration'),
  putMachineConfig: put('/machine-config', 'putMachineConfiguration'),
  patchMachineConfig: patch('/machine-config', 'patchMachineConfiguration'),

  getMmds: get('/mmds', 'getMmds'),
  putMmds: put('/mmds', 'putMmds'),
  patchMmds: patch('/mmds', 'patchMmds'),
  putMmdsConfig: put('/mmds/config', 'putMmdsConfig'),

  putEntropy: put('/entropy', 'putEntropyDevice'),
  putSerial: put('/serial', 'putSerialDevice'),

  getMemoryHotplug: get('/hotplug/memory', 'getMemoryHotplug'),
  putMemoryHotplug: put('/hotplug/memory', 'putMemoryHotplug'),
  patchMemoryHotplug: patch('/hotplug/memory', 'patchMemoryHotplug'),

  putNetworkInterface: put('/network-interfaces/{iface_id}', 'putGuestNetworkInterfaceByID'),
  patchNetworkInterface: patch('/network-interfaces/{iface_id}', 'patchGuestNetworkInterfaceByID'),

  createSnapshot: put('/snapshot/create', 'createSnapshot'),
  loadSnapshot: put('/snapshot/load', 'loadSnapshot'),

  getVersion: get('/version', 'getFirecrackerVersion'),
  patchVm: patch('/vm', 'patchVm'),
  getVmConfig: get('/vm/config', 'getExportVmConfig'),
  putVsock: put('/vsock', 'putGuestVsock'),
} as const satisfies Record<string, Endpoint>;

export type EndpointName = keyof typeof ENDPOINTS;

/** `"METHOD /path-template"` → Client method name, e.g. `"PUT /drives/{drive_id}"` → `"putDrive"`. */
export const CLIENT_METHOD_BY_ROUTE: Readonly<Record<string, EndpointName>> = Object.fromEntries(
  (Object.entries(ENDPOINTS) as [EndpointName, Endpoint][]).map(([name, e]) => [`${e.method} ${e.path}`, name]),
);

/** Fills a path template: `/drives/{drive_id}` + `{drive_id: 'root'}` → `/drives/root`. */
export function fillPath(template: string, params: Readonly<Record<string, string>> = {}): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined || v === '') throw new TypeError(`${template}: missing path parameter ${name}`);
    return encodeURIComponent(v);
  });
}
