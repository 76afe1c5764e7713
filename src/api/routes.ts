/**
 * Firecracker's API, endpoint by endpoint: method, path, body validation and
 * what each does before and after the microVM starts. Bodies are validated
 * by the same validators as --config-file (vmm_config/), so a body is
 * accepted or rejected the same way through both. Endpoints whose devices
 * do not exist yet validate their bodies exactly and then refuse.
 */
import { validateBody } from '../vmm/vmm_config/index.js';
import { NOT_ALLOWED_POST_BOOT, VmmActionError, type VmmController } from '../vmm/rpc_interface.js';

export interface RouteContext {
  /** Parsed JSON body (undefined when the request had none). */
  body: unknown;
  params: Record<string, string>;
  controller: VmmController;
  info: ApiInfo;
}

export interface ApiInfo {
  instanceId: string;
  version: string;
  /** Hooks for side effects owned elsewhere (logger, metrics). */
  flushMetrics: () => void;
  configureLogger: (body: unknown) => void;
  configureMetrics: (body: unknown) => void;
}

export interface RouteResult {
  status: number;
  body?: unknown;
}

export type Method = 'GET' | 'PUT' | 'PATCH';

export interface Route {
  method: Method;
  /** Path template, e.g. /drives/{drive_id}. */
  path: string;
  /** The request must carry a JSON body. */
  needsBody: boolean;
  handle: (ctx: RouteContext) => RouteResult | Promise<RouteResult>;
}

const NO_CONTENT: RouteResult = { status: 204 };

function notYet(feature: string): never {
  throw new VmmActionError(400, `${feature}: not supported by sparkler yet.`);
}

/** A body the path's id must agree with (Firecracker checks this too). */
function checkIdMatch(ctx: RouteContext, param: string, field: string): void {
  const body = ctx.body as Record<string, unknown> | null;
  if (body && typeof body === 'object' && field in body && body[field] !== ctx.params[param]) {
    throw new VmmActionError(400, 'The id from the path does not match the id from the body!');
  }
}

/** Validate exactly like the config file, then refuse: the device is not implemented yet. */
function validatedButNotYet(definition: Parameters<typeof validateBody>[0], feature: string, idCheck?: [string, string]) {
  return (ctx: RouteContext): RouteResult => {
    if (idCheck) checkIdMatch(ctx, idCheck[0], idCheck[1]);
    ctx.controller.preBoot(() => validateBody(definition, ctx.body));
    return notYet(feature);
  };
}

function validatedButNotYetAnyTime(definition: Parameters<typeof validateBody>[0], feature: string, idCheck?: [string, string]) {
  return (ctx: RouteContext): RouteResult => {
    if (idCheck) checkIdMatch(ctx, idCheck[0], idCheck[1]);
    try {
      validateBody(definition, ctx.body);
    } catch (e) {
      throw new VmmActionError(400, (e as Error).message);
    }
    return notYet(feature);
  };
}

