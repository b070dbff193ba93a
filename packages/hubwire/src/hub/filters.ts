// Hub filters: middleware around hub method invocations and the connect / disconnect events.

import type { HubCallerContext } from './hub.js';

export interface HubInvocationContext {
  /** The hub instance handling the call. */
  readonly hub: object;
  readonly context: HubCallerContext;
  /** The method's name as the hub declares it. */
  readonly methodName: string;
  readonly arguments: unknown[];
}

export interface HubLifetimeContext {
  readonly hub: object;
  readonly context: HubCallerContext;
}

export interface HubFilter {
  /** Wraps every hub method call; call `next` to run the method (or the next filter). */
  invokeMethod?(
    invocation: HubInvocationContext,
    next: (invocation: HubInvocationContext) => Promise<unknown>,
  ): Promise<unknown>;
  onConnected?(context: HubLifetimeContext, next: (context: HubLifetimeContext) => Promise<void>): Promise<void>;
  onDisconnected?(
    context: HubLifetimeContext,
    error: Error | undefined,
    next: (context: HubLifetimeContext, error: Error | undefined) => Promise<void>,
  ): Promise<void>;
}

export function runInvokeFilters(
  filters: readonly HubFilter[],
  invocation: HubInvocationContext,
  last: (invocation: HubInvocationContext) => Promise<unknown>,
): Promise<unknown> {
  const step = (index: number, current: HubInvocationContext): Promise<unknown> => {
    for (let i = index; i < filters.length; i++) {
      const filter = filters[i] as HubFilter;
      if (filter.invokeMethod) return filter.invokeMethod(current, (next) => step(i + 1, next));
    }
    return last(current);
  };
  return step(0, invocation);
}

export function runConnectedFilters(
  filters: readonly HubFilter[],
  context: HubLifetimeContext,
  last: (context: HubLifetimeContext) => Promise<void>,
): Promise<void> {
  const step = (index: number, current: HubLifetimeContext): Promise<void> => {
    for (let i = index; i < filters.length; i++) {
      const filter = filters[i] as HubFilter;
      if (filter.onConnected) return filter.onConnected(current, (next) => step(i + 1, next));
    }
    return last(current);
  };
  return step(0, context);
}

export function runDisconnectedFilters(
  filters: readonly HubFilter[],
  context: HubLifetimeContext,
  error: Error | undefined,
  last: (context: HubLifetimeContext, error: Error | undefined) => Promise<void>,
): Promise<void> {
  const step = (index: number, current: HubLifetimeContext, err: Error | undefined): Promise<void> => {
    for (let i = index; i < filters.length; i++) {
      const filter = filters[i] as HubFilter;
      if (filter.onDisconnected) return filter.onDisconnected(current, err, (next, e) => step(i + 1, next, e));
    }
    return last(current, err);
  };
  return step(0, context, error);
}

/** Runs a hub instance's onConnected (if it has one) through the filters' onConnected. */
export function runOnConnected(filters: readonly HubFilter[], context: HubCallerContext, hub: object): Promise<void> {
  const hooks = hub as { onConnected?: () => unknown };
  return runConnectedFilters(filters, { hub, context }, async () => {
    await hooks.onConnected?.();
  });
}

/** Runs a hub instance's onDisconnected (if it has one) through the filters' onDisconnected. */
export function runOnDisconnected(
  filters: readonly HubFilter[],
  context: HubCallerContext,
  hub: object,
  error: Error | undefined,
): Promise<void> {
  const hooks = hub as { onDisconnected?: (error?: Error) => unknown };
  return runDisconnectedFilters(filters, { hub, context }, error, async (_context, e) => {
    await hooks.onDisconnected?.(e);
  });
}
