/**
 * OpenAPI schema objects (3.0 or 3.1, references kept) → JSON Schema 2020-12 for tool schemas.
 * A component referenced once is inlined; one referenced again, or from inside itself, goes to the
 * tool schema's `$defs` once. Only 2020-12 keywords are kept, so every result compiles in a strict
 * 2020-12 validator.
 */

export type Json = Record<string, unknown>;
export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The value a local JSON pointer (`#/components/schemas/Pet`) names in the document, if any. */
export function resolvePointer(doc: Json, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
  let node: unknown = doc;
  for (const raw of ref.slice(1).split('/').slice(1)) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) node = node[Number(key)];
    else node = isObject(node) ? node[key] : undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/** Follows `$ref`s (of parameters, bodies, responses) to the object they name; undefined when dangling. */
export function deref(doc: Json, value: unknown, depth = 0): Json | undefined {
  if (!isObject(value)) return undefined;
  if (typeof value.$ref !== 'string') return value;
  return depth > 32 ? undefined : deref(doc, resolvePointer(doc, value.$ref), depth + 1);
}

const TYPES = new Set(['array', 'boolean', 'integer', 'null', 'number', 'object', 'string']);
const ANNOTATIONS = [
  'title',
  'description',
  'default',
  'deprecated',
  'readOnly',
  'writeOnly',
  'format',
  'contentEncoding',
  'contentMediaType',
];
const NUMBERS = ['multipleOf', 'maximum', 'minimum'];
const COUNTS = ['maxLength', 'minLength', 'maxItems', 'minItems', 'maxContains', 'minContains', 'maxProperties', 'minProperties'];
const ONE_SCHEMA = [
  'contains',
  'additionalProperties',
  'propertyNames',
  'not',
  'if',
  'then',
  'else',
  'unevaluatedProperties',
  'unevaluatedItems',
  'contentSchema',
];
const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];
const SCHEMA_MAPS = ['properties', 'patternProperties', 'dependentSchemas'];

/** Whether a pattern compiles as the validator will compile it (unicode mode). */
function compiles(pattern: string): boolean {
  try {
    new RegExp(pattern, 'u');
    return true;
  } catch {
    return false;
  }
}

export type SchemaUse = 'request' | 'response';

export class SchemaConverter {
  private readonly uses = new Map<string, number>();
  private readonly defNames = new Map<string, string>();
  private readonly defs: Json = {};

  /** OpenAPI 3.1 schemas are JSON Schema: keywords beside a `$ref` apply too (3.0 ignores them). */
  private readonly refSiblings: boolean;

  /**
   * `use`: a request drops readOnly properties; a response drops writeOnly ones, and is read
   * tolerantly (no `required`, extra properties allowed), since answers drift from their documents.
   */
  constructor(
    private readonly doc: Json,
    private readonly use: SchemaUse,
  ) {
    this.refSiblings = typeof doc.openapi === 'string' && !doc.openapi.startsWith('3.0');
  }

  /** Counts the references reachable from these schemas, so that `convert` knows which to share. */
  scan(...schemas: unknown[]): void {
    const seen = new Set<string>();
    const walk = (node: unknown, stack: string[]): void => {
      if (Array.isArray(node)) return node.forEach((n) => walk(n, stack));
      if (!isObject(node)) return;
      const ref = node.$ref;
      if (typeof ref === 'string') {
        // A reference met again (or from inside itself) is shared through $defs.
        this.uses.set(ref, (this.uses.get(ref) ?? 0) + (stack.includes(ref) ? 2 : 1));
        if (!seen.has(ref) && !stack.includes(ref)) {
          seen.add(ref);
          walk(resolvePointer(this.doc, ref), [...stack, ref]);
        }
      }
      for (const [k, v] of Object.entries(node)) if (k !== '$ref' && !k.startsWith('x-')) walk(v, stack);
    };
    for (const s of schemas) walk(s, []);
  }

  /** The `$defs` the converted schemas point into, or undefined when none. */
  definitions(): Json | undefined {
    return Object.keys(this.defs).length > 0 ? this.defs : undefined;
  }

  convert(schema: unknown, stack: string[] = []): unknown {
    if (typeof schema === 'boolean') return schema;
    if (!isObject(schema)) return {};
    const ref = schema.$ref;
    if (typeof ref === 'string') return this.reference(schema, ref, stack);
    return this.keywords(schema, stack);
  }

  private reference(schema: Json, ref: string, stack: string[]): unknown {
    const target = resolvePointer(this.doc, ref);
    const siblings = this.keywords({ ...schema, $ref: undefined, nullable: undefined }, stack) as Json;
    const annotationsOnly = Object.keys(siblings).every((k) => ANNOTATIONS.includes(k) || k === 'examples');
    if (target === undefined)
      return { ...siblings, description: [siblings.description, `(undefined schema ${ref})`].filter(Boolean).join(' ') };
    let resolved: unknown;
    if ((this.uses.get(ref) ?? 0) <= 1 && !stack.includes(ref)) resolved = this.convert(target, [...stack, ref]);
    else resolved = { $ref: `#/$defs/${this.define(ref, target)}` };
    let out: unknown = resolved;
    // Annotations beside a reference describe it; other keywords (3.1 only) narrow it further.
    if (annotationsOnly) out = isObject(resolved) ? { ...resolved, ...siblings } : resolved;
    else if (this.refSiblings) out = { allOf: [resolved], ...siblings };
    return schema.nullable === true ? { anyOf: [out, { type: 'null' }] } : out;
  }

