// Connection and groups tokens of the classic protocol: opaque to clients, protected by an HMAC with a purpose per
// token kind (so a groups token never passes as a connection token), base64url on the wire. Under one key, or under
// a key source (a KeyRing shared through the backplane): signed with its signing key, verified against each of its
// verification keys, so tokens survive a rotation. The token carries no key id: the format is the same either way.

import { TokenProtector as MacProtector } from '../util/token-protector.js';

const CONNECTION_PURPOSE = 'SignalR.ConnectionToken';
const GROUPS_PURPOSE = 'SignalR.Groups.v1.1';
/** The purpose under which the classic token keys are kept in the backplane's database (a KeyRing's purpose). */
export const CLASSIC_KEYS_PURPOSE = 'hubwire.classic.tokens';

/** The classic protocol's tokens (the MAC scheme is util/token-protector.ts). */
export class TokenProtector extends MacProtector {
  /** `"<connectionId>:<userName>"`, the user name empty when anonymous (as SignalR 2). */
  connectionToken(connectionId: string, userName: string | undefined): string {
    return this.protect(CONNECTION_PURPOSE, `${connectionId}:${userName ?? ''}`);
  }

  readConnectionToken(token: string): { connectionId: string; userName: string } | undefined {
    const text = this.unprotect(CONNECTION_PURPOSE, token);
    if (text === undefined) return undefined;
    const colon = text.indexOf(':');
    if (colon <= 0) return undefined;
    return { connectionId: text.slice(0, colon), userName: text.slice(colon + 1) };
  }

  /** `"<connectionId>:" + JSON array of "<Hub>.<group>"`. */
  groupsToken(connectionId: string, groups: readonly string[]): string {
    return this.protect(GROUPS_PURPOSE, `${connectionId}:${JSON.stringify(groups)}`);
  }

  /**
   * The groups of a token, when it verifies and names this connection (ignoring case, as SignalR 2); anything else
   * silently yields no groups.
   */
  readGroupsToken(token: string | null | undefined, connectionId: string): string[] {
    if (!token) return [];
    const text = this.unprotect(GROUPS_PURPOSE, token);
    if (text === undefined) return [];
    const colon = text.indexOf(':');
    if (colon <= 0 || text.slice(0, colon).toLowerCase() !== connectionId.toLowerCase()) return [];
    try {
      const groups: unknown = JSON.parse(text.slice(colon + 1));
      return Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [];
    } catch {
      return [];
    }
  }
}
