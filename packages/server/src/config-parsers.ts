// The kinds of value an environment variable holds, as zod schemas from the variable's text to the typed
// setting (a whole number in a range, one of a few words, a comma-separated list, an address). A schema
// refuses what it cannot read with a message saying what it accepts; nothing falls back to a default.
import { IMAGE_NAME, parseCidr, parseIpv4, TENANT_NAME } from '@capsule/protocol';
import { z } from 'zod';

/** A bad environment variable (or several) at start: one line naming each, its value and what is accepted. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** A schema from text to T: `read` gives undefined for text it refuses, and the issue says "x" is not `accepts`. */
function reader<T>(accepts: string, read: (text: string) => T | undefined): z.ZodType<T, string> {
  return z.string().transform((text, ctx) => {
    const value = read(text);
    if (value !== undefined) return value;
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(text)} is not ${accepts}` });
    return z.NEVER;
  });
}

/** Digits only (no sign, exponent, hex or blanks), within [min, max]. */
function wholeNumber(text: string, min: number, max: number): number | undefined {
  if (!/^\d{1,16}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/** A whole number from `min` (default 1) to `max`. */
export function int(min = 1, max = Number.MAX_SAFE_INTEGER): z.ZodType<number, string> {
  const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
  return reader(`a whole number ${range}`, (text) => wholeNumber(text, min, max));
}

/** One of `values`, spelled exactly. */
export function oneOf<const T extends string>(values: readonly T[]): z.ZodType<T, string> {
  return reader(`one of ${values.join(', ')}`, (text) => values.find((v) => v === text));
}

const ON = ['1', 'true', 'on'];
const OFF = ['0', 'false', 'off'];

/** A switch: 1, true or on; 0, false or off. */
export function onOff(): z.ZodType<boolean, string> {
  return reader(`one of ${[...ON, ...OFF].join(', ')}`, (text) =>
    ON.includes(text) ? true : OFF.includes(text) ? false : undefined,
  );
}

/** A warm pool of a tenant's image (its newest built version): how many clones it keeps. */
export interface ImagePool {
  tenantId: string;
  imageName: string;
  size: number;
}

/** `tenant/image=clones`, comma-separated (clones from 1 to 16). */
export function imagePools(): z.ZodType<ImagePool[], string> {
  const name = (re: RegExp): string => re.source.replace(/^\^|\$$/g, '');
  const item = new RegExp(`^(${name(TENANT_NAME)})/(${name(IMAGE_NAME)})=(\\d{1,2})$`);
  return reader('a comma-separated list of tenant/image=clones (clones from 1 to 16), e.g. default/web=2', (text) => {
    const pools: ImagePool[] = [];
    for (const entry of text.split(',').map((s) => s.trim())) {
      const m = item.exec(entry);
      if (!m || Number(m[3]) < 1 || Number(m[3]) > 16) return undefined;
      pools.push({ tenantId: m[1]!, imageName: m[2]!, size: Number(m[3]) });
    }
    return pools;
  });
}

/** Any text (an empty value never reaches a schema: it means unset). */
export function text(): z.ZodType<string, string> {
  return z.string();
}

/** Text that must start with one of `prefixes` (a URL's scheme). */
export function url(prefixes: readonly string[]): z.ZodType<string, string> {
  const accepts = `a URL starting ${prefixes.join(' or ')}`;
  return reader(accepts, (text) =>
    prefixes.some((p) => text.startsWith(p) && text.length > p.length) ? text : undefined,
  );
}

/** Text matching `pattern`, described as `accepts`. */
export function matching(pattern: RegExp, accepts: string): z.ZodType<string, string> {
  return reader(accepts, (text) => (pattern.test(text) ? text : undefined));
}

/** Comma-separated items (blanks around commas ignored, empty items dropped), each read by `read`. */
function list<T>(accepts: string, read: (item: string) => T | undefined): z.ZodType<T[], string> {
  return z.string().transform((setting, ctx) => {
    const items: T[] = [];
    for (const item of setting.split(',').map((e) => e.trim())) {
      if (!item) continue;
      const value = read(item);
      if (value === undefined) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(item)} is not ${accepts}` });
        return z.NEVER;
      }
      items.push(value);
    }
    return items;
  });
}