  /** The `$defs` name of a shared reference, converting its target the first time. */
  private define(ref: string, target: unknown): string {
    let name = this.defNames.get(ref);
    if (name) return name;
    const base = (ref.split('/').pop() ?? 'schema').replace(/[^A-Za-z0-9_.-]/g, '_') || 'schema';
    name = base;
    for (let i = 2; name in this.defs; i++) name = `${base}_${i}`;
    this.defNames.set(ref, name);
    this.defs[name] = true;
    this.defs[name] = this.convert(target, [ref]);
    return name;
  }

  private keywords(s: Json, stack: string[]): unknown {
    const out: Json = {};
    this.copyType(s, out);
    for (const k of ANNOTATIONS) if (s[k] !== undefined && s[k] !== null) out[k] = s[k];
    for (const k of ['title', 'description', 'format', 'contentEncoding', 'contentMediaType'])
      if (typeof out[k] !== 'string') delete out[k];
    for (const k of ['deprecated', 'readOnly', 'writeOnly']) if (typeof out[k] !== 'boolean') delete out[k];
    if (Array.isArray(s.examples)) out.examples = s.examples;
    else if (s.example !== undefined) out.examples = [s.example];
    if ('const' in s && s.const !== undefined) out.const = s.const;
    for (const k of NUMBERS) if (typeof s[k] === 'number') out[k] = s[k];
    if (typeof out.multipleOf === 'number' && out.multipleOf <= 0) delete out.multipleOf;
    this.copyExclusive(s, out);
    for (const k of COUNTS) if (Number.isInteger(s[k]) && (s[k] as number) >= 0) out[k] = s[k];
    if (typeof s.uniqueItems === 'boolean') out.uniqueItems = s.uniqueItems;
    if (typeof s.pattern === 'string') {
      if (compiles(s.pattern)) out.pattern = s.pattern;
      else out.description = [out.description, `Pattern (not checked here): ${s.pattern}`].filter(Boolean).join('\n');
    }
    if (isObject(s.dependentRequired)) out.dependentRequired = s.dependentRequired;
    for (const k of ONE_SCHEMA) if (s[k] !== undefined && (typeof s[k] === 'boolean' || isObject(s[k]))) out[k] = this.convert(s[k], stack);
    // An answer is read tolerantly: fields its document requires may be missing, others may be added.
    if (this.use === 'response') for (const k of ['additionalProperties', 'unevaluatedProperties']) if (out[k] === false) delete out[k];
    if (Array.isArray(s.items)) out.prefixItems = s.items.map((i) => this.convert(i, stack));
    else if (s.items !== undefined && (typeof s.items === 'boolean' || isObject(s.items))) out.items = this.convert(s.items, stack);
    for (const k of SCHEMA_LISTS)
      if (Array.isArray(s[k]) && (s[k] as unknown[]).length > 0) out[k] = (s[k] as unknown[]).map((i) => this.convert(i, stack));
    for (const k of SCHEMA_MAPS) if (isObject(s[k])) out[k] = this.schemaMap(s[k] as Json, stack, k === 'properties');
    if (isObject(out.patternProperties))
      for (const p of Object.keys(out.patternProperties)) if (!compiles(p)) delete out.patternProperties[p];
    this.copyRequired(s, out);
    // 3.0's nullable with no type to widen (beside allOf, oneOf, …): null is one more way to be valid.
    if (s.nullable === true && out.type === undefined && out.enum === undefined) return { anyOf: [out, { type: 'null' }] };
    return out;
  }

  /** `type` (with OpenAPI 3.0's `nullable` as a union with null) and `enum`. */
  private copyType(s: Json, out: Json): void {
    const raw = s.type === 'file' ? 'string' : s.type;
    const listed = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter(
      (t): t is string => typeof t === 'string' && TYPES.has(t),
    );
    if (s.type === 'file' && s.format === undefined) out.format = 'binary';
    const types = [...new Set(listed)];
    if (s.nullable === true && types.length > 0 && !types.includes('null')) types.push('null');
    if (types.length === 1) out.type = types[0];
    else if (types.length > 1) out.type = types;
    if (Array.isArray(s.enum)) {
      const values = s.nullable === true && !s.enum.includes(null) ? [...s.enum, null] : s.enum;
      out.enum = values.filter((v, i) => values.findIndex((w) => JSON.stringify(w) === JSON.stringify(v)) === i);
    }
  }

  /** 3.0's boolean exclusiveMinimum/Maximum (JSON Schema draft 4) → 2020-12's numbers. */
  private copyExclusive(s: Json, out: Json): void {
    for (const [exclusive, bound] of [
      ['exclusiveMinimum', 'minimum'],
      ['exclusiveMaximum', 'maximum'],
    ] as const) {
      const v = s[exclusive];
      if (typeof v === 'number') out[exclusive] = v;
      else if (v === true && typeof s[bound] === 'number') {
        out[exclusive] = s[bound];
        delete out[bound];
      }
    }
  }

  private schemaMap(map: Json, stack: string[], isProperties: boolean): Json {
    const out: Json = {};
    for (const [name, sub] of Object.entries(map)) {
      if (isProperties && this.hidden(sub)) continue;
      out[name] = this.convert(sub, stack);
    }
    return out;
  }

  /** A property a request must not send (readOnly) or a response does not carry (writeOnly). */
  private hidden(sub: unknown): boolean {
    const target = isObject(sub) && typeof sub.$ref === 'string' ? resolvePointer(this.doc, sub.$ref) : sub;
    if (!isObject(target)) return false;
    return this.use === 'request' ? target.readOnly === true : target.writeOnly === true;
  }

  private copyRequired(s: Json, out: Json): void {
    if (!Array.isArray(s.required) || this.use === 'response') return;
    const props = isObject(s.properties) ? s.properties : undefined;
    const required = [...new Set(s.required.filter((r): r is string => typeof r === 'string'))].filter(
      (r) => !(props && r in props && !(r in (out.properties as Json))),
    );
    if (required.length > 0) out.required = required;
  }
}
