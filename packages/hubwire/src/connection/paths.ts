// Endpoint paths as users write them: they must start with '/', and a trailing '/' is dropped (`/chat/` is `/chat`).
// Requests match them case-insensitively (http-dispatcher.ts), as ASP.NET Core's routing does.

/** The canonical form of an endpoint path; throws a TypeError naming `what` for a path not starting with '/'. */
export function normalizePath(path: string, what = 'path'): string {
  if (!path.startsWith('/')) throw new TypeError(`The ${what} must start with '/': '${path}'.`);
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** How a path is matched: lower case, a trailing '/' dropped (endpoints and routes are keyed so). */
export function pathKey(pathname: string): string {
  const lower = pathname.toLowerCase();
  return lower.length > 1 && lower.endsWith('/') ? lower.slice(0, -1) : lower;
}

/** The key of a request URL's path (dot segments resolved, no query); undefined when the URL cannot be parsed. */
export function requestPathKey(url: string | undefined): string | undefined {
  try {
    return pathKey(new URL(url ?? '/', 'http://localhost').pathname);
  } catch {
    return undefined;
  }
}
