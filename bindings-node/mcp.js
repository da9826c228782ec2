// @allowly/sdk/mcp — checks every MCP tool call with Allowly before the tool runs.
//
// The behaviour (who is asking, what is checked, the payloads, `_meta.allowly`, confirmation in
// the conversation) is docs/mcp.md; the Python twin is `allowly.mcp`. The decision itself is the
// engine's: this file resolves the check's input from the host, calls `check` through an
// `@allowly/sdk` client and turns the answer into an MCP tool result. It imports nothing from the
// MCP SDK, so it works with whichever copy of it the server was built with.

import { Allowly, AllowlyError, InvalidRequestError } from './index.js';

/** Members a check input may have (`MCPCheckInput`), camelCased as `check` takes them. */
const CHECK_INPUT_MEMBERS = ['action', 'resource', 'context', 'clientTimestamp', 'estimatedCostMicros', 'idempotencyKey'];

/** A `tools/call` request: a handler's schema that accepts it is the `tools/call` schema. */
const TOOLS_CALL_PROBE = Object.freeze({ method: 'tools/call', params: { name: 'allowly.probe', arguments: {} } });

/** How much of a call's arguments (JSON) a confirmation question shows. */
const MAX_SHOWN_ARGUMENTS = 1000;

/** Elicitation asks a yes or no: no fields to fill. */
const NO_FIELDS = Object.freeze({ type: 'object', properties: {} });

const OPTIONS = [
  'allowly',
  'apiKey',
  'baseUrl',
  'checkTimeoutMs',
  'authorizationIdFn',
  'userIdFn',
  'agentTokenFn',
  'checkInputFn',
  'elicitConfirmation',
];

const GUARDED = Symbol('allowly.guarded');
const ATTACHED = Symbol('allowly.attached');

/** A mistake in the guard's options or use, as the SDK reports a bad argument. */
function invalid(field, message) {
  return new InvalidRequestError(`invalid \`${field}\`: ${message}`, {
    code: 'invalid_request',
    fields: [{ field, message }],
  });
}

/**
 * Guards the tools of an MCP server: `new AllowlyMCPMiddleware(options).attach(server)`.
 *
 * `options.allowly` is an `@allowly/sdk` client (embedded or remote); `apiKey` + `baseUrl` (and
 * `checkTimeoutMs`) make a remote one, as the public middleware does.
 */
export class AllowlyMCPMiddleware {
  #allowly;
  #authorizationIdFn;
  #userIdFn;
  #checkInputFn;
  #elicitConfirmation;

  constructor(options) {
    if (options === null || typeof options !== 'object') throw invalid('options', 'must be an object');
    const { allowly, apiKey, baseUrl, checkTimeoutMs, authorizationIdFn, userIdFn, agentTokenFn, checkInputFn } =
      options;
    for (const key of Object.keys(options)) {
      if (!OPTIONS.includes(key)) {
        throw invalid(`options.${key}`, 'is not a known option');
      }
    }
    if (agentTokenFn !== undefined) {
      // The engine does not verify agent identity tokens yet: accepting one would promise a check
      // that does not happen.
      throw invalid('options.agentTokenFn', 'this Allowly engine does not verify agent identity tokens yet: remove the option');
    }
    if (allowly !== undefined) {
      if (!(allowly instanceof Allowly)) throw invalid('options.allowly', 'must be an @allowly/sdk Allowly client');
      if (apiKey !== undefined || baseUrl !== undefined) {
        throw invalid('options.allowly', 'pass either `allowly` or `apiKey` and `baseUrl`, not both');
      }
      this.#allowly = allowly;
    } else {
      this.#allowly = new Allowly({ apiKey, baseUrl, checkTimeoutMs });
    }
    if (typeof authorizationIdFn !== 'function') throw invalid('options.authorizationIdFn', 'must be a function');
    for (const [name, fn] of [
      ['userIdFn', userIdFn],
      ['checkInputFn', checkInputFn],
    ]) {
      if (fn !== undefined && typeof fn !== 'function') throw invalid(`options.${name}`, 'must be a function');
    }
    this.#authorizationIdFn = authorizationIdFn;
    this.#userIdFn = userIdFn;
    this.#checkInputFn = checkInputFn;
    this.#elicitConfirmation = options.elicitConfirmation === true;
  }

  /** The client the guard checks with. */
  get allowly() {
    return this.#allowly;
  }

