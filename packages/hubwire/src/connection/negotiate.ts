// The negotiate response (versions 0 and 1): which transports the client may use, and the connection's
// public id and secret token.

import { TRANSPORT_FORMATS, type TransportKind } from '../transports/transport.js';
import type { HttpConnection } from './connection.js';

/** The highest negotiate version this server speaks. */
export const NEGOTIATE_VERSION = 1;

/** Returns the version to use, or an error text for the `{error}` reply. */
export function parseNegotiateVersion(value: string | null): number | string {
  if (value === null) return 0;
  if (!/^\d+$/.test(value)) return `The client requested an invalid protocol version '${value}'.`;
  const version = Number(value);
  return Math.min(version, NEGOTIATE_VERSION);
}

export interface NegotiateResponse {
  connectionId: string;
  connectionToken?: string;
  negotiateVersion: number;
  availableTransports: { transport: TransportKind; transferFormats: readonly string[] }[];
  useStatefulReconnect?: true;
}

export function buildNegotiateResponse(
  connection: HttpConnection,
  transports: readonly TransportKind[],
): NegotiateResponse {
  const body: NegotiateResponse = {
    connectionId: connection.connectionId,
    negotiateVersion: connection.negotiateVersion,
    availableTransports: transports.map((transport) => ({
      transport,
      transferFormats: TRANSPORT_FORMATS[transport],
    })),
  };
  if (connection.negotiateVersion >= 1) body.connectionToken = connection.connectionToken;
  // Only when the client asked and the endpoint allows it: an unasked flag aborts the client.
  if (connection.statefulReconnect) body.useStatefulReconnect = true;
  return body;
}
