// Identifiers: public connection ids and secret connection tokens are independent random values.

import { randomBytes } from 'node:crypto';

/** 16 random bytes, base64url: what ASP.NET Core uses for both the id and the token. */
export function randomId(): string {
  return randomBytes(16).toString('base64url');
}
