import { globToRegExp, type OperationDefinition } from '@mcp-gateway/protocol';

/**
 * Which operations a service serves: `include` (when given) keeps those matching one of its selectors,
 * then `exclude` drops those matching one of its. A selector is `tag:<glob>`, `method:<METHOD>` or a
 * glob on the operation's name (`repos/*`, `get_*`); `*` matches any run of characters, `?` one.
 */
export interface OperationFilter {
  include?: string[];
  exclude?: string[];
}

type Matcher = (op: OperationDefinition, tags: readonly string[]) => boolean;

function matcher(selector: string): Matcher {
  const s = selector.trim();
  if (/^method:/i.test(s)) {
    const method = s.slice(7).trim().toUpperCase();
    return (op) => op.method === method;
  }
  if (/^tag:/i.test(s)) {
    const re = globToRegExp(s.slice(4).trim());
    return (_op, tags) => tags.some((t) => re.test(t));
  }
  const re = globToRegExp(s);
  return (op) => re.test(op.name);
}

/** The operations the filter keeps, in their order; `tags` gives each operation's tags (none when absent). */
export function filterOperations(
  operations: OperationDefinition[],
  filter: OperationFilter,
  tags: (name: string) => readonly string[] = () => [],
): OperationDefinition[] {
  const include = (filter.include ?? []).filter((s) => s.trim() !== '').map(matcher);
  const exclude = (filter.exclude ?? []).filter((s) => s.trim() !== '').map(matcher);
  if (include.length === 0 && exclude.length === 0) return operations;
  return operations.filter((op) => {
    const t = tags(op.name);
    if (include.length > 0 && !include.some((m) => m(op, t))) return false;
    return !exclude.some((m) => m(op, t));
  });
}
