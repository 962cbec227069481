import type { CallableRequest } from "firebase-functions/https";
import { HttpsError } from "firebase-functions/https";
import { describe, expect, it } from "vitest";
import { requireCaller } from "../../src/adapters/caller.js";
import { toHttpsError } from "../../src/adapters/https-error.js";
import { ExecutionError } from "../../src/core/errors.js";

const request = (parts: Partial<CallableRequest<unknown>>) => parts as CallableRequest<unknown>;
const alice = { uid: "alice", token: {} } as CallableRequest["auth"];
const app = { appId: "1:123:web:abc", token: {} } as CallableRequest["app"];

describe("requireCaller", () => {
  it("returns the uid of a signed-in caller", () => {
    expect(requireCaller(request({ auth: alice }), false)).toBe("alice");
  });
  it("refuses a caller without auth as unauthenticated", () => {
    expect(() => requireCaller(request({}), false)).toThrow(expect.objectContaining({ category: "unauthenticated" }));
  });
  it("with App Check enforced, refuses a caller without a verified app as permission_denied", () => {
    expect(() => requireCaller(request({ auth: alice }), true)).toThrow(expect.objectContaining({ category: "permission_denied" }));
    expect(requireCaller(request({ auth: alice, app }), true)).toBe("alice");
  });
  it("refuses an auth context without a uid, or with one that cannot name a document", () => {
    for (const auth of [{ token: {} }, { uid: "", token: {} }, { uid: "a/b", token: {} }]) {
      expect(() => requireCaller(request({ auth: auth as CallableRequest["auth"] }), false)).toThrow(expect.objectContaining({ category: "unauthenticated" }));
    }
  });
  it("with replay protection, refuses an App Check token that was already consumed", () => {
    const replayed = { ...app, alreadyConsumed: true } as CallableRequest["app"];
    expect(() => requireCaller(request({ auth: alice, app: replayed }), false)).toThrow(
      expect.objectContaining({ category: "permission_denied", message: expect.stringContaining("already used") }),
    );
    expect(requireCaller(request({ auth: alice, app: { ...app, alreadyConsumed: false } as CallableRequest["app"] }), true)).toBe("alice");
  });
});

describe("toHttpsError", () => {
  it("maps the category to the code and carries the details", () => {
    const failure = new ExecutionError("in_progress", undefined, { retryAfterMs: 900 });
    failure.executionId = "e1";
    const error = toHttpsError(failure);
    expect(error).toBeInstanceOf(HttpsError);
    expect(error.code).toBe("aborted");
    expect(error.httpErrorCode.status).toBe(409);
    expect(error.details).toEqual({ category: "in_progress", retryable: true, retryAfterMs: 900, executionId: "e1" });
  });
  it("shows nothing of an unknown error but 'Internal error.'", () => {
    const error = toHttpsError(new Error("secret stack detail sk-abcdefghijklmnop"));
    expect(error.code).toBe("internal");
    expect(error.message).toBe("Internal error.");
    expect(JSON.stringify(error.toJSON())).not.toContain("sk-");
  });
});
