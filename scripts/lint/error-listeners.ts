// Lint rule: no socket or stream is ever left without an 'error' listener. A Node stream that emits
// 'error' with no listener throws it as an uncaught exception, which exits the server (issue 11: a
// migration socket reset after pipeline() had resolved did exactly that). Every socket, file stream
// and server made in production code must, in the function that makes it:
//   - get .on/.once('error', …) — chained on the call, or on the variable it is assigned to; or
//   - (file streams only) go straight into something that owns its errors: pipeline(), a web-stream
//     adapter (Readable.toWeb, Writable.toWeb), the agent channel's pipeFrom/pipeTo; or be returned
//     (the caller owns it then, and the same rule applies there).
// A socket handed to a handler — server.on('connection', socket => …), server.on('upgrade', (req,
// socket) => …) — gets its error listener in that handler, before anything else: Node leaves an
// upgraded socket with none, so a client that resets it while the handler awaits would exit the server.
// A site the rule cannot see through carries `// error-listener: <why>` on the line above it.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export interface Violation {
  file: string;
  line: number;
  text: string;
}

/** Calls that make a socket or a server: module.method. */
const SOCKET_CALLS = new Set([
  'net.connect',
  'net.createConnection',
  'tls.connect',
  'net.createServer',
  'http.createServer',
]);
/** Calls that make a file stream, on any receiver (fs, a FileHandle). */
const FILE_STREAM_METHODS = new Set(['createReadStream', 'createWriteStream']);
/** Consumers that take over a stream's errors. */
const OWNING_CALLS = new Set(['pipeline', 'toWeb', 'pipeFrom', 'pipeTo']);
const LISTEN = new Set(['on', 'once', 'addListener', 'prependListener']);
const ALLOW = /\/\/\s*error-listener:\s*\S/;
/** Events whose handler receives a socket, and that socket's parameter position. */
const SOCKET_EVENTS = new Map([
  ['connection', 0],
  ['secureConnection', 0],
  ['upgrade', 1],
  ['connect', 1],
]);

/** `x.on('upgrade', (req, socket) => …)`: the socket parameter's name and the handler, if `node` is such a call. */
function socketHandler(node: ts.Node): { name: string; handler: ts.Node } | null {
  if (
    !ts.isCallExpression(node) ||
    !ts.isPropertyAccessExpression(node.expression) ||
    !LISTEN.has(node.expression.name.text)
  )
    return null;
  const [event, handler] = node.arguments;
  if (
    !event ||
    !ts.isStringLiteralLike(event) ||
    !handler ||
    !(ts.isArrowFunction(handler) || ts.isFunctionExpression(handler))
  )
    return null;
  const position = SOCKET_EVENTS.get(event.text);
  const param = position === undefined ? undefined : handler.parameters[position];
  return param && ts.isIdentifier(param.name) ? { name: param.name.text, handler } : null;
}

function kindOf(node: ts.Node): 'socket' | 'file' | null {
  if (ts.isNewExpression(node) && node.expression.getText() === 'net.Socket') return 'socket';
  if (!ts.isCallExpression(node) || !ts.isPropertyAccessExpression(node.expression)) return null;
  if (SOCKET_CALLS.has(node.expression.getText())) return 'socket';
  return FILE_STREAM_METHODS.has(node.expression.name.text) ? 'file' : null;
}

/** `x.on('error', …)` and friends: the receiver expression, if `call` adds an error listener. */
function errorListenerReceiver(call: ts.Node): ts.Expression | null {
  if (!ts.isCallExpression(call) || !ts.isPropertyAccessExpression(call.expression)) return null;
  if (!LISTEN.has(call.expression.name.text)) return null;
  const [event] = call.arguments;
  return event && ts.isStringLiteralLike(event) && event.text === 'error' ? call.expression.expression : null;
}

