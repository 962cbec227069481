import { describe, expect, it } from "vitest";
import type { AdmissionRequest } from "../../src/core/ports.js";
import { ask, settings, setup, useLocalProvider } from "../support/pipeline.js";

useLocalProvider();

describe("the reservation outlives settlement", () => {
  it("expires after the function's deadline + grace, even with a short timeoutMs (settlement retries until that deadline)", async () => {
    const t = setup();
    const requests: AdmissionRequest[] = [];
    const admit = t.executions.admit.bind(t.executions);
    t.executions.admit = (request) => {
      requests.push(request);
      return admit(request);
    };
    await t.run(ask("local-mini", "hi", { timeoutMs: 1_000 }));
    const [request] = requests;
    // `now` is the execution's start: the reservation ends exactly a function timeout + grace after it.
    expect(request!.expireAt - request!.now).toBe(settings.functionTimeoutMs! + settings.limits.reservationGraceMs);
  });

  it("expires after the request's own time limit + grace when that is the longer (a short function timeout)", async () => {
    const t = setup({ settings: { functionTimeoutMs: 2_000 } });
    const requests: AdmissionRequest[] = [];
    const admit = t.executions.admit.bind(t.executions);
    t.executions.admit = (request) => {
      requests.push(request);
      return admit(request);
    };
    await t.run(ask("local-mini", "hi", { timeoutMs: 8_000 }));
    const [request] = requests;
    expect(request!.expireAt - request!.now).toBe(8_000 + settings.limits.reservationGraceMs);
  });
});