export const ROUTES: Route[] = [
  {
    method: 'GET', path: '/', needsBody: false,
    handle: (ctx) => ({
      status: 200,
      body: { app_name: 'Firecracker', id: ctx.info.instanceId, state: ctx.controller.state, vmm_version: ctx.info.version },
    }),
  },
  { method: 'GET', path: '/version', needsBody: false, handle: (ctx) => ({ status: 200, body: { firecracker_version: ctx.info.version } }) },
  {
    method: 'PUT', path: '/actions', needsBody: true,
    handle: async (ctx) => {
      const { action_type: action } = validateOrFault(() => validateBody('InstanceActionInfo', ctx.body));
      if (action === 'InstanceStart') await ctx.controller.startInstance();
      else if (action === 'SendCtrlAltDel') ctx.controller.sendCtrlAltDel();
      else ctx.info.flushMetrics();
      return NO_CONTENT;
    },
  },
  { method: 'GET', path: '/machine-config', needsBody: false, handle: (ctx) => ({ status: 200, body: machineConfigView(ctx) }) },
  {
    method: 'PUT', path: '/machine-config', needsBody: true,
    handle: (ctx) => { ctx.controller.preBoot(() => ctx.controller.resources.setMachineConfig(ctx.body, '')); return NO_CONTENT; },
  },
  {
    method: 'PATCH', path: '/machine-config', needsBody: true,
    handle: (ctx) => { ctx.controller.preBoot(() => ctx.controller.resources.patchMachineConfig(ctx.body, '')); return NO_CONTENT; },
  },
  {
    method: 'PUT', path: '/boot-source', needsBody: true,
    handle: (ctx) => { ctx.controller.preBoot(() => ctx.controller.resources.setBootSource(ctx.body, '')); return NO_CONTENT; },
  },
  {
    method: 'PUT', path: '/logger', needsBody: true,
    handle: (ctx) => { ctx.controller.preBoot(() => ctx.info.configureLogger(ctx.body)); return NO_CONTENT; },
  },
  {
    method: 'PUT', path: '/metrics', needsBody: true,
    handle: (ctx) => { ctx.controller.preBoot(() => ctx.info.configureMetrics(ctx.body)); return NO_CONTENT; },
  },
  {
    method: 'PUT', path: '/serial', needsBody: true,
    handle: (ctx) => { ctx.controller.preBoot(() => ctx.controller.resources.setSerial(ctx.body, '')); return NO_CONTENT; },
  },
  { method: 'GET', path: '/vm/config', needsBody: false, handle: (ctx) => ({ status: 200, body: ctx.controller.resources.toFullVmConfiguration() }) },
  {
    method: 'PATCH', path: '/vm', needsBody: true,
    handle: async (ctx) => {
      const { state } = validateOrFault(() => validateBody('Vm', ctx.body));
      if (state === 'Paused') await ctx.controller.pause();
      else ctx.controller.resume();
      return NO_CONTENT;
    },
  },

  // Devices and features that come with later issues: bodies are validated exactly, then refused.
  {
    method: 'PUT', path: '/drives/{drive_id}', needsBody: true,
    handle: (ctx) => {
      checkIdMatch(ctx, 'drive_id', 'drive_id');
      ctx.controller.preBoot(() => ctx.controller.resources.setDrive(ctx.body, ''));
      return NO_CONTENT;
    },
  },
  {
    method: 'PATCH', path: '/drives/{drive_id}', needsBody: true,
    handle: (ctx) => {
      checkIdMatch(ctx, 'drive_id', 'drive_id');
      const update = validateOrFault(() => validateBody('PartialDrive', ctx.body));
      ctx.controller.patchDrive(update);
      return NO_CONTENT;
    },
  },
  {
    method: 'PUT', path: '/network-interfaces/{iface_id}', needsBody: true,
    handle: (ctx) => {
      checkIdMatch(ctx, 'iface_id', 'iface_id');
      ctx.controller.preBoot(() => ctx.controller.resources.setNetworkInterface(ctx.body, ''));
      return NO_CONTENT;
    },
  },
  {
    method: 'PATCH', path: '/network-interfaces/{iface_id}', needsBody: true,
    handle: (ctx) => {
      checkIdMatch(ctx, 'iface_id', 'iface_id');
      ctx.controller.patchNetworkInterface(validateOrFault(() => validateBody('PartialNetworkInterface', ctx.body)));
      return NO_CONTENT;
    },
  },
  {
    method: 'PUT', path: '/vsock', needsBody: true,
    handle: (ctx) => { ctx.controller.preBoot(() => ctx.controller.resources.setVsock(ctx.body, '')); return NO_CONTENT; },
  },
  {
    method: 'PUT', path: '/entropy', needsBody: true,
    handle: (ctx) => { ctx.controller.preBoot(() => ctx.controller.resources.setEntropy(ctx.body, '')); return NO_CONTENT; },
  },
  { method: 'PUT', path: '/balloon', needsBody: true, handle: validatedButNotYet('Balloon', 'The balloon device') },
  { method: 'PATCH', path: '/balloon', needsBody: true, handle: validatedButNotYetAnyTime('BalloonUpdate', 'The balloon device') },
  { method: 'GET', path: '/balloon', needsBody: false, handle: () => notYet('The balloon device') },
  { method: 'GET', path: '/balloon/statistics', needsBody: false, handle: () => notYet('The balloon device') },
  { method: 'PATCH', path: '/balloon/statistics', needsBody: true, handle: validatedButNotYetAnyTime('BalloonStatsUpdate', 'The balloon device') },
  { method: 'PATCH', path: '/balloon/hinting/start', needsBody: false, handle: validatedButNotYetAnyTime('BalloonStartCmd', 'Balloon free page hinting') },
  { method: 'GET', path: '/balloon/hinting/status', needsBody: false, handle: () => notYet('Balloon free page hinting') },
  { method: 'PATCH', path: '/balloon/hinting/stop', needsBody: false, handle: () => notYet('Balloon free page hinting') },
  { method: 'PUT', path: '/mmds', needsBody: true, handle: validatedButNotYetAnyTime('MmdsContentsObject', 'MMDS') },
  { method: 'PATCH', path: '/mmds', needsBody: true, handle: validatedButNotYetAnyTime('MmdsContentsObject', 'MMDS') },
  { method: 'GET', path: '/mmds', needsBody: false, handle: () => notYet('MMDS') },
  {
    // Validated against the configured network interfaces (as the config file is), then refused.
    method: 'PUT', path: '/mmds/config', needsBody: true,
    handle: (ctx) => ctx.controller.preBoot(() => ctx.controller.resources.setMmdsConfig(ctx.body, '')),
  },
  { method: 'PUT', path: '/cpu-config', needsBody: true, handle: validatedButNotYet('CpuConfig', 'Custom CPU templates') },
  { method: 'PUT', path: '/pmem/{id}', needsBody: true, handle: validatedButNotYet('Pmem', 'Persistent memory (pmem) devices', ['id', 'id']) },
  { method: 'PATCH', path: '/pmem/{id}', needsBody: true, handle: validatedButNotYetAnyTime('PartialPmem', 'Persistent memory (pmem) devices', ['id', 'id']) },
  { method: 'PUT', path: '/hotplug/memory', needsBody: true, handle: validatedButNotYet('MemoryHotplugConfig', 'Memory hotplug') },
  { method: 'PATCH', path: '/hotplug/memory', needsBody: true, handle: validatedButNotYetAnyTime('MemoryHotplugSizeUpdate', 'Memory hotplug') },
  { method: 'GET', path: '/hotplug/memory', needsBody: false, handle: () => notYet('Memory hotplug') },
  { method: 'PUT', path: '/snapshot/create', needsBody: true, handle: validatedButNotYetAnyTime('SnapshotCreateParams', 'Snapshots') },
  { method: 'PUT', path: '/snapshot/load', needsBody: true, handle: validatedButNotYetAnyTime('SnapshotLoadParams', 'Snapshots') },
];

function validateOrFault<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new VmmActionError(400, (e as Error).message);
  }
}

function machineConfigView(ctx: RouteContext): unknown {
  const { cpu_template, ...mc } = ctx.controller.resources.machineConfig;
  return cpu_template === null ? mc : { ...mc, cpu_template };
}

export { NOT_ALLOWED_POST_BOOT };
