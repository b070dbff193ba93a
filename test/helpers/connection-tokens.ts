// Reading HAProxy's log for the no-sticky tests (issue 15): which nodes answered the requests of one Core connection.
// A signed connection token (the `id=` of every transport request) is base64url JSON, then a dot and the signature;
// its element [1] is the public connection id.

/** The connection id a request's `id=` token holds, or undefined (no token, or not a signed one). */
export function connectionIdOf(uri: string): string | undefined {
  const token = new URL(uri, 'http://x').searchParams.get('id');
  if (!token) return undefined;
  try {
    const fields = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as unknown;
    return Array.isArray(fields) && typeof fields[1] === 'string' ? fields[1] : undefined;
  } catch {
    return undefined; // not a signed token
  }
}

/** The servers (indexes in HAProxy's backends) that answered requests carrying `connectionId`'s token, sorted. */
export function nodesOfConnection(
  requests: readonly { server: number; uri: string }[],
  connectionId: string,
): number[] {
  const servers = new Set<number>();
  for (const request of requests) {
    if (request.server >= 0 && connectionIdOf(request.uri) === connectionId) servers.add(request.server);
  }
  return [...servers].sort((a, b) => a - b);
}
