// Builds a classic SignalR 2 endpoint for Hubwire.mapClassicHubs: classic hub names resolved to modern hubs that
// are already mapped (sharing their HubEndpoint, bus and groups), options resolved, path checked.

import { normalizePath } from '../connection/paths.js';
import type { HubContext } from '../hub/clients.js';
import type { HubEndpoint } from '../hub/hub-endpoint.js';
import { ClassicHub } from './classic-hub.js';
import { ClassicServer, type ClassicServerDeps } from './classic-server.js';
import { type ClassicHubMap, type ClassicHubsOptions, resolveClassicOptions } from './options.js';
import type { PersistentEndpoint } from './persistent.js';

function basePathOf(path: string): string {
  const basePath = normalizePath(path, 'classic path');
  if (basePath === '/') throw new TypeError('The classic endpoint needs a path of its own, e.g. /signalr.');
  return basePath;
}

/** A persistent connection endpoint (mapClassicConnection) at `path`. */
export function createPersistentServer(
  path: string,
  endpoint: (basePath: string) => PersistentEndpoint,
  options: ClassicHubsOptions | undefined,
  deps: ClassicServerDeps,
): ClassicServer {
  const basePath = basePathOf(path);
  return new ClassicServer(basePath, [], resolveClassicOptions(options, deps.allowedOrigins), deps, endpoint(basePath));
}

export function createClassicServer(
  path: string,
  hubs: ClassicHubMap,
  options: ClassicHubsOptions | undefined,
  /** The endpoint of a mapped hub, by path or context; throws when there is none. */
  endpointOf: (hub: string | HubContext) => HubEndpoint,
  deps: ClassicServerDeps,
): ClassicServer {
  const basePath = basePathOf(path);
  const classicHubs: ClassicHub[] = [];
  for (const [name, hub] of Object.entries(hubs)) {
    if (!/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/.test(name)) {
      throw new TypeError(`'${name}' is not a valid classic hub name (letters, digits, '_', '$', dots).`);
    }
    classicHubs.push(new ClassicHub(name, endpointOf(hub)));
  }
  if (classicHubs.length === 0) throw new TypeError('mapClassicHubs needs at least one hub.');
  return new ClassicServer(basePath, classicHubs, resolveClassicOptions(options, deps.allowedOrigins), deps);
}