  /**
   * Guards `server` (an `McpServer` or a low-level `Server` of `@modelcontextprotocol/sdk` 1.x, or a
   * `Server` of `@modelcontextprotocol/server` 2.x), before or after its tools are registered.
   * Returns `server`.
   */
  attach(server) {
    const protocol = server?.server ?? server;
    if (protocol === null || typeof protocol !== 'object' || typeof protocol.setRequestHandler !== 'function') {
      throw invalid('server', 'must be an MCP McpServer or Server');
    }
    if (protocol[ATTACHED]) throw invalid('server', 'has an Allowly guard attached already');
    const handlers = protocol._requestHandlers;
    if (!(handlers instanceof Map)) {
      // The only place an MCP SDK keeps a handler installed before now: without it a tool
      // registered earlier would stay unguarded.
      throw invalid(
        'server',
        'keeps its request handlers where the guard cannot find them (supported: @modelcontextprotocol/sdk 1.x, @modelcontextprotocol/server 2.x)',
      );
    }
    const guard = (handler) => this.#guarded(handler, protocol);

    if (typeof protocol._wrapHandler === 'function') {
      // 2.x: every registration path passes its handler through this hook.
      const wrap = protocol._wrapHandler;
      protocol._wrapHandler = function (method, handler) {
        return wrap.call(this, method, method === 'tools/call' ? guard(handler) : handler);
      };
    } else {
      // 1.x: `McpServer` installs its `tools/call` handler through this method on the first
      // `registerTool`, as low-level servers do themselves.
      const setRequestHandler = protocol.setRequestHandler;
      protocol.setRequestHandler = function (schema, handler, ...rest) {
        return setRequestHandler.call(this, schema, acceptsToolsCall(schema) ? guard(handler) : handler, ...rest);
      };
    }
    const installed = handlers.get('tools/call');
    if (installed) handlers.set('tools/call', guard(installed));
    if (!protocol.transport) protocol.registerCapabilities?.({ tools: {} });
    protocol[ATTACHED] = true;
    return server;
  }

  /** `handler` (a `tools/call` handler) behind the guard. */
  #guarded(handler, protocol) {
    if (handler[GUARDED]) return handler;
    const guarded = async (request, extra) => {
      const context = {
        toolName: request?.params?.name,
        arguments: request?.params?.arguments ?? {},
        request,
        extra,
      };
      let verdict;
      try {
        verdict = await this.decide(context);
        if (verdict.meta.decision === 'confirm' && this.#elicitConfirmation && clientCanElicit(protocol)) {
          verdict = await this.#confirmInConversation(verdict, context, protocol);
        }
      } catch {
        // A bug of the guard or of a host function outside its contract: never a reason to run.
        verdict = refused('guard_failed');
      }
      if (!verdict.allowed) return toolError(verdict);
      return withAllowlyMeta(await handler(request, extra), verdict.meta);
    };
    guarded[GUARDED] = true;
    return guarded;
  }

  /**
   * The guard's verdict on one tool call, without running anything: `{ allowed, meta, payload,
   * check }`, where `meta` is what `_meta.allowly` carries and `payload` the tool error's JSON.
   * `context` is `{ toolName, arguments, request, extra }`.
   */
  async decide(context) {
    let userId;
    if (this.#userIdFn) {
      try {
        userId = await this.#userIdFn(context);
      } catch {
        return refused('authorization_unavailable');
      }
    }
    if (!userId) return refused('authorization_not_found');
    let authorizationId;
    try {
      authorizationId = await this.#authorizationIdFn(userId, context);
    } catch {
      return refused('authorization_unavailable');
    }
    if (typeof authorizationId !== 'string' || authorizationId.length === 0) return refused('authorization_not_found');

    let input = {};
    if (this.#checkInputFn) {
      try {
        input = await this.#checkInputFn(context);
      } catch {
        return refused('check_input_unavailable');
      }
      if (!isCheckInput(input)) return refused('check_input_invalid');
    }
    const action = input.action ?? context.toolName;
    if (typeof action !== 'string' || action.trim().length === 0) return refused('check_action_invalid');

    return this.#check({
      authorization_id: authorizationId,
      actions: [action],
      resource: input.resource,
      context: input.context,
      client_timestamp: input.clientTimestamp instanceof Date ? input.clientTimestamp.toISOString() : input.clientTimestamp,
      estimated_cost_micros: input.estimatedCostMicros,
      idempotency_key: input.idempotencyKey,
    });
  }

  async #check(args) {
    let answer;
    try {
      answer = await this.#allowly.call('check', args);
    } catch (err) {
      // The client's typed errors end the call with their code; anything else is the guard's own
      // failure (guard_failed, where the call is guarded).
      if (err instanceof AllowlyError) return refused(err.code);
      throw err;
    }
    const result = answer?.results?.[args.actions[0]];
    if (!result) return refused('missing_result');
    return verdictOf(result, args);
  }

  /**
   * Asks the user in the conversation (`elicitation/create`) and resolves the confirmation with
   * the answer. A failed elicitation or resolution leaves the confirm verdict as it was: the nonce
   * stays pending for another channel.
   */
  async #confirmInConversation(verdict, context, protocol) {
    const { confirm_nonce: nonce, confirm_prompt_hint: hint } = verdict.payload;
    let answer;
    try {
      answer = await protocol.elicitInput(
        { mode: 'form', message: confirmationMessage(hint || context.toolName, context.arguments), requestedSchema: NO_FIELDS },
        { relatedRequestId: context.extra?.requestId },
      );
    } catch {
      return verdict;
    }
    const approved = answer?.action === 'accept';
    let resolution;
    try {
      resolution = await this.#allowly.call('resolve_confirmation', { nonce, approved });
    } catch {
      return verdict;
    }
    const confirmation = {
      approved,
      receipt_id: receiptIdOf(resolution.receipt),
      receipt: resolution.receipt,
    };
    if (!approved) {
      return {
        ...verdict,
        payload: {
          decision: verdict.payload.decision,
          reason: verdict.payload.reason,
          confirmation: answer?.action === 'decline' ? 'declined' : 'cancelled',
        },
        meta: { ...verdict.meta, confirmation },
      };
    }
    // The idempotency key would replay the first (confirm) answer.
    const again = await this.#check({ ...verdict.check, idempotency_key: undefined });
    return { ...again, meta: { ...again.meta, confirmation } };
  }
}