/** IPv4 CIDRs without host bits (a bare address is its /32), normalised to a.b.c.d/n. */
export function cidrList(): z.ZodType<string[], string> {
  return list('an IPv4 CIDR without host bits', (e) => (parseCidr(e) ? (e.includes('/') ? e : `${e}/32`) : undefined));
}

/** Up to `max` distinct TCP ports (duplicates dropped); `none` is the empty list. */
export function portList(max: number): z.ZodType<number[], string> {
  const ports = list('a port from 1 to 65535', (p) => wholeNumber(p, 1, 65535));
  return z.string().transform((setting, ctx) => {
    if (setting === 'none') return [];
    const parsed = ports.safeParse(setting);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message });
      return z.NEVER;
    }
    const distinct = [...new Set(parsed.data)];
    if (distinct.length <= max) return distinct;
    ctx.addIssue({ code: 'custom', message: `${distinct.length} ports is more than ${max}` });
    return z.NEVER;
  });
}

/** s3://bucket or s3://bucket/prefix/ entries. */
export function s3PrefixList(): z.ZodType<string[], string> {
  return list('s3://bucket or s3://bucket/prefix/', (p) =>
    /^s3:\/\/[a-z0-9][a-z0-9.-]{1,62}(\/.*)?$/.test(p) ? p : undefined,
  );
}

/** s3://bucket[/prefix]: where Capsule keeps its own blobs (blobs/open.ts splits it). */
export function s3Location(): z.ZodType<string, string> {
  return reader('s3://bucket[/prefix]', (t) =>
    /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*?))?\/?$/.test(t) ? t : undefined,
  );
}

/** `STEP:MS`: wait MS milliseconds at STEP, one of `steps`. */
export function stepHalt<S extends string>(steps: readonly S[]): z.ZodType<{ step: S; ms: number }, string> {
  return reader(`STEP:MS with STEP one of ${steps.join(', ')}`, (setting) => {
    const [step, ms] = setting.split(':');
    const wait = wholeNumber(ms ?? '', 0, 3_600_000);
    const known = steps.find((s) => s === step);
    return known && wait !== undefined ? { step: known, ms: wait } : undefined;
  });
}

export interface UidRange {
  first: number;
  last: number;
}

/** `200000-264999` → range; uids below 1000 (system users, root) are refused. */
export function uidRange(): z.ZodType<UidRange, string> {
  return reader('FIRST-LAST with 1000 <= FIRST <= LAST <= 4294967294', (setting) => {
    const m = /^\s*(\d{1,10})\s*[-–]\s*(\d{1,10})\s*$/.exec(setting);
    const [first, last] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
    return first >= 1000 && last >= first && last <= 4_294_967_294 ? { first, last } : undefined;
  });
}

/** An IPv4 CIDR of at most `maxPrefix` bits, without host bits (a pool addresses are carved from). */
export function cidr(maxPrefix: number): z.ZodType<string, string> {
  return reader(`an IPv4 CIDR of /${maxPrefix} or larger without host bits`, (t) => {
    const parsed = t.includes('/') ? parseCidr(t) : null;
    return parsed && parsed.prefix <= maxPrefix ? t : undefined;
  });
}

/** ip or ip:port (IPv4). */
export function ipPort(): z.ZodType<string, string> {
  return reader('ip or ip:port (IPv4)', (t) => {
    const [address, port, extra] = t.split(':');
    if (extra !== undefined || parseIpv4(address) === null) return undefined;
    return port === undefined || wholeNumber(port, 1, 65535) !== undefined ? t : undefined;
  });
}
