/**
 * HTTP `param_<name>` values → values for chDB's binder, so the engine sees what a ClickHouse
 * server would.
 *
 * A ClickHouse server parses a param value with the declared type's *escaped text* form: for
 * String, `a\tb` is a tab; for Array(String), `['o\'brien']` is a quoted literal. chDB's binder
 * takes a JS string and TSV-escapes it again before the engine parses it. So: for scalar types
 * we unescape first (the engine gets back exactly the original text); for composite types
 * (Array/Tuple/Map), whose text holds quoted literals, the `\'` escape @clickhouse/client uses is
 * rewritten to the SQL-style `''`, which survives the binder unchanged.
 *
 * Values are never spliced into SQL; a malformed value fails in the engine (BAD_QUERY_PARAMETER).
 * Limitation: other backslash escapes inside composite values (e.g. `\\` in an array element) are
 * seen doubled.
 */

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', '0': '\0', a: '\x07', v: '\v', e: '\x1b' };

/** ClickHouse "Escaped" text unescaping (`\t` → tab, `\\` → `\`, `\x41` → A, `\'` → '). */
export function unescapeEscaped(text: string): string {
  if (!text.includes('\\')) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== '\\' || i === text.length - 1) {
      out += ch;
      continue;
    }
    const next = text[++i]!;
    if (next === 'x' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      out += String.fromCharCode(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out += ESCAPES[next] ?? next;
    }
  }
  return out;
}

const PLACEHOLDER = /\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^{}]+?)\s*\}/g;
const COMPOSITE = /^(?:(?:Nullable|LowCardinality)\s*\(\s*)*(?:Array|Tuple|Map|Nested)\s*\(/i;

/** Declared type per placeholder name in `sql`. */
export function placeholderTypes(sql: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const match of sql.matchAll(PLACEHOLDER)) types.set(match[1]!, match[2]!);
  return types;
}

export function bindableParams(sql: string, raw: Record<string, string>): Record<string, string> {
  const types = placeholderTypes(sql);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    const type = types.get(name);
    out[name] = type !== undefined && COMPOSITE.test(type) ? value.replace(/\\'/g, "''") : unescapeEscaped(value);
  }
  return out;
}
