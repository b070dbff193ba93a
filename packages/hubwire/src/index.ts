// Hubwire's public API.

export { Hubwire, type HubContext } from './server.js';
export { Hub, defineHub, type HubCallerContext, type HubInstanceState, type HubObject } from './hub/hub.js';
export type {
  ClientMethods,
  ClientProxy,
  GroupManager,
  HubCallerClients,
  HubClients,
  SingleClientProxy,
} from './hub/clients.js';
export type { HubFilter, HubInvocationContext, HubLifetimeContext } from './hub/filters.js';
export type { AuthorizeUser, HubDefinition, HubMethodOptions } from './hub/hub-registry.js';
export { HubError, HubwireError, ClientResultError, type HubwireErrorCode } from './errors.js';
export { DEFAULTS, type HubOptions, type HubwireOptions } from './options.js';
export type { Audience, BusConnection, InvokeOptions, MessageBus } from './bus/message-bus.js';
export { LocalBus } from './bus/local-bus.js';
export { SerializedMessage } from './hub/serialized-message.js';
export type { HubProtocol, MessageDecoder, TransferFormat } from './protocol/hub-protocol.js';
export type * from './protocol/messages.js';
export { MessageType } from './protocol/messages.js';
export { jsonHubProtocol } from './protocol/json-protocol.js';
export { messagePackHubProtocol } from './protocol/msgpack-protocol.js';
export type { TransportKind } from './transports/transport.js';
export { getAccessToken, type RequestInfo } from './connection/request-info.js';
