// aggregate-client.mjs — an MCP client on the official TypeScript SDK, used by mcpgate's integration tests.
//
//   node aggregate-client.mjs URL TOOL ARGS_JSON [TOOL ARGS_JSON]...
//
// Connects over Streamable HTTP declaring sampling, elicitation and roots, answers the server's
// sampling/createMessage, elicitation/create and roots/list requests, lists every tool (following
// nextCursor), calls each TOOL in order (each with a progress callback, so a progressToken is sent), and
// prints ONE JSON object on stdout:
//
//   {protocolVersion, serverInfo, tools: [names], calls: {TOOL: {result, progress: [...]}, ...},
//    elicitations: N, samplings: N}
//
// then terminates the session (DELETE) and exits 0. Any error goes to stderr with exit code 1.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

const CALL_TIMEOUT_MS = 60_000;

function usage() {
  process.stderr.write('usage: node aggregate-client.mjs URL TOOL ARGS_JSON [TOOL ARGS_JSON]...\n');
  process.exit(2);
}

function parseArgs(json, which) {
  let v;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new Error(`${which}: invalid JSON arguments: ${e.message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new Error(`${which}: arguments must be a JSON object`);
  }
  return v;
}

// A plausible value for one property of an elicitation schema (flat primitives per the spec, plus the
// SEP-1330 enum shapes: enum, oneOf/anyOf of consts, arrays of enums).
function plausible(prop) {
  if (!prop || typeof prop !== 'object') return 'x';
  if (Array.isArray(prop.enum) && prop.enum.length > 0) return prop.enum[0];
  for (const key of ['oneOf', 'anyOf']) {
    if (Array.isArray(prop[key]) && prop[key].length > 0 && prop[key][0] && 'const' in prop[key][0]) {
      return prop[key][0].const;
    }
  }
  switch (prop.type) {
    case 'number':
    case 'integer': {
      let n = 1;
      if (typeof prop.minimum === 'number' && n < prop.minimum) n = prop.minimum;
      if (typeof prop.maximum === 'number' && n > prop.maximum) n = prop.maximum;
      return prop.type === 'integer' ? Math.ceil(n) : n;
    }
    case 'boolean':
      return true;
    case 'array': {
      const item = plausible(prop.items ?? { type: 'string' });
      const min = typeof prop.minItems === 'number' ? Math.max(1, prop.minItems) : 1;
      return Array.from({ length: min }, () => item);
    }
    case 'string':
    default: {
      switch (prop.format) {
        case 'email':
          return 'user@example.com';
        case 'uri':
          return 'https://example.com/';
        case 'date':
          return '2025-01-01';
        case 'date-time':
          return '2025-01-01T00:00:00Z';
      }
      let s = 'x';
      if (typeof prop.minLength === 'number' && s.length < prop.minLength) s = s.padEnd(prop.minLength, 'x');
      return s;
    }
  }
}

function fillRequired(schema) {
  const content = {};
  const props = (schema && schema.properties) || {};
  for (const name of (schema && schema.required) || []) {
    content[name] = plausible(props[name]);
  }
  return content;
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length < 3 || argv.length % 2 !== 1) usage();
  const url = argv[0];
  const toCall = [];
  for (let i = 1; i < argv.length; i += 2) toCall.push([argv[i], parseArgs(argv[i + 1], argv[i])]);

  let elicitations = 0;
  let samplings = 0;

  const client = new Client(
    { name: 'mcpgate-aggregate-client', version: '1.0.0' },
    { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } },
  );
  client.setRequestHandler(CreateMessageRequestSchema, async () => {
    samplings++;
    return {
      role: 'assistant',
      content: { type: 'text', text: 'sampled by aggregate-client' },
      model: 'test-model',
      stopReason: 'endTurn',
    };
  });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    elicitations++;
    return { action: 'accept', content: fillRequired(req.params.requestedSchema) };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => ({
    roots: [{ uri: 'file:///tmp', name: 'tmp' }],
  }));

  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  let terminated = false;
  try {
    const tools = [];
    let cursor;
    do {
      const page = await client.listTools(cursor ? { cursor } : {});
      for (const t of page.tools) tools.push(t.name);
      cursor = page.nextCursor;
    } while (cursor);

    const calls = {};
    for (const [name, args] of toCall) {
      const progress = [];
      const result = await client.callTool({ name, arguments: args }, undefined, {
        onprogress: (p) => progress.push(p),
        timeout: CALL_TIMEOUT_MS,
      });
      calls[name] = { result, progress };
    }

    const out = {
      protocolVersion: transport.protocolVersion,
      serverInfo: client.getServerVersion(),
      tools,
      calls,
      elicitations,
      samplings,
    };
    process.stdout.write(JSON.stringify(out) + '\n');
    terminated = true;
    await transport.terminateSession();
  } finally {
    if (!terminated && transport.sessionId) {
      // Best effort on the error path: do not leave the session behind.
      await transport.terminateSession().catch(() => {});
    }
    await client.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`aggregate-client: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
