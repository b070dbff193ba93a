// The `ws` build used by the raw baseline and by every bench client.
//
// At the repo root `ws` resolves to v7 (hoisted for @microsoft/signalr), which is older and slower than the v8
// Hubwire (and engine.io) run on. Loading it next to Hubwire's own sources keeps the baseline honest: the raw
// loop and Hubwire then write through the very same WebSocket implementation.

import { createRequire } from 'node:module';
import type * as WsModule from 'ws';

const requireNextToHubwire = createRequire(import.meta.resolve('hubwire'));
const ws = requireNextToHubwire('ws') as typeof WsModule;

export const WebSocket = ws.WebSocket;
export const WebSocketServer = ws.WebSocketServer;
export type WebSocket = WsModule.WebSocket;
export type WebSocketServer = WsModule.WebSocketServer;

/** The version actually loaded, printed with the results. */
export const wsVersion: string = (requireNextToHubwire('ws/package.json') as { version: string }).version;
