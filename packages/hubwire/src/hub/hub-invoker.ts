// Resolving and running one hub method call (lookup, argument count, per-method authorization, filters), shared
// by the modern HubConnectionContext and the classic SignalR 2 protocol so both give hub code the same semantics.

import type { MessageBus } from '../bus/message-bus.js';
import { HubError, HubwireError } from '../errors.js';
import { validateArguments } from './argument-schema.js';
import { runInvokeFilters } from './filters.js';
import type { HubCallerContext } from './hub.js';
import type { HubMethod } from './hub-registry.js';
import type { HubServices } from './hub-services.js';

/** What a call came to: a value, a refusal the client may read (unknown method, arity, authorization), or a throw. */
export type CallOutcome = { value: unknown } | { refused: string } | { thrown: unknown };

/** Checks the method found for `target`, its argument count and authorization; returns an error text when refused. */
async function resolveMethod(
  method: HubMethod | undefined,
  context: HubCallerContext,
  target: string,
  provided: number,
): Promise<{ method: HubMethod } | { refused: string }> {
  if (!method) return { refused: `Unknown hub method '${target}'.` };
  if (provided < method.minArgs || provided > method.maxArgs) {
    const expected = method.minArgs === method.maxArgs ? `${method.minArgs}` : `${method.minArgs} to ${method.maxArgs}`;
    return {
      refused: `Failed to invoke '${target}': invocation provides ${provided} argument(s) but target expects ${expected}.`,
    };
  }
  if (method.authorize && !(await method.authorize(context.user, context))) {
    return { refused: `Failed to invoke '${target}' because user is unauthorized.` };
  }
  return { method };
}

/**
 * Runs a hub method through the endpoint's filters on a fresh hub instance (`createHub`), and counts the call (the
 * hub's own method names only: a name the hub does not have is counted as unknown). Never rejects.
 */
export async function callHubMethod(
  endpoint: HubServices,
  context: HubCallerContext,
  target: string,
  args: unknown[],
  createHub: () => object,
): Promise<CallOutcome> {
  const found: { name?: string } = {};
  const outcome = await runHubMethod(endpoint, context, target, args, createHub, found);
  endpoint.meter?.invoked(found.name, !('value' in outcome));
  return outcome;
}

async function runHubMethod(
  endpoint: HubServices,
  context: HubCallerContext,
  target: string,
  args: unknown[],
  createHub: () => object,
  /** Gets the method's name once the hub has it. */
  found: { name?: string },
): Promise<CallOutcome> {
  try {
    const candidate = endpoint.registry.find(target);
    found.name = candidate?.name;
    const resolved = await resolveMethod(candidate, context, target, args.length);
    if ('refused' in resolved) return resolved;
    const method = resolved.method;
    if (method.parameters) {
      const checked = await validateArguments(target, method.parameters, args);
      if ('refused' in checked) return checked;
      args = checked.args;
    }
    const hub = createHub();
    const value = await runInvokeFilters(
      endpoint.options.filters,
      { hub, context, methodName: method.name, arguments: args },
      async (invocation) => method.fn.apply(invocation.hub, invocation.arguments),
    );
    return { value };
  } catch (error) {
    return { thrown: error };
  }
}

/** HubError messages always reach the client; other errors only with detailed errors on. */
export function clientErrorText(generic: string, error: unknown, detailed: boolean): string {
  if (error instanceof HubError) return error.message;
  if (detailed && error instanceof Error) return `${generic} ${error.name}: ${error.message}`;
  if (error instanceof HubwireError && error.code === 'HW_ERR_UNAUTHORIZED') return error.message;
  return generic;
}

/** The error a caller gets when a call's messages could not be stored before the server shut down. */
export const NOT_STORED =
  "The server shut down before this call's messages were stored; they may not have been delivered.";

/**
 * What a call's result waits for, on a bus whose sends resolve before they are durable (a scaleout backplane): the
 * durability of everything the bus accepted since `mark` (taken with `bus.accepted?.()` before the call), the
 * call's own sends among them. Resolves true once durable, false when they never will be; undefined when there is
 * nothing to wait for.
 */
export function sentDuring(bus: MessageBus, mark: number | undefined): Promise<boolean> | undefined {
  if (mark === undefined || bus.accepted?.() === mark) return undefined;
  return bus.whenDurable?.(bus.accepted?.() ?? mark)?.then(
    () => true,
    () => false,
  );
}
