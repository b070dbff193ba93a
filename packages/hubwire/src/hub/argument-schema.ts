// Argument schemas of hub methods, through the Standard Schema interface (https://standardschema.dev) that zod,
// valibot, arktype and others implement: a method's declared schemas check (and may transform) what a client
// sent before the method runs.

/** What Hubwire needs of a Standard Schema (version 1): a validate function returning a value or issues. */
export interface ArgumentSchema {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    validate(value: unknown): ValidationResult | Promise<ValidationResult>;
  };
}

type ValidationResult =
  | { readonly value: unknown; readonly issues?: undefined }
  | { readonly issues: readonly { readonly message: string; readonly path?: readonly unknown[] }[] };

export function isArgumentSchema(value: unknown): value is ArgumentSchema {
  const standard = (value as { '~standard'?: { version?: unknown; validate?: unknown } } | null)?.['~standard'];
  return typeof standard === 'object' && standard?.version === 1 && typeof standard.validate === 'function';
}

/**
 * Validates `args` against `schemas` (one per parameter, in order). Resolves with the validated (possibly
 * transformed) arguments, or with the text of the first failure: which argument, and what its schema said.
 */
export async function validateArguments(
  target: string,
  schemas: readonly ArgumentSchema[],
  args: readonly unknown[],
): Promise<{ args: unknown[] } | { refused: string }> {
  const out = [...args];
  for (let index = 0; index < schemas.length; index++) {
    let result = (schemas[index] as ArgumentSchema)['~standard'].validate(args[index]);
    if (result instanceof Promise) result = await result;
    if (result.issues) {
      const issue = result.issues[0];
      const path = issue?.path?.length
        ? ` at ${issue.path.map((p) => (typeof p === 'object' ? String((p as { key?: unknown }).key) : String(p))).join('.')}`
        : '';
      return {
        refused: `Failed to invoke '${target}': argument ${index + 1} is not valid${path}: ${issue?.message ?? 'invalid value'}.`,
      };
    }
    if (index < out.length || result.value !== undefined) out[index] = result.value;
  }
  return { args: out };
}
