/**
 * The part of the Standard Schema spec (https://standardschema.dev) this
 * library uses: zod, valibot, arktype and others implement it, so users
 * validate responses with whichever they already have.
 */
export interface StandardSchemaLike {
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult | Promise<StandardResult>;
  };
}

export type StandardResult =
  | { readonly value: unknown; readonly issues?: undefined }
  | {
      readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<unknown> | undefined }>;
    };

/**
 * A Standard Schema, known by what is called of one: `~standard.validate`
 * (a header or query record may hold a `~standard` text). Some libraries'
 * schemas are functions (ArkType's types are callable).
 */
export const isStandardSchema = (value: unknown): value is StandardSchemaLike =>
  typeof (value as Partial<StandardSchemaLike> | undefined)?.["~standard"]?.validate === "function";