function acceptsToolsCall(schema) {
  try {
    return typeof schema?.safeParse === 'function' && schema.safeParse(TOOLS_CALL_PROBE).success === true;
  } catch {
    return false;
  }
}

/** What the user is asked: the prompt hint, and the call's arguments so they see what they allow. */
function confirmationMessage(hint, args) {
  const shown = JSON.stringify(args ?? {});
  if (shown === '{}') return `Allow ${hint}?`;
  return `Allow ${hint}? ${shown.length > MAX_SHOWN_ARGUMENTS ? `${shown.slice(0, MAX_SHOWN_ARGUMENTS)}…` : shown}`;
}

function clientCanElicit(protocol) {
  try {
    return Boolean(protocol.getClientCapabilities?.()?.elicitation?.form) && typeof protocol.elicitInput === 'function';
  } catch {
    return false;
  }
}

function isCheckInput(input) {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return false;
  return Object.keys(input).every((key) => CHECK_INPUT_MEMBERS.includes(key));
}

/** A call stopped before any check: deny, no receipt. */
function refused(reason) {
  return {
    allowed: false,
    payload: { decision: 'deny', reason },
    meta: { decision: 'deny', reason, receipt_id: null, receipt: null, is_fallback: false },
    check: null,
  };
}

function verdictOf(result, check) {
  const isFallback = result.is_fallback === true;
  const receipt = result.receipt ?? null;
  // A fallback has no receipt and is never a reason to run, even when mapped to fail_open.
  const decision = isFallback ? 'deny' : result.decision;
  const meta = {
    decision,
    reason: result.reason,
    receipt_id: result.receipt_id ?? receiptIdOf(receipt),
    receipt,
    is_fallback: isFallback,
  };
  let payload = { decision, reason: result.reason };
  if (decision === 'confirm') {
    payload = {
      ...payload,
      confirm_nonce: result.confirm_nonce ?? null,
      confirm_expires_at: result.confirm_expires_at ?? null,
      confirm_prompt_hint: result.confirm_prompt_hint ?? null,
    };
  } else if (decision === 'escalate') {
    payload = {
      ...payload,
      escalation_id: result.escalation_id ?? null,
      escalation_to: result.escalation_to ?? null,
      escalation_expires_at: result.escalation_expires_at ?? null,
    };
  }
  return { allowed: decision === 'allow' && receipt !== null, payload, meta, check };
}

/** The id a receipt envelope names (a pending one says it; a signed one in its payload). */
function receiptIdOf(receipt) {
  if (!receipt) return null;
  if (typeof receipt.receipt_id === 'string') return receipt.receipt_id;
  try {
    const payload = JSON.parse(Buffer.from(receipt.receipt.payload, 'base64url').toString('utf8'));
    return typeof payload.receipt_id === 'string' ? payload.receipt_id : null;
  } catch {
    return null;
  }
}

function toolError(verdict) {
  return {
    content: [{ type: 'text', text: JSON.stringify(verdict.payload) }],
    isError: true,
    _meta: { allowly: verdict.meta },
  };
}

function withAllowlyMeta(result, meta) {
  if (result === null || typeof result !== 'object') return result;
  return { ...result, _meta: { ...result._meta, allowly: meta } };
}

export default AllowlyMCPMiddleware;
