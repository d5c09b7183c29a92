import Ajv2020 from 'ajv/dist/2020';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { GatewayError, type OperationDefinition } from '@mcp-gateway/protocol';
import { pathParameterNames, pathValueProblem } from './request';

export interface ParameterIssue {
  path: string;
  message: string;
}

function issueOf(e: ErrorObject): ParameterIssue {
  const at = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty?: string }).missingProperty);
    return { path: at ? `${at}.${missing}` : missing, message: 'is required' };
  }
  if (e.keyword === 'dependentRequired') {
    const { missingProperty, property } = e.params as { missingProperty?: string; property?: string };
    return { path: at ? `${at}.${missingProperty}` : String(missingProperty), message: `is required when ${property} is given` };
  }
  if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty?: string }).additionalProperty);
    return { path: at ? `${at}.${extra}` : extra, message: 'is not a parameter of this operation' };
  }
  return { path: at || '(parameters)', message: e.message ?? 'is invalid' };
}

/**
 * Checks parameters against the operation's JSON Schema (ajv, compiled once per schema object) and
 * that every `{placeholder}` of the path gets a usable value. Throws VALIDATION_ERROR naming the fields.
 */
export class ParameterValidator {
  private readonly ajv: Ajv2020;
  private readonly compiled = new WeakMap<object, ValidateFunction>();

  constructor() {
    // Tool schemas are JSON Schema 2020-12; a configured one may carry keywords and formats
    // (nullable, int32, …) that 2020-12 lacks: they are ignored, not refused.
    this.ajv = new Ajv2020({ allErrors: true, strict: false, coerceTypes: false, useDefaults: false, logger: false });
    addFormats(this.ajv);
    for (const f of ['int32', 'int64', 'float', 'double', 'byte', 'binary', 'password']) this.ajv.addFormat(f, true);
  }

  private validator(service: string, op: OperationDefinition): ValidateFunction {
    let fn = this.compiled.get(op.parameters);
    if (!fn) {
      try {
        fn = this.ajv.compile(op.parameters);
      } catch (err) {
        throw new GatewayError(
          'INTERNAL_ERROR',
          `The parameter schema of ${service}.${op.name} is not a valid JSON Schema: ${(err as Error).message}`,
        );
      }
      this.compiled.set(op.parameters, fn);
    }
    return fn;
  }

  validate(service: string, op: OperationDefinition, parameters: Record<string, unknown>): void {
    const issues: ParameterIssue[] = [];
    const fn = this.validator(service, op);
    if (!fn(parameters)) issues.push(...(fn.errors ?? []).slice(0, 20).map(issueOf));
    // An imported operation's path arguments are its path bindings; a style may spread an array or object there.
    const pathArgs = op.request ? op.request.parameters.filter((b) => b.in === 'path').map((b) => b.arg) : pathParameterNames(op.path);
    for (const name of pathArgs) {
      const value = parameters[name];
      const problem = op.request && typeof value === 'object' && value !== null ? undefined : pathValueProblem(value);
      if (problem && !issues.some((i) => i.path === name)) issues.push({ path: name, message: problem });
    }
    if (issues.length > 0) {
      const first = issues[0]!;
      throw new GatewayError('VALIDATION_ERROR', `Invalid parameters for ${service}.${op.name}: ${first.path} ${first.message}`, {
        details: issues.map((i) => ({ path: `parameters.${i.path}`, message: i.message })),
      });
    }
  }
}