/** The identifier a chain like `x.on('data', f).once('end', g)` starts from. */
function chainRoot(expression: ts.Expression): string | null {
  let e = expression;
  while (ts.isCallExpression(e) || ts.isPropertyAccessExpression(e) || ts.isParenthesizedExpression(e))
    e = e.expression;
  return ts.isIdentifier(e) || e.kind === ts.SyntaxKind.ThisKeyword ? e.getText() : null;
}

function enclosingScope(node: ts.Node): ts.Node {
  let n = node.parent;
  while (n && !ts.isFunctionLike(n) && !ts.isSourceFile(n)) n = n.parent;
  return n;
}

function listensInScope(scope: ts.Node, name: string): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    const receiver = errorListenerReceiver(n);
    if (receiver && (receiver.getText() === name || chainRoot(receiver) === name)) found = true;
    else ts.forEachChild(n, visit);
  };
  visit(scope);
  return found;
}

/** `name` handed to a consumer that owns its errors (pipeline(a, name), Readable.toWeb(name)…) in `scope`. */
function ownedInScope(scope: ts.Node, name: string): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(n) && owning(n) && n.arguments.some((a) => a.getText() === name)) found = true;
    else ts.forEachChild(n, visit);
  };
  visit(scope);
  return found;
}

function owning(call: ts.CallExpression): boolean {
  const callee = call.expression;
  return OWNING_CALLS.has(ts.isPropertyAccessExpression(callee) ? callee.name.text : callee.getText());
}

function handled(node: ts.Expression, kind: 'socket' | 'file'): boolean {
  let expr: ts.Node = node;
  // chained: make(...).on('data', …).on('error', …)
  while (
    ts.isPropertyAccessExpression(expr.parent) &&
    ts.isCallExpression(expr.parent.parent) &&
    expr.parent.expression === expr
  ) {
    if (errorListenerReceiver(expr.parent.parent)) return true;
    expr = expr.parent.parent;
  }
  while (
    ts.isParenthesizedExpression(expr.parent) ||
    ts.isAsExpression(expr.parent) ||
    ts.isAwaitExpression(expr.parent)
  )
    expr = expr.parent;
  const parent = expr.parent;
  const assigned =
    ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)
      ? parent.name.text
      : ts.isBinaryExpression(parent) &&
          parent.operatorToken.kind === ts.SyntaxKind.EqualsToken &&
          parent.right === expr
        ? parent.left.getText()
        : null;
  if (assigned !== null) {
    const scope = enclosingScope(parent);
    return listensInScope(scope, assigned) || (kind === 'file' && ownedInScope(scope, assigned));
  }
  if (kind === 'socket') return false;
  if (ts.isReturnStatement(parent) || ts.isArrowFunction(parent)) return true;
  return ts.isCallExpression(parent) && parent.arguments.includes(expr as ts.Expression) && owning(parent);
}

export function checkSource(file: string, text: string): Violation[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const lines = text.split('\n');
  const violations: Violation[] = [];
  const report = (node: ts.Node): void => {
    const line = source.getLineAndCharacterOfPosition(node.getStart()).line;
    if (!ALLOW.test(lines[line - 1] ?? '')) violations.push({ file, line: line + 1, text: lines[line].trim() });
  };
  const visit = (node: ts.Node): void => {
    const kind = kindOf(node);
    if (kind && !handled(node as ts.Expression, kind)) report(node);
    const given = socketHandler(node);
    if (given && !listensInScope(given.handler, given.name)) report(node);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return violations;
}

/** Production sources under `roots` (tests are exempt: a test that crashes fails loudly anyway). */
export function checkTree(roots: string[]): Violation[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules' && entry.name !== 'dist') walk(full);
      else if (entry.isFile() && full.endsWith('.ts') && !full.endsWith('.test.ts') && !full.endsWith('.d.ts'))
        files.push(full);
    }
  };
  for (const root of roots) walk(root);
  return files.flatMap((file) => checkSource(file, fs.readFileSync(file, 'utf8')));
}
