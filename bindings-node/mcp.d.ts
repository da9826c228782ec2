// @allowly/sdk/mcp — guards an MCP server's tool calls with Allowly (docs/mcp.md).

import type { Allowly, JsonObject, Micros, SignedReceiptEnvelope } from './index.js';

/** What the host functions see of one `tools/call`. */
export interface MCPAuthorizationContext {
  /** The tool's name, as the client sent it. */
  toolName: string;
  /** The tool's arguments, as the client sent them (data from the model: never trusted as identity). */
  arguments: Record<string, unknown>;
  /** The JSON-RPC request. */
  request: { method: string; params?: { name?: string; arguments?: Record<string, unknown>; [key: string]: unknown } };
  /** The MCP SDK's request extra (1.x `RequestHandlerExtra`, 2.x `ServerContext`): `authInfo`, `sessionId`, … */
  extra: MCPRequestExtra;
}

export interface MCPRequestExtra {
  /** What the transport's authentication established (trusted host context). */
  authInfo?: { token: string; clientId: string; scopes: string[]; expiresAt?: number; extra?: Record<string, unknown> };
  sessionId?: string;
  requestId?: string | number;
  [key: string]: unknown;
}

/** What to check for a tool call: the action defaults to the tool's name; nothing else is sent unless given here. */
export interface MCPCheckInput {
  action?: string;
  resource?: string | null;
  context?: JsonObject | null;
  clientTimestamp?: string | Date | null;
  estimatedCostMicros?: Micros | null;
  idempotencyKey?: string | null;
}

type MaybePromise<T> = T | Promise<T>;

interface GuardFunctions {
  /** The user id, from trusted host context only (never from tool arguments). Nothing → `authorization_not_found`. */
  userIdFn?: (context: MCPAuthorizationContext) => MaybePromise<string | null | undefined>;
  /** The user's authorization for this agent. Nothing → `authorization_not_found`. */
  authorizationIdFn: (userId: string, context: MCPAuthorizationContext) => MaybePromise<string | null | undefined>;
  /** Maps a call to the check's input; an object with other members → `check_input_invalid`. */
  checkInputFn?: (context: MCPAuthorizationContext) => MaybePromise<MCPCheckInput>;
  /** Ask the user through `elicitation/create` on `confirm` when the client can (default false). */
  elicitConfirmation?: boolean;
  /** Not supported: the engine does not verify agent identity tokens yet (the constructor throws). */
  agentTokenFn?: never;
}

export type AllowlyMCPMiddlewareOptions = GuardFunctions &
  (
    | { /** An embedded or remote client. */ allowly: Allowly; apiKey?: never; baseUrl?: never; checkTimeoutMs?: never }
    | { allowly?: never; apiKey: string; baseUrl: string; checkTimeoutMs?: number }
  );

/** `_meta.allowly` of every guarded result (wire snake_case). */
export interface AllowlyToolMeta {
  decision: 'allow' | 'deny' | 'confirm' | 'escalate';
  reason: string;
  /** Null when the call stopped before the check or the runtime did not answer. */
  receipt_id: string | null;
  /** The check's receipt as the check answered it (pass it to `verifyReceipt`). */
  receipt: SignedReceiptEnvelope | { status: 'pending'; receipt_id: string; [key: string]: unknown } | null;
  is_fallback: boolean;
  /** Set when the user answered a confirmation in the conversation: the resolution's receipt. */
  confirmation?: { approved: boolean; receipt_id: string | null; receipt: unknown };
}

/** The guard's verdict on one call (`decide`), before anything runs. */
export interface MCPGuardVerdict {
  allowed: boolean;
  /** The tool error's JSON when not allowed. */
  payload: { decision: string; reason: string; [key: string]: unknown };
  meta: AllowlyToolMeta;
}

export declare class AllowlyMCPMiddleware {
  constructor(options: AllowlyMCPMiddlewareOptions);
  /** The client the guard checks with. */
  readonly allowly: Allowly;
  /**
   * Guards the server's `tools/call` (an `McpServer` or low-level `Server` of
   * `@modelcontextprotocol/sdk` 1.x, or a 2.x `@modelcontextprotocol/server` `Server`), before or
   * after its tools are registered. Returns the server.
   */
  attach<S extends object>(server: S): S;
  /** The verdict on one call without running anything (for hosts that dispatch tools themselves). */
  decide(context: MCPAuthorizationContext): Promise<MCPGuardVerdict>;
}

export default AllowlyMCPMiddleware;
